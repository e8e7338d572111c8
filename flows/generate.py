"""Flow: embeddings of a split (+ mapper checkpoint) → 16 kHz audio files and the `generations` table (the
generate stage's items: `v2a.stages.generate.STAGE`)."""

from __future__ import annotations

from prefect import flow

from flows.naming import FLOW_OPTIONS, run_key, run_name, tagged_run
from flows.runners import bounded_thread_runner, prepare_model_process
from flows.stage import run_stage
from v2a.config import DEFAULT_PROFILE, GenerateConfig
from v2a.io.layout import RunLayout
from v2a.stages.shape import StageRun


def _run_name() -> str:
    from prefect.runtime import flow_run

    params = flow_run.parameters or {}
    return run_name("generate", run_key(params["out"], params.get("run_id")) if params.get("out") else None)


@flow(name="generate", task_runner=bounded_thread_runner(), flow_run_name=_run_name, **FLOW_OPTIONS)
def generate_flow(embeddings: str, out: str, run_id: str, profile: str = DEFAULT_PROFILE,
                  checkpoint: str | None = None, generate: GenerateConfig = GenerateConfig()) -> dict:
    with tagged_run("generate", profile=profile, clips=RunLayout(out).clips):
        prepare_model_process()  # before any task thread (v2a.runtime.imports)
        run = StageRun(out, profile, generate.device,
                       {"run_id": run_id, "embeddings": embeddings, "checkpoint": checkpoint})
        return run_stage("generate", generate, run, run_key(out, run_id)).summary
