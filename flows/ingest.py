"""Flow: VGGSound CSV + videos, or an image folder → `clips` table (`v2a.stages.ingest.STAGE`)."""

from __future__ import annotations

from prefect import flow

from flows.naming import FLOW_OPTIONS, run_key, stage_run_name, tagged_run
from flows.runners import bounded_thread_runner
from flows.stage import run_stage
from v2a.config import DataConfig
from v2a.stages.shape import StageRun


@flow(name="ingest", task_runner=bounded_thread_runner(), flow_run_name=stage_run_name("ingest"), **FLOW_OPTIONS)
def ingest_flow(out: str, data: DataConfig) -> dict:
    with tagged_run("ingest", dataset=data.dataset):
        return run_stage("ingest", data, StageRun(out), run_key(out)).summary
