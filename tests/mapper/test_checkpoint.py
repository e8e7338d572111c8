"""Final checkpoints: config.json + model.safetensors, loaded back to a mapper that maps."""

import json

import numpy as np
import pytest
import torch

import v2a
from v2a.mapper import build_mapper, load_mapper, save_mapper
from v2a.mapper.factory import build_objective

from .conftest import l2

DIFF_SETTINGS = {"num_timesteps": 100, "sampling_steps": 20, "guidance_scale": 0.9}


def _save(tmp_path, kind, arch="mlp", **kw):
    torch.manual_seed(0)
    net = build_mapper(kind, arch, dim=16, depth=1, expansion=2, heads=2, head_dim=8,
                       **({"num_timesteps": 100} if kind == "diffusion" else {}))
    objective = build_objective(kind, 16, DIFF_SETTINGS if kind == "diffusion" else {})
    out = save_mapper(tmp_path / kind, net, objective, metadata={"aggregator": "mean", "data_fingerprint": "abc"}, **kw)
    return out, net, objective


@pytest.fixture
def clip16():
    return l2(np.random.default_rng(0).standard_normal((10, 16)))


def test_config_records_what_rebuilds_and_identifies_the_mapper(tmp_path):
    out, net, _ = _save(tmp_path, "diffusion", "transformer")
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "model.safetensors"]
    config = json.loads((out / "config.json").read_text())
    assert config["name"] == "diff-transformer"
    assert (config["kind"], config["arch"], config["depth"], config["expansion"]) == ("diffusion", "transformer", 1, 2)
    assert config["input_dim"] == config["output_dim"] == 16
    assert config["objective"]["schedule"] == "cosine" and config["objective"]["num_timesteps"] == 100
    assert config["aggregator"] == "mean" and config["data_fingerprint"] == "abc"
    assert config["trainable_params"] == sum(p.numel() for p in net.parameters())
    assert config["v2a_version"] == v2a.__version__


@pytest.mark.parametrize("kind", ["regression", "diffusion"])
def test_round_trip_maps_like_the_saved_network(tmp_path, kind, clip16):
    out, net, objective = _save(tmp_path, kind)
    loaded = load_mapper(out)
    got = loaded.map(clip16, samples=1, seed=3)
    assert got.shape == (10, 1, 16) and got.dtype == np.float32
    assert np.allclose(np.linalg.norm(got, axis=-1), 1.0, atol=1e-5)
    expected = objective.generate(net.eval(), torch.from_numpy(clip16), torch.arange(10),
                                  torch.zeros(10, dtype=torch.long), seed=3)
    assert np.allclose(got[:, 0], expected.numpy(), atol=1e-6)


def test_checkpoint_id_is_a_short_hash_of_the_weights(tmp_path):
    out, _, _ = _save(tmp_path, "regression")
    first = load_mapper(out).checkpoint_id
    assert len(first) == 12 and first == load_mapper(out).checkpoint_id
    other, _, _ = _save(tmp_path / "other", "diffusion")
    assert load_mapper(other).checkpoint_id != first


def test_diffusion_samples_do_not_depend_on_batch_size(tmp_path, clip16):
    out, _, _ = _save(tmp_path, "diffusion")
    loaded = load_mapper(out)
    whole = loaded.map(clip16, samples=3, seed=5, batch_size=1024)
    pieces = loaded.map(clip16, samples=3, seed=5, batch_size=4)
    assert np.allclose(whole, pieces, atol=1e-6)
    assert not np.allclose(whole[:, 0], whole[:, 1])  # samples of one row differ


def test_diffusion_rows_are_keyed_by_index_not_content(tmp_path, clip16):
    out, _, _ = _save(tmp_path, "diffusion")
    loaded = load_mapper(out)
    same_input = np.repeat(clip16[:1], 4, axis=0)
    got = loaded.map(same_input, samples=1, seed=0)
    assert not np.allclose(got[0], got[1])


def test_regression_repeats_its_single_prediction_for_more_samples(tmp_path, clip16):
    out, _, _ = _save(tmp_path, "regression")
    got = load_mapper(out).map(clip16, samples=4)
    assert got.shape == (10, 4, 16)
    assert np.array_equal(got[:, 0], got[:, 3])


def test_map_rejects_wrong_width(tmp_path):
    out, _, _ = _save(tmp_path, "regression")
    with pytest.raises(ValueError, match=r"shape \(N, 16\)"):
        load_mapper(out).map(np.zeros((3, 15), np.float32))


def test_pickled_weights_are_refused(tmp_path):
    out, net, _ = _save(tmp_path, "regression")
    torch.save(net.state_dict(), out / "model.safetensors")
    with pytest.raises(ValueError, match="pickle"):
        load_mapper(out)


def test_junk_weights_are_refused(tmp_path):
    out, _, _ = _save(tmp_path, "regression")
    (out / "model.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all")
    with pytest.raises(ValueError, match="not a valid safetensors"):
        load_mapper(out)


def test_weights_that_do_not_fit_the_config_are_refused(tmp_path):
    out, _, _ = _save(tmp_path, "regression")
    config = json.loads((out / "config.json").read_text())
    config["expansion"] = 4
    (out / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="does not match the architecture"):
        load_mapper(out)
