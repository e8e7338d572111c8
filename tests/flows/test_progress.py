"""A long stage's progress in the Prefect UI: a progress artifact that moves while the tasks run (embed,
generate, train), reaching the server at a bounded rate; training logs a line per epoch."""

import time

import pytest

from v2a.config import DataConfig, EmbedConfig, GenerateConfig, TrainStageConfig


@pytest.fixture
def published(monkeypatch):
    """Every update a progress artifact gets, as (percent, description), with no rate bound (interval 0)."""
    import prefect.artifacts

    import tasks.progress

    seen: list[tuple[float, str]] = []
    update = prefect.artifacts.update_progress_artifact

    def spy(artifact_id, progress, description=None, client=None):
        seen.append((progress, description))
        return update(artifact_id, progress, description=description)

    monkeypatch.setattr(prefect.artifacts, "update_progress_artifact", spy)
    monkeypatch.setattr(tasks.progress, "UPDATE_EVERY_S", 0.0)
    return seen


@pytest.fixture(scope="module")
def ingested(synth_dir, tmp_path_factory, prefect_harness):
    from flows.ingest import ingest_flow

    out = tmp_path_factory.mktemp("progress") / "run"
    ingest_flow(str(out), DataConfig(csv=str(synth_dir / "vggsound.csv"), videos=str(synth_dir / "videos"),
                                     dataset="synthetic"))
    return out


def _midway(seen, title: str) -> list[str]:
    return [d for p, d in seen if d.startswith(title) and 0 < p < 100]


def test_updates_reach_the_server_at_most_once_per_interval_and_once_at_the_end(prefect_harness):
    from prefect import flow
    from prefect.artifacts import Artifact

    from tasks.progress import stage_progress

    @flow
    def count_slowly() -> tuple[int, float]:
        t0 = time.monotonic()
        with stage_progress("progress-rate-test", "count", {0: {"items": 400}}, every=0.25) as progress:
            for _ in range(400):
                progress.add(0, items=1)
                time.sleep(0.0025)
        return progress.updates, time.monotonic() - t0

    updates, seconds = count_slowly()
    assert 2 <= updates <= seconds / 0.25 + 2
    artifact = Artifact.get("progress-rate-test")
    assert float(artifact.data) == 100.0 and artifact.description == "count: 400 of 400 items"


def test_embed_progress_moves_clip_by_clip_while_its_task_runs(ingested, published, monkeypatch):
    import prefect.artifacts

    from flows.embed import embed_flow

    # Whether the domain-gap pictures were there when each update was sent.
    drawn: list[bool] = []
    update = prefect.artifacts.update_progress_artifact

    def spy(artifact_id, progress, description=None, client=None):
        drawn.append(any((ingested / "reports").glob("*.png")))
        return update(artifact_id, progress, description=description)

    monkeypatch.setattr(prefect.artifacts, "update_progress_artifact", spy)
    embed_flow(str(ingested), profile="tiny", embed=EmbedConfig(num_frames=2, max_seconds=2.0, shard_size=5))
    midway = _midway(published, "embed")
    assert midway and "of 12 clips" in midway[0] and "of 3 shards" in midway[0]
    # Every shard done, the plot not yet: short of 100, saying what it waits for; 100 once the plot is there.
    full = next(i for i, (p, _) in enumerate(published) if p == 100.0)
    assert published[full - 1] == (95.0, "embed: 12 of 12 clips, 3 of 3 shards; drawing the domain-gap plot")
    assert drawn[full - 1:full + 1] == [False, True]
    assert set(published[full:]) == {(100.0, "embed: 12 of 12 clips, 3 of 3 shards")}


def test_generate_progress_moves_batch_by_batch(ingested, published):
    from flows.generate import generate_flow

    if not (ingested / "embeddings").exists():
        pytest.skip("needs the embed test's output")
    generate_flow(str(ingested / "embeddings"), str(ingested), "progress-test", profile="tiny",
                  generate=GenerateConfig(conditioning="no-mapper", seconds=1.0, steps=2, batch_size=1))
    assert _midway(published, "generate")  # one update per batch of one sample
    assert published[-1] == (100.0, "generate: 3 of 3 samples, 3 of 3 clips")


def test_train_progress_moves_epoch_by_epoch_and_the_log_has_a_line_per_epoch(ingested, published):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId

    from flows.train import train_flow

    if not (ingested / "embeddings").exists():
        pytest.skip("needs the embed test's output")
    state = train_flow(str(ingested / "embeddings"), str(ingested / "mappers" / "diff-mlp"),
                       train=TrainStageConfig(mapper="diff-mlp", epochs=3, batch_size=8, val_sampling_steps=2),
                       return_state=True)
    assert state.is_completed()
    midway = _midway(published, "train diff-mlp")
    assert [d.split(";")[0] for d in midway] == ["train diff-mlp: 1 of 3 epochs", "train diff-mlp: 2 of 3 epochs"]
    assert "epoch 2/3: train_loss" in midway[1]
    with get_client(sync_client=True) as client:
        deadline = time.monotonic() + 10
        while True:  # logs reach the server in batches
            logs = client.read_logs(log_filter=LogFilter(
                flow_run_id=LogFilterFlowRunId(any_=[state.state_details.flow_run_id])))
            lines = [log.message for log in logs if log.message.startswith("train: epoch")]
            if len(lines) >= 3 or time.monotonic() > deadline:
                break
            time.sleep(0.5)
    assert [line.split(":")[1].strip() for line in lines] == ["epoch 1/3", "epoch 2/3", "epoch 3/3"]
