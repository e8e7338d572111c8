"""A run's Prefect identity includes where it writes: two outputs never share a name, key or event resource."""

from flows.naming import artifact_key, location_digest, run_key, run_tags
from flows.pipeline import default_run_id
from v2a.config import PipelineConfig


def _config(out: str) -> PipelineConfig:
    return PipelineConfig(out=out, profile="tiny", data={"images": "imgs"})


def test_two_outputs_get_different_run_ids_keys_and_artifact_keys_from_one_config(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    a, b = _config("runs/a"), _config("elsewhere/a")
    assert default_run_id(a) != default_run_id(b)
    assert default_run_id(a).startswith(default_run_id(b)[:12])  # the config part is the same
    key_a, key_b = run_key(a.out, default_run_id(a)), run_key(b.out, default_run_id(b))
    assert key_a != key_b and artifact_key("evaluation", key_a) != artifact_key("evaluation", key_b)
    # A default run id already ends with the output's digest: the key does not repeat it.
    assert key_a == default_run_id(a)
    # A run id given by hand gets the digest: "baseline" in two outputs are two runs.
    assert run_key("runs/a", "baseline") == f"baseline-{location_digest('runs/a')}" != run_key("x/a", "baseline")
    # A stage run on its own: the folder's name and digest.
    assert run_key("runs/a") == f"a-{location_digest('runs/a')}"


def test_one_output_has_one_digest_however_it_is_spelled(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs").mkdir()
    spellings = ["runs/a", "./runs/a/", str(tmp_path / "runs" / "a"), f"file://{tmp_path}/runs/a"]
    assert len({location_digest(s) for s in spellings}) == 1
    assert location_digest("s3://bucket/runs/a") == location_digest("s3://bucket/runs/a/") != location_digest("runs/a")


def test_runs_are_tagged_with_their_stage_profile_and_dataset():
    assert run_tags("embed", "tiny", "vggsound") == ["v2a", "stage:embed", "profile:tiny", "dataset:vggsound"]
    assert run_tags("ingest", dataset="synthetic") == ["v2a", "stage:ingest", "dataset:synthetic"]


def test_a_stage_run_on_its_own_tags_its_task_runs_as_it_tags_itself(synth_dir, tmp_path, prefect_harness):
    """As a stage deployment runs it: the flow alone, not inside the pipeline (which enters its own tags)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import TaskRunFilter, TaskRunFilterFlowRunId

    from flows.ingest import ingest_flow
    from v2a.config import DataConfig

    state = ingest_flow(str(tmp_path / "run"), DataConfig(csv=str(synth_dir / "vggsound.csv"),
                                                          videos=str(synth_dir / "videos"), dataset="synthetic"),
                        return_state=True)
    run_id = state.state_details.flow_run_id
    with get_client(sync_client=True) as client:
        flow_run = client.read_flow_run(run_id)
        task_runs = client.read_task_runs(
            task_run_filter=TaskRunFilter(flow_run_id=TaskRunFilterFlowRunId(any_=[run_id])))
    expected = {"v2a", "stage:ingest", "dataset:synthetic"}
    assert expected <= set(flow_run.tags)
    assert task_runs and all(expected <= set(t.tags) for t in task_runs), [(t.name, t.tags) for t in task_runs]


def test_the_gpu_limits_the_docs_create_are_the_ones_model_tasks_take(monkeypatch):
    """prefect.yaml's header and the README create `gpu:HOST:cuda:K`, the limit a model task on GPU K takes."""
    import re
    import socket
    from pathlib import Path

    from tasks.operations import gpu_slot

    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    repo = Path(__file__).resolve().parents[2]
    for doc in ("prefect.yaml", "README.md"):
        names = re.findall(r"prefect gcl create (\S+)", (repo / doc).read_text())
        assert names, doc
        for name in names:
            # What the shell makes of it: this host, GPU 0 for the README's loop over GPUs ($i).
            filled = name.strip('"').replace("$(hostname)", socket.gethostname()).replace("$i", "0")
            assert filled == gpu_slot("cuda:0"), (doc, name)
