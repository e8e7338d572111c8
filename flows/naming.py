"""What a flow run is called and tagged with, and the keys of its artifacts.

A run is known by its *run key*: the run id (or, for a stage started on its own, the last part of its
output location) followed by six hex digits of the output location's full form, so that two outputs
never share a flow run name, an artifact history or an event resource (tasks/operations.py). Runs
carry tags for their stage, model profile and dataset, and v2a's version as the flow version.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager

from tasks.operations import artifact_key, location_digest, run_key, run_name, slug  # noqa: F401
from v2a import __version__

# Every v2a flow: prints reach the run's log, the version is v2a's (not Prefect's hash of the source
# file), and its return value is not stored (the outputs are the tables; a task's result is, as JSON:
# tasks/operations.py), or, should persistence be switched on, stored as JSON, never pickle.
FLOW_OPTIONS = {"log_prints": True, "version": __version__, "persist_result": False, "result_serializer": "json"}

log = logging.getLogger(__name__)


def stage_run_name(stage: str):
    """A flow run name for a stage started on its own: `embed-<last part of out>-<digest of out>`; the
    pipeline names its stage runs after its own run key instead (flows/pipeline.py)."""

    def name() -> str:
        from prefect.runtime import flow_run

        params = flow_run.parameters or {}
        where = params.get("out") or params.get("out_dir") or params.get("runs_root")
        return run_name(stage, run_key(where) if where else None)

    return name


def run_tags(stage: str, profile: str | None = None, dataset: str | None = None) -> list[str]:
    """`v2a`, `stage:embed`, `profile:tiny`, `dataset:vggsound`: what the UI's tag filter finds a run by."""
    tags = ["v2a", f"stage:{stage}"]
    tags += [f"profile:{profile}"] if profile else []
    tags += [f"dataset:{dataset}"] if dataset else []
    return tags


def tag_run(stage: str, profile: str | None = None, dataset: str | None = None, clips: str | None = None) -> list[str]:
    """Add the run tags to the current flow run (keeping those it has, a deployment's for one). Without
    `dataset`, it is read from the `clips` table when there is one. A tag never stops a run: a failure
    to set them is logged."""
    from prefect.client.orchestration import get_client
    from prefect.runtime import flow_run

    if dataset is None and clips is not None:
        dataset = _dataset_of(clips)
    tags = run_tags(stage, profile, dataset)
    if not flow_run.id:
        return tags
    try:
        with get_client(sync_client=True) as client:
            current = client.read_flow_run(flow_run.id).tags or []
            client.update_flow_run(flow_run.id, tags=sorted(set(current) | set(tags)))
    except Exception as err:  # noqa: BLE001 - tags are for people looking; the run goes on
        log.warning("could not tag flow run %s with %s: %s", flow_run.id, tags, err)
    return tags


@contextmanager
def tagged_run(stage: str, profile: str | None = None, dataset: str | None = None, clips: str | None = None):
    """`tag_run`, and the same tags on every task run started inside, so that a stage deployment's task
    runs are found by the tags of its flow run. (Prefect gives a task run the tags of its context, not
    those of its flow run; the pipeline enters its own for its stages, flows/pipeline.py.)"""
    from prefect import tags

    with tags(*tag_run(stage, profile, dataset, clips)):
        yield


def _dataset_of(clips: str) -> str | None:
    from v2a.core import storage
    from v2a.io import clips as clips_io

    try:
        return clips_io.dataset_name(clips) if storage.exists(clips) else None
    except Exception as err:  # noqa: BLE001 - an unreadable table is the stage's to report, not the tag's
        log.debug("no dataset tag from %s: %s", clips, err)
        return None
