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
