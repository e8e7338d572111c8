"""One stage shape (v2a/stages/shape.py): a stage is its module, its configuration section, its table's schema and
one line in `v2a.stages.STAGES`; the Prefect task that runs it (tasks/stage.py) gives every stage caching,
"skip if done", progress and the closing step. The toy stage below is all of that in one module, and nothing
else in the project changes for it to run."""

from __future__ import annotations

import sys
import types

import pyarrow as pa
import pytest
from pydantic import BaseModel

from v2a.core import storage
from v2a.io import parquet
from v2a.stages import STAGES, shape, stage as stage_named

TOY_MODULE = "toy_stage_for_tests"
CALLS: list[str] = []
CLOSES: list[dict] = []


class ToyConfig(BaseModel):  # the stage's configuration section
    words_per_task: int = 2
    suffix: str = "!"


TOY_SCHEMA = pa.schema([pa.field("word", pa.string(), nullable=False), pa.field("said", pa.string())])


def _uri(run, key):
    return storage.join(run.out, "toy", f"{key}.parquet")


def _plan(section, run, models):
    return [shape.WorkItem(w, {"word": w}, {"words": 1}) for w in run.arg("words")]


def _run(item, section, run, models, report):
    CALLS.append(item.key)
    parquet.write_table([{"word": item.inputs["word"], "said": item.inputs["word"] + section.suffix}],
                        _uri(run, item.key), TOY_SCHEMA, "toy")
    report(words=1)
    return {"written": 1}


def _close(results, section, run, models, origin):
    CLOSES.append(origin)
    return {"items": len(results), "outputs": []}


def _summarize(results, section, run, closing):
    new = [r for r in results if not r["skipped"] and not r["cached"]]
    return {"written": sum(r["written"] for r in new), "already": len(results) - len(new), "closing": closing}


def _toy_module() -> types.ModuleType:
    module = types.ModuleType(TOY_MODULE)
    module.STAGE = shape.Stage(
        name="toy", section="toy", plan=_plan, run=_run, summarize=_summarize, close=_close,
        done=lambda item, section, run: storage.exists(_uri(run, item.key)),
        outputs=lambda item, section, run: [_uri(run, item.key)],
        items_per_task=lambda section: section.words_per_task, task_label="words")
    return module


@pytest.fixture
def toy(monkeypatch):
    monkeypatch.setitem(sys.modules, TOY_MODULE, _toy_module())
    monkeypatch.setitem(STAGES, "toy", TOY_MODULE)  # the one line a new stage adds
    CALLS.clear()
    CLOSES.clear()
    yield


def _sections() -> set[str]:
    import v2a.config as config

    return {c._section for c in vars(config).values()
            if isinstance(c, type) and issubclass(c, config.Section) and isinstance(getattr(c, "_section", None), str)}


def test_every_listed_stage_has_the_shape_and_reads_a_section_of_the_configuration():
    sections = _sections()
    assert {"data", "embed", "train", "generate", "evaluate", "report"} <= sections
    for name in STAGES:
        s = stage_named(name)
        assert isinstance(s, shape.Stage) and s.name == name
        assert s.section in sections, f"stage {name}: no configuration section {s.section!r} in v2a.config"
    with pytest.raises(ValueError, match="unknown stage 'nope'"):
        stage_named("nope")


def test_a_stage_runs_without_prefect_item_by_item(toy, tmp_path):
    run = shape.StageRun(str(tmp_path), args={"words": ["a", "b", "c"]})
    first = shape.run_stage(stage_named("toy"), ToyConfig(), run, models=None)
    assert first["written"] == 3 and CALLS == ["a", "b", "c"] and CLOSES == [{}]
    again = shape.run_stage(stage_named("toy"), ToyConfig(), run, models=None)
    assert again == {"written": 0, "already": 3, "closing": {"items": 3, "outputs": []}}
    assert CALLS == ["a", "b", "c"]  # done items are skipped, by the shape, not by the stage


def test_a_new_stage_gets_caching_skip_if_done_progress_and_its_closing_step_from_the_task(
        toy, tmp_path, prefect_harness):
    from prefect import flow

    from flows.stage import run_stage

    run = shape.StageRun(str(tmp_path), args={"words": ["a", "b", "c"]})

    @flow(name="toy-stage")
    def toy_flow():
        from prefect.runtime import flow_run

        outcome = run_stage("toy", ToyConfig(), run, "toy-run")
        return outcome, str(flow_run.id)

    outcome, flow_run_id = toy_flow()
    assert outcome.summary["written"] == 3 and sorted(CALLS) == ["a", "b", "c"]
    assert [r["said"] for r in parquet.read_table(storage.join(str(tmp_path), "toy"), TOY_SCHEMA).to_pylist()] \
        == ["a!", "b!", "c!"]
    assert CLOSES == [{"flow_run_id": flow_run_id}]  # who ran the closing step, given by the task
    assert [r["key"] for r in outcome.results] == ["a", "b", "c"]

    # An unchanged re-run: every batch and the closing step come from the task cache.
    outcome, _ = toy_flow()
    assert outcome.summary["written"] == 0 and outcome.summary["already"] == 3 and len(CALLS) == 3
    assert outcome.closing["cached"] and len(CLOSES) == 1

    # One output gone: its batch runs again (its recorded outputs changed), and within it only that item.
    (tmp_path / "toy" / "a.parquet").unlink()
    outcome, _ = toy_flow()
    assert CALLS[3:] == ["a"]
    assert outcome.summary["written"] == 1 and outcome.summary["already"] == 2

    # A changed section is a new key: every batch runs; the items, all there, are skipped by "done".
    outcome = run_stage_in_flow(run, ToyConfig(suffix="?"))
    assert not any(r["cached"] for r in outcome.results) and all(r["skipped"] for r in outcome.results)
    assert len(CALLS) == 4 and outcome.summary["written"] == 0


def run_stage_in_flow(run, section):
    from prefect import flow

    from flows.stage import run_stage

    @flow(name="toy-stage-other-settings")
    def other():
        return run_stage("toy", section, run, "toy-run")

    return other()


def test_the_progress_artifact_counts_the_items(toy, tmp_path, prefect_harness, monkeypatch):
    from prefect import flow

    import tasks.progress
    from flows.stage import run_stage

    monkeypatch.setattr(tasks.progress, "UPDATE_EVERY_S", 0.0)
    seen = []
    real = tasks.progress.StageProgress.close

    def close(self):
        seen.append((self.key, self.percent(), self.describe()))
        real(self)

    monkeypatch.setattr(tasks.progress.StageProgress, "close", close)
    run = shape.StageRun(str(tmp_path), args={"words": ["a", "b", "c", "d", "e"]})

    @flow(name="toy-progress")
    def toy_flow():
        return run_stage("toy", ToyConfig(), run, "progress-run", title="toy words")

    toy_flow()
    assert seen == [("toy-progress-progress-run", 100.0, "toy words: 5 of 5 words")]


def test_stages_are_listed_in_one_place_and_no_flow_or_task_names_a_stage_module():
    """The count of files a stage adds, held: the only place that lists the stage modules is STAGES, and no
    Prefect task is written for one stage (the tasks are tasks/stage.py's)."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    sources = [p for d in ("flows", "tasks", "v2a") for p in (root / d).rglob("*.py")]
    for name, module in STAGES.items():
        listing = [p.relative_to(root).as_posix() for p in sources if f'"{module}"' in p.read_text()]
        assert listing == ["v2a/stages/__init__.py"], (name, listing)
    defined = sorted(p.stem if p.name != "__init__.py" else p.parent.name
                     for p in (root / "v2a" / "stages").rglob("*.py") if "\nSTAGE = Stage(" in p.read_text())
    assert defined == sorted(STAGES)
    per_stage_tasks = [p.name for p in (root / "tasks").glob("*.py")
                       if any(f"v2a.stages import {n}" in p.read_text() for n in STAGES if n != "evaluate")]
    assert per_stage_tasks == []
