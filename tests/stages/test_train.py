"""The train stage on any fsspec location, and the pipeline's restart of a mapper folder of another configuration."""

import numpy as np
import pytest

from storage_schemas import embeddings as embeddings_schema
from v2a.mapper.settings import TrainConfig
from v2a.core import storage
from v2a.io import parquet
from v2a.stages.train import train_stage

OPTIONS = {"epochs": 2, "batch_size": 4, "val_sampling_steps": 2, "num_timesteps": 10, "sampling_steps": 2}


@pytest.fixture
def embeddings(tmp_path):
    rng = np.random.default_rng(0)
    rows = [{"clip_id": f"c{i:02d}", "split": "train" if i < 12 else "val", "label": f"l{i % 3}", "kind": "video",
             "image_frames": rng.normal(size=(2, 8)).astype(np.float32).tolist(), "frame_times": [0.5, 1.5],
             "audio_emb": rng.normal(size=8).astype(np.float32).tolist(), "clip_model_id": "clip-test",
             "clap_model_id": "clap-test"} for i in range(15)]
    uri = str(tmp_path / "embeddings" / "shard-00000.parquet")
    parquet.write_table(rows, uri, embeddings_schema.LEGACY_SCHEMA, "embeddings")
    return str(tmp_path / "embeddings")


def test_a_mapper_trains_into_a_remote_folder_and_loads_back_from_it(embeddings):
    from v2a.mapper.checkpoint import load_mapper

    out_dir = "memory://v2a-train-test/mappers/diff-mlp"
    metrics = train_stage(embeddings, out_dir, TrainConfig(mapper="diff-mlp", **OPTIONS), progress=False)
    assert metrics["out_dir"] == out_dir
    for name in ("config.json", "model.safetensors", "history.json"):
        assert storage.exists(storage.join(out_dir, name)), name
    assert storage.list_files(storage.join(out_dir, "checkpoints"), "state.json")
    mapper = load_mapper(out_dir)
    assert mapper.map(np.ones((1, 8), np.float32), samples=2, steps=2).shape == (1, 2, 8)


def test_a_remote_run_resumes_from_the_epoch_checkpoints_it_uploaded(embeddings):
    out_dir = "memory://v2a-train-test/mappers/resume"
    train_stage(embeddings, out_dir, TrainConfig(mapper="diff-mlp", **OPTIONS), progress=False)
    more = train_stage(embeddings, out_dir, TrainConfig(mapper="diff-mlp", **{**OPTIONS, "epochs": 3}), progress=False)
    assert more["resumed_from_epoch"] == 2 and more["epochs_completed"] == 3
    kept = storage.list_files(storage.join(out_dir, "checkpoints"), "state.json")
    assert len(kept) == 1 and "epoch_0003" in kept[0]  # the pruned epoch is gone remotely too


def test_checkpoints_of_another_configuration_stop_a_run_unless_a_restart_is_asked_for(embeddings, tmp_path):
    out_dir = str(tmp_path / "mapper")
    train_stage(embeddings, out_dir, TrainConfig(mapper="diff-mlp", **OPTIONS), progress=False)
    changed = {**OPTIONS, "lr": 3e-4}
    with pytest.raises(ValueError, match="cannot resume"):
        train_stage(embeddings, out_dir, TrainConfig(mapper="diff-mlp", **changed), progress=False)
    metrics = train_stage(embeddings, out_dir, TrainConfig(mapper="diff-mlp", **changed), progress=False,
                          restart_incompatible=True)
    assert metrics["resumed_from_epoch"] is None and metrics["epochs_completed"] == 2
