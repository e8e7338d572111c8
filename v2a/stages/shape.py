"""The one shape of a mapped stage: `plan` its work items, `run` one item, `summarize` what the items gave.

A stage module defines `STAGE = Stage(...)` and is listed once in `v2a.stages.STAGES`. Everything that is
the same for every stage lives once, outside the stage, in the Prefect task that runs a stage's items
(`tasks/stage.py`): the cache key (the item, the section, the run and the fingerprints of what the stage
reads), the "skip if done" check, retries, progress, the GPU slot and the trace span. A stage never sees
Prefect, so its functions run as they are in a script or a test.

A stage receives its configuration section whole (the pydantic model of `v2a.config`), never field by field,
and the run it belongs to (`StageRun`: where the run writes, its model profile, its device and the few run
arguments that are not settings, such as a run id).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class StageRun:
    """What one run of a stage works in: the same for all its items."""

    out: str                      # the run's output location (v2a.io.layout.RunLayout)
    profile: str | None = None    # the model profile its models come from
    device: str = "cpu"
    args: Mapping[str, Any] = field(default_factory=dict)  # run arguments that are not settings (JSON values)

    def arg(self, name: str, default=None):
        return self.args.get(name, default)


@dataclass(frozen=True)
class WorkItem:
    """One unit of a stage's work: what is stored and resumed as a whole.

    key: names the item (its task run, its unit of progress); unique within the stage's plan.
    inputs: what `run` works on, as JSON values (clip ids, a shard's file name, metric names).
    units: the item's size in the stage's progress counts ({"clips": 64, "shards": 1}); the first drives the bar.
    """

    key: str
    inputs: Mapping[str, Any]
    units: Mapping[str, float]

    def to_json(self) -> dict:
        return {"key": self.key, "inputs": dict(self.inputs), "units": dict(self.units)}

    @classmethod
    def from_json(cls, value: "WorkItem | Mapping") -> "WorkItem":
        if isinstance(value, WorkItem):
            return value
        return cls(str(value["key"]), dict(value["inputs"]), dict(value["units"]))


class Models:
    """The models a stage's `run` may ask for, built (once per process) only when asked. The Prefect task
    hands in one over `v2a.runtime.model_cache`; a test may hand in anything with these methods."""

    def get(self, component: str):  # "clip", "clap", "generator", "extractor:panns", ...
        raise NotImplementedError

    def lock(self, name: str):  # a context manager: one thread of the process uses the model at a time
        raise NotImplementedError

    def mapper(self, checkpoint: str):
        raise NotImplementedError

    def empty_text(self):
        raise NotImplementedError


def _never_done(item: WorkItem, section, run: StageRun) -> bool:
    return False


def _no_outputs(item: WorkItem, section, run: StageRun) -> list[str]:
    return []


def _one_per_task(section) -> int:
    return 1


@dataclass(frozen=True)
class Stage:
    """A stage's functions. Only `plan`, `run` and `summarize` are required.

    plan(section, run, models) -> [WorkItem]: cheap to repeat, but it may build a model for its id (the task caches
        the plan).
    run(item, section, run, models, report) -> dict: does the item's work and writes its outputs;
        `report(note=None, log=False, at=None, **counts)` moves the item's progress: counts are increments of
        `item.units`, `at` sets them (a resumed item starts past zero), `note` is shown beside the bar and, with
        `log`, written to the run's log.
    summarize(results, section, run, closing) -> dict: the stage's summary from the item results and the closing
        step's (None without one); each result says `skipped` (done by an earlier run) and `cached` (a task cache hit).
    done(item, section, run): the item's outputs are all there, written by an earlier run: it is not run again.
    outputs(item, section, run): the files the item writes; a cached result whose files changed runs again.
    reads(section, run): the locations the stage reads, fingerprinted into every cache key.
    before(items, section, run): once per run, after planning and before any item (not cached: it looks at what
        is on disk now), e.g. remove what an earlier configuration left.
    close(results, section, run, models, origin) -> dict: once after every item, cached like an item (e.g. one
        write of what the items computed); `origin` says who runs it ({"flow_run_id": ...} under Prefect, {}
        otherwise), recorded but never part of the cache key; `closing` names it in the progress bar.
    items_per_task(section): items one task runs in turn (a task's fixed cost is paid once for them).
    mapped: the item tasks go to the flow's task runner (a Dask or Ray cluster); False: they run in the flow's
        own process, as the plan and the closing step always do (a stage of one item gains nothing from a
        worker, and training keeps the thread count, and so the bits, of the flow's process).
    task_label: the middle of the task run names, `<stage>-<task_label>-<first item key>`.
    """

    name: str
    section: str                  # the field of v2a.config.PipelineConfig the stage reads
    plan: Callable[..., list[WorkItem]]
    run: Callable[..., dict]
    summarize: Callable[..., dict]
    done: Callable[..., bool] = _never_done
    outputs: Callable[..., list[str]] = _no_outputs
    reads: Callable[..., list[str]] = lambda section, run: []
    before: Callable[..., Any] | None = None
    close: Callable[..., dict] | None = None
    closing: str | None = None
    items_per_task: Callable[[Any], int] = _one_per_task
    task_label: str = "item"
    mapped: bool = True

    def batches(self, items: list[WorkItem], section) -> list[list[WorkItem]]:
        n = max(1, int(self.items_per_task(section)))
        return [items[i:i + n] for i in range(0, len(items), n)]


def run_items(stage: Stage, items, section, run: StageRun, models: Models,
              report: Callable[[WorkItem], Callable[..., None]] | None = None) -> list[dict]:
    """Run a batch of items in turn: an item done by an earlier run is skipped (checked here, once, for every
    stage), the others run. Each result carries the item's `key` and `skipped`. Without Prefect: the same
    loop the Prefect task runs."""
    results = []
    for item in (WorkItem.from_json(i) for i in items):
        moved = report(item) if report else (lambda **counts: None)
        if stage.done(item, section, run):
            moved(**item.units)
            results.append({"key": item.key, "units": dict(item.units), "skipped": True})
            continue
        result = stage.run(item, section, run, models, moved)
        results.append({**result, "key": item.key, "units": dict(item.units), "skipped": False})
    return results


def run_stage(stage: Stage, section, run: StageRun, models: Models) -> dict:
    """A whole stage in this process, item after item: plan, before, the items, close, summarize."""
    items = stage.plan(section, run, models)
    if stage.before is not None:
        stage.before(items, section, run)
    results = run_items(stage, items, section, run, models)
    closing = stage.close(results, section, run, models, {}) if stage.close is not None else None
    return stage.summarize([{**r, "cached": False} for r in results], section, run, closing)
