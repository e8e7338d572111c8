"""train_mapper and load_mapper on a GPU (skipped where there is none)."""

import json

import numpy as np
import pytest
import torch

from v2a.mapper import TrainConfig, load_mapper, train_mapper

from .conftest import ClassPairs

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


@pytest.mark.parametrize("name", ["diff-mlp", "diff-transformer", "reg-transformer"])
def test_bf16_training_on_cuda_learns_and_resumes(name, tmp_path):
    data = ClassPairs(classes=8, dim=32, seed=3)
    (tc, ta, _, _), (vc, va, vk, _) = data.draw(1024), data.draw(128)
    small = dict(depth=2, heads=4, head_dim=16) if name.endswith("transformer") else dict(depth=2, expansion=4)
    config = TrainConfig(mapper=name, epochs=15, batch_size=128, lr=1e-3, weight_decay=0.0, device="cuda",
                         sampling_steps=50, val_sampling_steps=25, ema=True, ema_decay=0.9, **small)
    short = TrainConfig(**{**config.to_dict(), "epochs": 5})
    train_mapper(tc, ta, vc, va, short, tmp_path, progress=False)
    result = train_mapper(tc, ta, vc, va, config, tmp_path, progress=False)
    assert result["resumed_from_epoch"] == 5 and result["epochs_completed"] == 15
    history = json.loads((tmp_path / "history.json").read_text())
    assert all(np.isfinite(h["train_loss"]) for h in history)
    assert history[-1]["train_loss"] < history[0]["train_loss"]

    on_gpu = load_mapper(tmp_path, device="cuda").map(vc, samples=2, seed=1)
    on_cpu = load_mapper(tmp_path, device="cpu").map(vc, samples=2, seed=1)
    assert on_gpu.shape == (128, 2, 32)
    # Same keyed noise on both devices: only float rounding separates the results.
    assert np.mean(np.sum(on_gpu * on_cpu, -1)) > 0.99
    nearest = np.argmax(on_gpu[:, 0] @ va.T, axis=1)
    assert np.mean(vk[nearest] == vk) >= 3 / 8


def test_cuda_graph_steps_compute_what_eager_steps_compute(tmp_path):
    data = ClassPairs(classes=8, dim=32, seed=4)
    (tc, ta, _, _), (vc, va, _, _) = data.draw(1000), data.draw(64)  # 1000 = 9 x 100 + a short batch
    runs = {}
    for graphs in (True, False):
        config = TrainConfig(mapper="diff-transformer", depth=2, heads=4, head_dim=16, epochs=3, batch_size=100,
                             lr=1e-3, device="cuda", cuda_graphs=graphs, sampling_steps=20, val_sampling_steps=10)
        out = tmp_path / str(graphs)
        train_mapper(tc, ta, vc, va, config, out, progress=False)
        runs[graphs] = (json.loads((out / "history.json").read_text()), load_mapper(out).net.state_dict())
    (hist_g, w_g), (hist_e, w_e) = runs[True], runs[False]
    for a, b in zip(hist_g, hist_e):
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=2e-2)
    flat_g = torch.cat([v.flatten().float() for v in w_g.values()])
    flat_e = torch.cat([v.flatten().float() for v in w_e.values()])
    assert torch.nn.functional.cosine_similarity(flat_g, flat_e, dim=0) > 0.999
