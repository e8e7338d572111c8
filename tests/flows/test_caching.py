"""Cached pipeline re-runs, re-evaluation, `v2a status` and the run's closing artifact, on one pipeline output."""

import copy
import re
import shutil

import pandas as pd
import pytest

from v2a import __version__

# The tasks that decode media, build models, train, generate or score: none may run on an unchanged re-run.
HEAVY = {"ingest-clips", "plan-embed", "embed-shards", "domain-gap-report", "train-mapper", "plan-generate",
         "generate-shard", "plan-evaluate", "evaluate-unit", "close-evaluate", "report-page"}


def _config(synth_dir, out) -> dict:
    return {
        "out": str(out), "profile": "tiny",
        "data": {"csv": str(synth_dir / "vggsound.csv"), "videos": str(synth_dir / "videos"), "dataset": "synthetic"},
        "embed": {"num_frames": 3, "max_seconds": 2.0, "shard_size": 5},
        "train": {"mapper": "diff-mlp", "epochs": 3, "batch_size": 8, "val_sampling_steps": 5},
        "generate": {"seconds": 1.0, "steps": 3, "mapper_steps": 5, "batch_size": 2},
        "evaluate": {"metrics": ["fd", "cs"]},
    }


def run_pipeline(config: dict) -> tuple[dict, dict[str, list[str]]]:
    """Run the pipeline flow; return its summary and the final state names of its tasks, by task name."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (FlowRunFilter, FlowRunFilterParentFlowRunId, TaskRunFilter,
                                                TaskRunFilterFlowRunId)

    from flows.pipeline import pipeline_flow

    state = pipeline_flow(config, return_state=True)
    summary = state.result()
    with get_client(sync_client=True) as client:
        subflows = client.read_flow_runs(flow_run_filter=FlowRunFilter(
            parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[state.state_details.flow_run_id])))
        runs = client.read_task_runs(task_run_filter=TaskRunFilter(
            flow_run_id=TaskRunFilterFlowRunId(any_=[f.id for f in subflows])))
    states: dict[str, list[str]] = {}
    for r in runs:
        states.setdefault(task_name(r.name), []).append(r.state.name)
    return summary, states


def task_name(run_name: str) -> str:
    """A task run's name without its item (`embed-shards-3` -> `embed-shards`); a stage's one-off steps
    (`plan-embed`, `close-evaluate`) and single tasks (`ingest`) keep theirs."""
    if run_name.startswith(("plan-", "close-")) or "-" not in run_name:
        return run_name
    return run_name.rsplit("-", 1)[0]


def _forget_models() -> None:
    from v2a.runtime import model_cache

    for cached in (model_cache.get_model, model_cache._load_mapper, model_cache.empty_text_embedding):
        cached.cache_clear()


def _models_loaded() -> int:
    from v2a.runtime import model_cache

    return model_cache.get_model.cache_info().currsize + model_cache._load_mapper.cache_info().currsize


@pytest.fixture(scope="module")
def first_run(synth_dir, tmp_path_factory, prefect_harness):
    out = tmp_path_factory.mktemp("cached-run")
    config = _config(synth_dir, out)
    summary, states = run_pipeline(config)
    return config, out, summary, states


def test_the_first_run_executes_every_stage(first_run):
    _, _, _, states = first_run
    assert HEAVY <= set(states)
    assert all(s == "Completed" for name in HEAVY for s in states[name])


@pytest.fixture(scope="module")
def unchanged_rerun(first_run):
    config, _, _, _ = first_run
    _forget_models()
    again, states = run_pipeline(config)
    return again, states, _models_loaded()


def test_an_unchanged_rerun_executes_no_heavy_task_and_loads_no_model(first_run, unchanged_rerun):
    _, out, summary, _ = first_run
    again, states, models_loaded = unchanged_rerun
    assert again["run_id"] == summary["run_id"]
    assert {name: set(states[name]) for name in HEAVY} == {name: {"Cached"} for name in HEAVY}
    assert models_loaded == 0
    assert (out / ".prefect-results").is_dir()  # cache.location defaults to OUT/.prefect-results


def test_a_cached_rerun_publishes_its_artifacts_again_naming_the_run_that_made_them(first_run, unchanged_rerun):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
    from prefect.client.schemas.sorting import ArtifactSort

    from flows.naming import artifact_key, run_key

    _, out, summary, _ = first_run
    key = artifact_key("domain-gap", run_key(str(out)))
    with get_client(sync_client=True) as client:
        versions = client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])),
                                         sort=ArtifactSort.CREATED_DESC)
    assert len(versions) >= 2
    latest, first = versions[0].data, versions[-1].data
    # Linked where the server has a UI address, named in words where it has none.
    assert re.search(r"Unchanged since flow run [\[`]embed-", latest) and "Unchanged" not in first
    assert latest.count("](data:image/png;base64,") == 2  # the pictures themselves, as on the first run


def test_a_changed_train_config_reruns_train_and_the_stages_after_it_only(first_run):
    config, out, summary, _ = first_run
    changed = copy.deepcopy(config)
    changed["train"]["epochs"] = 4
    again, states = run_pipeline(changed)
    assert again["run_id"] != summary["run_id"]  # a new generation set for the new mapper
    for upstream in ("ingest-clips", "plan-embed", "embed-shards", "domain-gap-report"):
        assert set(states[upstream]) == {"Cached"}, upstream
    for downstream in ("train-mapper", "generate-shard", "evaluate-unit", "close-evaluate", "report-page"):
        assert set(states[downstream]) == {"Completed"}, downstream


def test_a_cached_stage_whose_output_was_deleted_runs_again(first_run):
    config, out, _, _ = first_run
    shard, *others = sorted((out / "embeddings").glob("shard-*.parquet"))
    before = {p: p.stat().st_mtime_ns for p in others}
    shard.unlink()
    _, states = run_pipeline(config)
    assert shard.exists()
    # The hit on the vanished shard is checked and the task holding it runs again, embedding that shard
    # alone (the others are on disk, untouched); like make, the stages reading the rewritten table run
    # after it (a fingerprint is the files' stat, not their bytes).
    assert "Completed" in states["embed-shards"]
    assert {p: p.stat().st_mtime_ns for p in others} == before
    assert states["ingest-clips"] == ["Cached"] and states["plan-embed"] == ["Cached"]


def test_generation_sets_without_results_of_this_version_are_found_and_reevaluated(first_run):
    from flows.reevaluate import reevaluate_flow
    from v2a.config import EvaluateConfig
    from v2a.stages.reevaluate import pending_evaluation

    config, out, summary, _ = first_run
    assert pending_evaluation(str(out)) == []
    assert summary["run_id"] in {s.run_id for s in pending_evaluation(str(out), version="0.0.0-older")}
    shutil.rmtree(out / "results")
    pending = pending_evaluation(str(out))
    assert summary["run_id"] in {s.run_id for s in pending}
    # A folder holding several pipeline outputs is searched one level down.
    assert {s.run_id for s in pending_evaluation(str(out.parent))} >= {s.run_id for s in pending}

    done = reevaluate_flow(str(out), profile="tiny", evaluate=EvaluateConfig(metrics=["fd", "cs"]))
    assert {d["run_id"] for d in done} == {s.run_id for s in pending}
    results = pd.read_parquet(out / "results")
    mine = results[results["run_id"] == summary["run_id"]]
    assert {"fd", "cs"} <= set(mine["metric"]) and set(mine["v2a_version"]) == {__version__}
    assert pending_evaluation(str(out)) == []


def test_status_lists_stages_row_counts_errors_and_runs(first_run, capsys):
    from flows.cli import main
    from v2a.tools.status import out_status

    _, out, summary, _ = first_run
    status = out_status(str(out))
    stages = {s["stage"]: s for s in status["stages"]}
    assert [s["stage"] for s in status["stages"]] == ["ingest", "embed", "train", "generate", "evaluate"]
    assert all(s["done"] for s in status["stages"])
    assert stages["ingest"]["rows"] == 12 and stages["embed"]["rows"] == 12 and stages["train"]["rows"] == 1
    assert all(s["errors"] == 0 for s in status["stages"])
    run = next(r for r in status["runs"] if r["run_id"] == summary["run_id"])
    assert run["generated"] == 3 and run["evaluated"]

    assert main(["status", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert summary["run_id"] in printed and "embed" in printed and "evaluate" in printed


def test_the_run_ends_with_a_summary_artifact_linking_its_reports(first_run):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    _, out, summary, _ = first_run
    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[f"pipeline-summary-{summary['run_key']}"])))
    mine = [a for a in artifacts if summary["run_id"] in (a.data or "")]
    assert mine
    text = mine[0].data
    assert "| embed | yes | 12 |" in text and "## Metrics" in text
    # The listening report, as a path to copy (a web page cannot open a local file), never a file:// link.
    assert f"listening report: `{(out / 'listening').resolve()}" in text and "file://" not in text


@pytest.fixture()
def unfinished_copy(first_run, tmp_path):
    """A copy of the run whose plan names three clips more than were generated: a generate that stopped."""
    import json

    _, out, summary, _ = first_run
    copy_out = tmp_path / "unfinished"
    shutil.copytree(out, copy_out, ignore=shutil.ignore_patterns(".prefect-results", ".v2a.lock", "results"))
    for other in (copy_out / "generations").iterdir():  # sets other tests of this module added: not this test's
        if other.name != summary["run_id"]:
            shutil.rmtree(other)
    plan_file = copy_out / "generations" / summary["run_id"] / "plan.json"
    plan = json.loads(plan_file.read_text())
    assert len(plan["clip_ids"]) == 3 and plan["samples"] == 1  # written by the generate flow
    plan["clip_ids"] += ["never-generated-1", "never-generated-2", "never-generated-3"]
    plan_file.write_text(json.dumps(plan))
    return copy_out, summary["run_id"]


def test_reevaluate_skips_an_unfinished_set_with_one_line_saying_how_far_it_got(unfinished_copy, caplog):
    from flows.reevaluate import reevaluate_flow
    from v2a.config import EvaluateConfig

    out, run_id = unfinished_copy
    done = reevaluate_flow(str(out), profile="tiny", evaluate=EvaluateConfig(metrics=["fd"]))
    assert done == []
    # The flow's prints go to its run log (log_prints).
    assert f"{run_id}: 3 of 6 clips generated; run generate again" in caplog.text
    assert not (out / "results").exists()


def test_evaluate_refuses_an_unfinished_set_in_one_line_unless_allowed(unfinished_copy, capsys):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterName

    from flows.cli import main
    from flows.naming import run_key

    out, run_id = unfinished_copy
    gen_dir = str(out / "generations" / run_id)
    args = ["evaluate", "--generations", gen_dir, "--out", str(out), "--profile", "tiny", "--metrics", "fd", "cs"]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"v2a evaluate: error: {run_id}: 3 of 6 clips generated; run generate again (or score it as it is "
                   "with --allow-partial)"]
    assert not (out / "results").exists()

    assert main(args + ["--allow-partial"]) == 0
    results = pd.read_parquet(out / "results")
    assert set(results["complete"]) == {False} and set(results.loc[results["metric"] == "fd", "n_clips"]) == {3}
    # The evaluation's flow run is named after the generation set it scored.
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(flow_run_filter=FlowRunFilter(
            name=FlowRunFilterName(any_=[f"evaluate-{run_key(str(out), run_id)}"])))
    assert runs
