"""The whole pipeline with its inputs, outputs and cached results on s3://, served by moto on loopback."""

import socket

import pandas as pd
import pytest

BUCKET = "v2a-test"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    """A moto S3 server on 127.0.0.1; fsspec's s3 config points every s3fs client at it."""
    import fsspec
    import s3fs
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    patch = pytest.MonkeyPatch()
    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_SESSION_TOKEN": "testing", "AWS_DEFAULT_REGION": "us-east-1"}.items():
        patch.setenv(key, value)
    endpoint = f"http://127.0.0.1:{port}"
    patch.setenv("FSSPEC_S3_ENDPOINT_URL", endpoint)  # for any child process
    patch.setitem(fsspec.config.conf, "s3", {"endpoint_url": endpoint})
    s3fs.S3FileSystem.clear_instance_cache()
    fs = fsspec.filesystem("s3")
    fs.mkdir(BUCKET)
    fs.endpoint = endpoint
    try:
        yield fs
    finally:
        s3fs.S3FileSystem.clear_instance_cache()
        patch.undo()
        server.stop()


@pytest.fixture(scope="module")
def s3_run(s3, synth_dir, prefect_harness):
    from flows.pipeline import pipeline_flow

    s3.put(str(synth_dir / "vggsound.csv"), f"{BUCKET}/data/vggsound.csv")
    s3.put(str(synth_dir / "videos"), f"{BUCKET}/data/", recursive=True)
    config = {
        "out": f"s3://{BUCKET}/run", "profile": "tiny",
        "data": {"csv": f"s3://{BUCKET}/data/vggsound.csv", "videos": f"s3://{BUCKET}/data/videos",
                 "dataset": "synthetic"},
        "embed": {"num_frames": 3, "max_seconds": 2.0, "shard_size": 6},
        "train": {"mapper": "diff-mlp", "epochs": 2, "batch_size": 8, "val_sampling_steps": 5},
        "generate": {"seconds": 1.0, "steps": 3, "mapper_steps": 5, "batch_size": 3},
        "evaluate": {"metrics": ["fd", "fad", "cs"]},
    }
    state = pipeline_flow(config, return_state=True)
    return config, state.result()


def test_every_stage_writes_to_s3_and_the_results_read_back_with_pandas(s3, s3_run):
    _, summary = s3_run

    def read(uri):
        # With storage_options pandas goes through fsspec/s3fs; without, pyarrow's own S3 client ignores them.
        return pd.read_parquet(uri, storage_options={"endpoint_url": s3.endpoint})

    assert len(read(f"s3://{BUCKET}/run/clips.parquet")) == 12
    assert len(read(f"s3://{BUCKET}/run/embeddings")) == 12
    assert s3.exists(f"{BUCKET}/run/mappers/diff-mlp/model.safetensors")
    assert s3.exists(f"{BUCKET}/run/mappers/diff-mlp/config.json")
    assert len(s3.glob(f"{BUCKET}/run/generations/{summary['run_id']}/audio/*.wav")) == 3
    results = read(f"s3://{BUCKET}/run/results")
    mine = results[results["run_id"] == summary["run_id"]]
    assert {"fd", "fad", "cs"} <= set(mine["metric"]) and mine["value"].notna().all()


def test_cached_results_live_on_s3_and_a_rerun_is_served_from_them(s3, s3_run):
    from flows.pipeline import pipeline_flow
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (FlowRunFilter, FlowRunFilterParentFlowRunId, TaskRunFilter,
                                                TaskRunFilterFlowRunId)

    config, summary = s3_run
    assert s3.ls(f"{BUCKET}/run/.prefect-results")  # cache.location defaults to OUT/.prefect-results
    state = pipeline_flow(config, return_state=True)
    assert state.result()["run_id"] == summary["run_id"]
    with get_client(sync_client=True) as client:
        subflows = client.read_flow_runs(flow_run_filter=FlowRunFilter(
            parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[state.state_details.flow_run_id])))
        runs = client.read_task_runs(task_run_filter=TaskRunFilter(
            flow_run_id=TaskRunFilterFlowRunId(any_=[f.id for f in subflows])))
    heavy = [r for r in runs if r.name == "close-evaluate" or r.name.rsplit("-", 1)[0] in (
        "embed-shards", "train-mapper", "generate-shard", "evaluate-unit")]
    assert heavy and all(r.state.name == "Cached" for r in heavy)
