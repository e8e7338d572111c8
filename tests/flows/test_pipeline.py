"""Every stage once, under Prefect, on the small synthetic set with the tiny profile."""

import json
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow.parquet as pq
import pytest

from storage_schemas import embeddings as embeddings_schema
from storage_schemas import generations as generations_schema
from storage_schemas import results as results_schema
from storage_schemas import scores as scores_schema


@pytest.fixture(scope="module")
def pipeline_run(synth_dir, tmp_path_factory, prefect_harness):
    from flows.pipeline import pipeline_flow

    out = tmp_path_factory.mktemp("run")
    config = {
        "out": str(out), "profile": "tiny",
        "data": {"csv": str(synth_dir / "vggsound.csv"), "videos": str(synth_dir / "videos"), "dataset": "synthetic"},
        "embed": {"num_frames": 3, "max_seconds": 2.0, "shard_size": 5},
        "train": {"mapper": "diff-mlp", "epochs": 3, "batch_size": 8, "val_sampling_steps": 5},
        "generate": {"seconds": 1.0, "steps": 3, "mapper_steps": 5, "batch_size": 2},
    }
    summary = pipeline_flow(config)
    return out, summary


def test_embeddings_shards_match_their_schema(pipeline_run):
    out, _ = pipeline_run
    shards = sorted((out / "embeddings").glob("shard-*.parquet"))
    assert len(shards) == 3  # 12 clips in shards of 5
    for shard in shards:
        assert pq.read_schema(shard).equals(embeddings_schema.schema(32), check_metadata=False)  # tiny: 32-d
    df = pd.read_parquet(out / "embeddings")
    assert len(df) == 12 and df["clip_id"].is_unique


def test_mapper_checkpoint_is_safetensors_and_json(pipeline_run):
    out, _ = pipeline_run
    ckpt = out / "mappers" / "diff-mlp"
    assert (ckpt / "config.json").exists() and (ckpt / "model.safetensors").exists()


def test_one_audio_file_per_test_clip_and_a_valid_generations_table(pipeline_run):
    out, summary = pipeline_run
    gen_dir = out / "generations" / summary["run_id"]
    table = pq.read_table(gen_dir / "table")
    assert table.select(generations_schema.SCHEMA.names).schema.equals(generations_schema.SCHEMA, check_metadata=False)
    test_ids = set(pd.read_parquet(out / "clips.parquet").query("split == 'test'")["clip_id"])
    assert set(table.column("clip_id").to_pylist()) == test_ids
    assert len(list((gen_dir / "audio").glob("*.wav"))) == len(test_ids)


def test_results_hold_fd_fad_and_cs_for_the_test_split(pipeline_run):
    out, summary = pipeline_run
    df = pd.read_parquet(out / "results")
    assert pq.read_table(out / "results").schema.equals(results_schema.SCHEMA, check_metadata=False)
    run = df[df["run_id"] == summary["run_id"]]
    assert {"fd", "fad", "cs", "gen_time_s", "trainable_params_m"} <= set(run["metric"])
    config = json.load(open(out / "mappers" / "diff-mlp" / "config.json"))
    params = run.loc[run["metric"] == "trainable_params_m", "value"].item()
    assert params == config["trainable_params"] / 1e6
    assert set(run["split"]) == {"test"}
    assert run["value"].notna().all()
    fd = duckdb.sql(f"select value from '{out}/results/*.parquet' where metric = 'fd'").fetchall()
    assert len(fd) == 1 and fd[0][0] >= 0
    # CS averages per-sample values: it has an interval, and the values are stored beside the results.
    cs = run[run["metric"] == "cs"].iloc[0]
    assert cs["ci_resamples"] == 1000 and cs["ci_low"] <= cs["value"] <= cs["ci_high"]
    assert pq.read_table(out / "scores").schema.equals(scores_schema.SCHEMA, check_metadata=False)
    per_sample = pd.read_parquet(out / "scores").query(f"run_id == '{summary['run_id']}' and metric == 'cs'")
    assert per_sample["value"].mean() == pytest.approx(cs["value"], rel=1e-9)


def test_the_run_ends_with_a_listening_report_attached_as_an_artifact(pipeline_run):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    out, summary = pipeline_run
    index = Path(summary["report"])
    assert index.is_file() and index.parent.parent == out / "listening"
    assert summary["run_id"] in index.read_text()
    with get_client(sync_client=True) as client:
        # One key per run and output: the report of another run is not a version of this one.
        key = f"listening-report-{summary['run_key']}"
        artifacts = client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])))
    assert artifacts
    text = artifacts[0].data
    # The page is a local file: its path to copy, never a file:// link a browser refuses from a web page.
    assert f"`{index}`" in text and "file://" not in text
    # The page's headline in the artifact itself: metrics, and a clip's poster and spectrograms, embedded.
    assert "| run | FD | FAD | CS |" in text
    assert text.count("](data:image/png;base64,") >= 3


def test_the_training_curve_is_attached_as_an_inline_image(pipeline_run):
    import base64

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    from flows.naming import run_key

    out, _ = pipeline_run
    curve = out / "mappers" / "diff-mlp" / "training_curve.png"
    key = f"mapper-training-curve-{run_key(str(out / 'mappers' / 'diff-mlp'))}"
    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])))
    inline = f"![training curve](data:image/png;base64,{base64.b64encode(curve.read_bytes()).decode()})"
    assert any(inline in (a.data or "") and str(curve) in (a.data or "") for a in artifacts)


def test_every_row_names_the_host_and_device_that_made_it(pipeline_run):
    from v2a.core.devices import host
    from v2a.tools.status import out_status

    out, summary = pipeline_run
    for table in (out / "embeddings", out / "generations" / summary["run_id"] / "table", out / "results"):
        rows = pd.read_parquet(table, columns=["host", "device"])
        assert len(rows) and set(rows["host"]) == {host()} and set(rows["device"]) == {"cpu"}, table
    spread = {(r["stage"], r["host"], r["device"]) for r in out_status(str(out))["made_on"]}
    assert {("embed", host(), "cpu"), ("generate", host(), "cpu"), ("evaluate", host(), "cpu")} <= spread
