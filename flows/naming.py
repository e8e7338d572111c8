"""Names of flow runs and artifact keys: what they are (the stage) and which run (its id)."""

from __future__ import annotations

from tasks.operations import artifact_key, run_name, slug  # noqa: F401  (the tasks name their artifacts too)


def location_run_id(location: str) -> str:
    """A run id for a stage flow started on its own: the last part of its output location."""
    return str(location).rstrip("/").rsplit("/", 1)[-1] or "out"


def stage_run_name(stage: str):
    """A flow run name for a stage started on its own: `embed-<last part of out>`; the pipeline names its
    stage runs after its run id instead (flows/runners.py)."""

    def name() -> str:
        from prefect.runtime import flow_run

        params = flow_run.parameters or {}
        where = params.get("out") or params.get("out_dir") or params.get("runs_root")
        return run_name(stage, location_run_id(where) if where else None)

    return name
