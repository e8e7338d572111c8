"""Flow: VGGSound CSV + videos, or an image folder → `clips` table."""

from __future__ import annotations

from prefect import flow

from flows.runners import bounded_thread_runner
from tasks.caching import call
from tasks.ingest import ingest_task
from v2a.io.layout import RunLayout


@flow(name="ingest", log_prints=True, task_runner=bounded_thread_runner())
def ingest_flow(out: str, csv: str | None = None, videos: str | None = None, images: str | None = None,
                dataset: str = "vggsound") -> dict:
    layout = RunLayout(out)
    summary = call(ingest_task, layout.clips, csv, videos, images, dataset, layout.errors)
    print(f"ingest: {summary['n_clips']} clips {summary['by_split']}, {summary['n_errors']} bad rows or files"
          + (f" (reasons: v2a status --out {out})" if summary['n_errors'] else ""))
    return summary
