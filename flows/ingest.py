"""Flow: VGGSound CSV + videos, or an image folder → `clips` table."""

from __future__ import annotations

from prefect import flow

from flows.naming import FLOW_OPTIONS, stage_run_name, tagged_run
from flows.runners import bounded_thread_runner
from tasks.caching import call
from tasks.ingest import ingest_task
from v2a.config import DataConfig
from v2a.io.layout import RunLayout


@flow(name="ingest", task_runner=bounded_thread_runner(), flow_run_name=stage_run_name("ingest"), **FLOW_OPTIONS)
def ingest_flow(out: str, data: DataConfig) -> dict:
    with tagged_run("ingest", dataset=data.dataset):
        layout = RunLayout(out)
        summary = call(ingest_task, layout.clips, data.csv, data.videos, data.images, data.dataset, layout.errors)
        state = ("from the task cache" if summary["cached"] else f"{summary['n_errors']} bad rows or files"
                 + (f" (reasons: v2a status --out {out})" if summary["n_errors"] else ""))
        print(f"ingest: {summary['n_clips']} clips {summary['by_split']}, {state}")
        return summary
