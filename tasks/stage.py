"""The Prefect tasks of every mapped stage (`v2a.stages.shape`): plan, run a batch of items, close.

What is the same for every stage lives here once: the cache key (the task, the stage, its items, its
configuration section whole, the run, the fingerprints of what the stage reads and the resolved model
profile), "skip if done" (`v2a.stages.shape.run_items`), retries, the stage's progress, the GPU slot while a
model runs and the trace span. A stage module only says what its work is.
"""

from __future__ import annotations

import dataclasses
import threading

from prefect import get_run_logger, task

from tasks.caching import stage_policy
from tasks.operations import RESULTS, RETRIES, jsonable, made_by, model_slot
from tasks.progress import reporter
from v2a.core.fingerprint import fingerprints
from v2a.runtime import trace
from v2a.runtime.model_cache import empty_text_embedding, get_mapper, get_model, model_lock
from v2a.stages import shape, stage as stage_named


class ProcessModels(shape.Models):
    """The models of this process (built once each, `v2a.runtime.model_cache`), on the run's device."""

    def __init__(self, run: shape.StageRun):
        self.profile, self.device = run.profile, run.device

    def get(self, component: str):
        return get_model(self.profile, component, self.device)

    def lock(self, name: str) -> threading.Lock:
        return model_lock(self.profile, name, self.device)

    def mapper(self, checkpoint: str):
        return get_mapper(checkpoint, self.device)

    def empty_text(self):
        return empty_text_embedding(self.profile, self.device)


def _run_of(run) -> shape.StageRun:
    return run if isinstance(run, shape.StageRun) else shape.StageRun(**run)


def run_dict(run: shape.StageRun) -> dict:
    """A StageRun as a task parameter: plain values, shown as they are in the Prefect UI."""
    return jsonable(dataclasses.asdict(run))


def _items_run_name() -> str:
    from prefect.runtime import task_run

    params = task_run.parameters
    return f"{params['stage']}-{stage_named(params['stage']).task_label}-{params['items'][0]['key']}"


def _named(step: str):
    """`plan-embed`, `close-evaluate`: a stage's one-off steps, apart from its items' `embed-shards-0`."""
    def name() -> str:
        from prefect.runtime import task_run

        return f"{step}-{task_run.parameters['stage']}"

    return name


# Plans travel as plain mappings (WorkItem.to_json): task results are JSON (tasks/operations.py).
@task(name="plan-stage", task_run_name=_named("plan"), cache_policy=stage_policy(), **RETRIES, **RESULTS)
def plan_task(stage: str, section, run: dict) -> list[dict]:
    s, r = stage_named(stage), _run_of(run)
    with model_slot(r.device):  # a plan may build a model for its id
        return [i.to_json() for i in s.plan(section, r, ProcessModels(r))]


@task(name="stage-items", task_run_name=_items_run_name, cache_policy=stage_policy(), **RETRIES, **RESULTS)
def items_task(items: list[dict], stage: str, section, run: dict) -> dict:
    """A batch of a stage's items, run in turn: {"items": their results, "outputs": their files' fingerprints}."""
    s, r = stage_named(stage), _run_of(run)
    unit = items[0]["key"]
    report = reporter(unit)  # the flow's progress artifact counts the batch under its first item's key

    def moved(item):
        def report_item(note: str | None = None, log: bool = False, at: dict | None = None, **counts) -> None:
            if at:
                report.set(note, **at)
            if counts or (note and not at):
                report.add(note, **counts)
            if log and note:
                get_run_logger().info("%s: %s", stage, note)

        return report_item

    with trace.span(stage, unit), model_slot(r.device):
        results = shape.run_items(s, items, section, r, ProcessModels(r), report=moved)
    files = [f for i in items for f in s.outputs(shape.WorkItem.from_json(i), section, r)]
    return {"items": jsonable(results), "made_by": made_by(), "outputs": fingerprints(files)}


# The flow run is not part of the key (the cache would never hit): a cached result names the run that made it.
@task(name="close-stage", task_run_name=_named("close"), cache_policy=stage_policy(), **RETRIES, **RESULTS)
def close_task(stage: str, results: list[dict], section, run: dict) -> dict:
    s, r = stage_named(stage), _run_of(run)
    origin = {"flow_run_id": made_by()["flow_run_id"]}
    with model_slot(r.device):
        closed = s.close(results, section, r, ProcessModels(r), origin)
    return {**jsonable(closed), "made_by": made_by(), "outputs": fingerprints(closed.get("outputs") or [])}
