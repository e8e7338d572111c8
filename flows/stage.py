"""A mapped stage inside its flow: plan (cached), `before`, the items as tasks side by side with a progress
artifact that moves as they end, then the closing step (cached) and the stage's summary."""

from __future__ import annotations

from dataclasses import dataclass

from flows.naming import artifact_key
from flows.runners import model_resources
from tasks.caching import call, map_calls
from tasks.progress import stage_progress
from tasks.stage import close_task, items_task, plan_task, run_dict
from v2a.stages import shape, stage as stage_named


@dataclass
class StageOutcome:
    summary: dict           # the stage's own (`Stage.summarize`)
    results: list[dict]     # one per item, each with `key`, `skipped`, `cached` and `made_by` (the flow run of its task)
    closing: dict | None    # the closing task's result (with `cached` and `made_by`), None without one
    after: object = None    # what the flow's own `then` step returned


def run_stage(name: str, section, run: shape.StageRun, key: str, title: str | None = None,
              then=None, closing: str | None = None) -> StageOutcome:
    """Run stage `name` of `run`; `key` names its progress artifact (`<name>-progress-<key>`).
    then: a step of the flow's own (no argument) that belongs to the stage's bar, run after the items;
    closing says what the bar waits for meanwhile."""
    stage, params = stage_named(name), run_dict(run)
    items = [shape.WorkItem.from_json(i) for i in call(plan_task, name, section, params)]
    if stage.before is not None:
        stage.before(items, section, run)
    batches = stage.batches(items, section)
    # A unit of progress is a task: its first item's key names it (tasks/stage.py reports under it).
    units = {b[0].key: {n: sum(i.units[n] for i in b) for n in b[0].units} for b in batches}
    waits = closing or stage.closing or ("writing the results" if stage.close else None)
    with stage_progress(artifact_key(f"{name}-progress", key), title or name, units, closing=waits) as progress:
        if stage.mapped:
            with model_resources(run.device):
                done = map_calls(items_task, [[i.to_json() for i in b] for b in batches], desc=f"{name} items",
                                 on_done=lambda i: progress.finish(batches[i][0].key), stage=name, section=section,
                                 run=params)
        else:  # a direct call runs in this process (Prefect 3), not on the task runner
            done = []
            for b in batches:
                done.append(call(items_task, [i.to_json() for i in b], name, section, params))
                progress.finish(b[0].key)
        results = [{**r, "cached": d["cached"], "made_by": d.get("made_by")} for d in done for r in d["items"]]
        closed = None
        if stage.close is not None:
            # Without who made them and whether from the cache: those differ between a first run and a re-run,
            # and the closing task's key must not.
            plain = [{k: v for k, v in r.items() if k not in ("cached", "made_by")} for r in results]
            closed = call(close_task, name, plain, section, params)
        extra = then() if then is not None else None
        if waits:
            progress.closing_done()
    summary = stage.summarize(results, section, run, closed)
    if "line" in summary:
        print(summary.pop("line"))
    return StageOutcome(summary, results, closed, extra)
