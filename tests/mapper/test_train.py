"""train_mapper: configuration, outputs on disk, determinism, resuming."""

import json

import numpy as np
import pytest

from v2a.mapper import TrainConfig, load_mapper, train_mapper

from .conftest import ClassPairs


@pytest.fixture(scope="module")
def tiny_pairs():
    data = ClassPairs(classes=4, dim=16, seed=2)
    (tc, ta, _, _), (vc, va, _, _) = data.draw(256), data.draw(32)
    return tc, ta, vc, va


def _config(**kw):
    base = dict(mapper="diff-mlp", depth=1, expansion=1, epochs=4, batch_size=64, lr=1e-3, num_timesteps=100,
                sampling_steps=10, val_sampling_steps=5, checkpoint_every=1)
    base.update(kw)
    return TrainConfig(**base)


class _Killed(RuntimeError):
    pass


def _weights(out_dir):
    return (out_dir / "model.safetensors").read_bytes()


@pytest.mark.parametrize("field,value,accepted", [
    ("mapper", "gan-mlp", "reg-mlp"), ("batch_size", 0, "integer >= 1"), ("lr", -1.0, "> 0"),
    ("device", "tpu", "'cpu'"), ("cond_drop_prob", 1.0, r"\[0, 1\)"), ("val_sampling_steps", 2000, "<= num_timesteps"),
    ("ema_decay", 1.0, r"\(0, 1\)"),
])
def test_config_errors_name_the_field_and_accepted_values(field, value, accepted):
    with pytest.raises(ValueError, match=rf"{field}=.*accepted: .*{accepted}"):
        TrainConfig(**{field: value})


def test_config_defaults_are_the_papers():
    c = TrainConfig()
    assert (c.mapper, c.depth, c.epochs, c.batch_size, c.lr) == ("diff-transformer", 12, 100, 448, 1.1e-4)
    assert (c.num_timesteps, c.cond_drop_prob, c.sampling_steps, c.guidance_scale) == (1000, 0.1, 200, 0.9)
    assert TrainConfig(mapper="reg-transformer").depth == 8
    assert (TrainConfig(mapper="reg-mlp").depth, TrainConfig(mapper="reg-mlp").expansion) == (1, 4)


def test_writes_checkpoint_history_curve_and_no_pickle(tmp_path, tiny_pairs):
    result = train_mapper(*tiny_pairs, _config(keep_checkpoints=2), tmp_path, metadata={"aggregator": "mean"},
                          progress=False)
    history = json.loads((tmp_path / "history.json").read_text())
    assert [h["epoch"] for h in history] == [1, 2, 3, 4]
    for key in ("train_loss", "val_loss", "val_mse", "val_cosine", "val_r1", "val_r10"):
        assert all(np.isfinite(h[key]) for h in history), key
    assert (tmp_path / "training_curve.png").read_bytes()[:4] == b"\x89PNG"
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["best", "epoch_0003", "epoch_0004"]
    suffixes = {p.suffix for p in tmp_path.rglob("*") if p.is_file()}
    assert suffixes <= {".json", ".safetensors", ".png"}
    assert result["trainable_params"] > 0 and result["epochs_completed"] == 4
    assert result["checkpoint_id"] == load_mapper(tmp_path).checkpoint_id
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["aggregator"] == "mean" and config["training"]["epochs_completed"] == 4


def test_same_seed_gives_identical_weights_on_cpu(tmp_path, tiny_pairs):
    train_mapper(*tiny_pairs, _config(epochs=2), tmp_path / "a", progress=False)
    train_mapper(*tiny_pairs, _config(epochs=2), tmp_path / "b", progress=False)
    train_mapper(*tiny_pairs, _config(epochs=2, seed=1), tmp_path / "c", progress=False)
    assert _weights(tmp_path / "a") == _weights(tmp_path / "b")
    assert _weights(tmp_path / "a") != _weights(tmp_path / "c")


def test_killed_run_resumes_from_last_epoch_and_matches_uninterrupted(tmp_path, tiny_pairs):
    config = _config(ema=True, ema_decay=0.9)
    train_mapper(*tiny_pairs, config, tmp_path / "straight", progress=False)

    def kill_after_second_epoch(record):
        if record["epoch"] == 2:
            raise _Killed

    with pytest.raises(_Killed):
        train_mapper(*tiny_pairs, config, tmp_path / "killed", progress=False, on_epoch_end=kill_after_second_epoch)
    assert not (tmp_path / "killed" / "model.safetensors").exists()
    result = train_mapper(*tiny_pairs, config, tmp_path / "killed", progress=False)
    assert result["resumed_from_epoch"] == 2
    assert _weights(tmp_path / "killed") == _weights(tmp_path / "straight")
    straight = json.loads((tmp_path / "straight" / "history.json").read_text())
    resumed = json.loads((tmp_path / "killed" / "history.json").read_text())
    assert [h["train_loss"] for h in resumed] == [h["train_loss"] for h in straight]


def test_more_epochs_continue_a_finished_run(tmp_path, tiny_pairs):
    train_mapper(*tiny_pairs, _config(mapper="reg-mlp", epochs=4), tmp_path / "straight", progress=False)
    train_mapper(*tiny_pairs, _config(mapper="reg-mlp", epochs=2), tmp_path / "extended", progress=False)
    result = train_mapper(*tiny_pairs, _config(mapper="reg-mlp", epochs=4), tmp_path / "extended", progress=False)
    assert result["resumed_from_epoch"] == 2 and result["epochs_completed"] == 4
    assert _weights(tmp_path / "extended") == _weights(tmp_path / "straight")


def test_resuming_with_a_different_trajectory_is_refused(tmp_path, tiny_pairs):
    train_mapper(*tiny_pairs, _config(epochs=1), tmp_path, progress=False)
    with pytest.raises(ValueError, match=r"lr: checkpoint 0.001 vs now 0.002"):
        train_mapper(*tiny_pairs, _config(epochs=2, lr=2e-3), tmp_path, progress=False)
    tc, ta, vc, va = tiny_pairs
    with pytest.raises(ValueError, match="training arrays differ"):
        train_mapper(tc[::-1], ta[::-1], vc, va, _config(epochs=2), tmp_path, progress=False)


def test_max_steps_stops_early(tmp_path, tiny_pairs):
    result = train_mapper(*tiny_pairs, _config(max_steps=6), tmp_path, progress=False)
    assert result["global_step"] == 6 and result["epochs_completed"] == 2
    assert load_mapper(tmp_path).map(tiny_pairs[2][:3]).shape == (3, 1, 16)


def test_mismatched_arrays_are_refused(tmp_path, tiny_pairs):
    tc, ta, vc, va = tiny_pairs
    with pytest.raises(ValueError, match="256 CLIP rows but 255 CLAP rows"):
        train_mapper(tc, ta[:-1], vc, va, _config(), tmp_path, progress=False)


def test_select_best_saves_the_weights_of_the_best_validation_epoch(tiny_pairs, tmp_path):
    from v2a.mapper.checkpoint import read_safetensors

    result = train_mapper(*tiny_pairs, _config(mapper="reg-mlp", epochs=6, lr=3e-2, select="best"), tmp_path,
                          progress=False)
    history = json.loads((tmp_path / "history.json").read_text())
    best_epoch = min(history, key=lambda h: h["val_loss"])["epoch"]
    assert result["best_epoch"] == best_epoch and result["selected"].startswith(f"best (epoch {best_epoch}")
    best = read_safetensors(tmp_path / "checkpoints" / "best" / "model.safetensors")
    final = read_safetensors(tmp_path / "model.safetensors")
    assert all(np.array_equal(best[k].numpy(), final[k].numpy()) for k in best)


def test_early_stopping_ends_training_after_the_patience_runs_out(tiny_pairs, tmp_path):
    # A learning rate this large makes validation worse after the first epochs.
    result = train_mapper(*tiny_pairs, _config(mapper="reg-mlp", epochs=50, lr=5.0, early_stopping_patience=2),
                          tmp_path, progress=False)
    history = json.loads((tmp_path / "history.json").read_text())
    assert result["epochs_completed"] < 50 and history[-1].get("early_stop") is True
    losses = [h["val_loss"] for h in history]
    assert min(losses[-2:]) >= min(losses[:-2])


def test_resumable_checkpoints_are_written_every_n_epochs_and_at_the_end(tiny_pairs, tmp_path, monkeypatch):
    import v2a.mapper.trainer as train_module

    saved = []
    real = train_module._save_epoch_checkpoint
    monkeypatch.setattr(train_module, "_save_epoch_checkpoint",
                        lambda out_dir, epoch, *a, **k: (saved.append(epoch), real(out_dir, epoch, *a, **k)))
    train_mapper(*tiny_pairs, _config(mapper="reg-mlp", epochs=7, checkpoint_every=3), tmp_path, progress=False)
    assert saved == [3, 6, 7]


def test_a_transformer_with_dropout_trains_to_the_same_bytes_twice_and_when_resumed(tmp_path, tiny_pairs):
    # The paper's dalle2-prior block has dropout 0.05: its draws must come from the run's seed too.
    cfg = dict(mapper="diff-transformer", depth=1, heads=2, head_dim=8, epochs=3, batch_size=64, lr=1e-3,
               num_timesteps=50, sampling_steps=5, val_sampling_steps=5, checkpoint_every=1)
    train_mapper(*tiny_pairs, _config(**cfg), tmp_path / "a", progress=False)
    train_mapper(*tiny_pairs, _config(**cfg), tmp_path / "b", progress=False)
    train_mapper(*tiny_pairs, _config(**{**cfg, "epochs": 2}), tmp_path / "c", progress=False)
    train_mapper(*tiny_pairs, _config(**cfg), tmp_path / "c", progress=False)  # resumes at epoch 2
    assert _weights(tmp_path / "a") == _weights(tmp_path / "b") == _weights(tmp_path / "c")
