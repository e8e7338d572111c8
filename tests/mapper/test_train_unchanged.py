"""The trainer's outputs are what they were before `train_mapper` was split into steps (issue 18): the same
weights, checkpoints, curves and records, bit for bit, for the same seed and data.

The digests were recorded with the single-function trainer of commit fa4c84a (torch 2.9.1, AVX2 kernels,
one thread). Float results depend on the kernels, so on another torch build or CPU capability this
comparison cannot hold and is skipped; determinism itself is covered by test_train.py on every machine.
"""

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from v2a.mapper.trainer import TrainConfig, train_mapper

RECORDED_ON = ("2.9.1", "AVX2")
CONFIGS = {
    # EMA, best-epoch selection and a checkpoint every 2 epochs: the diffusion path with every bookkeeping branch.
    "diff-mlp-ema-best": (
        dict(mapper="diff-mlp", depth=1, expansion=1, epochs=4, batch_size=32, lr=1e-3, num_timesteps=50,
             sampling_steps=5, val_sampling_steps=5, ema=True, ema_decay=0.9, select="best", checkpoint_every=2),
        {"checkpoints/best/model.safetensors": "630a92e45d2f4e43",
         "checkpoints/epoch_0004/ema.safetensors": "630a92e45d2f4e43",
         "checkpoints/epoch_0004/model.safetensors": "d14089f5213fcfe4",
         "checkpoints/epoch_0004/optimizer.safetensors": "942074a1fdd55de6",
         "checkpoints/epoch_0004/state.json": "17dffd5b1360f5d5",
         "config.json": "06025809a4236d94",
         "history.json": "e82528991fc613f9",
         "model.safetensors": "630a92e45d2f4e43"}),
    # Early stopping on val_cosine with a checkpoint every epoch: the regression path.
    "reg-mlp-early": (
        dict(mapper="reg-mlp", epochs=6, batch_size=40, early_stopping_patience=1, monitor="val_cosine",
             checkpoint_every=1),
        {"checkpoints/best/model.safetensors": "876cba37d6104d49",
         "checkpoints/epoch_0002/model.safetensors": "a3714906c6473acc",
         "checkpoints/epoch_0002/optimizer.safetensors": "43226fc0361e182d",
         "checkpoints/epoch_0002/state.json": "df038f40c27ff5fd",
         "config.json": "71e9ae33aaa4fed3",
         "history.json": "f89ff804c4c717ac",
         "model.safetensors": "a3714906c6473acc"}),
}


def _without_timings(value):
    if isinstance(value, dict):
        # Timings, and the thread count training ran on (recorded since): facts of the machine, not of the result.
        return {k: _without_timings(v) for k, v in value.items() if not k.endswith("seconds") and k != "cpu_threads"}
    if isinstance(value, list):
        return [_without_timings(v) for v in value]
    return value


def _digests(folder: Path) -> dict[str, str]:
    out = {}
    for path in sorted(folder.rglob("*")):
        if not path.is_file() or path.suffix == ".png":
            continue
        data = path.read_bytes()
        if path.suffix == ".json":
            data = json.dumps(_without_timings(json.loads(data)), sort_keys=True).encode()
        out[str(path.relative_to(folder))] = hashlib.sha256(data).hexdigest()[:16]
    return out


@pytest.fixture
def one_thread(monkeypatch):
    # The trainer pins its thread count to the machine's (v2a.core.threads): V2A_CPU_THREADS sets it (the
    # OMP_NUM_THREADS it reads is the one the process started with).
    from v2a.core.threads import WORKER_THREADS_ENV

    monkeypatch.setenv(WORKER_THREADS_ENV, "1")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_the_split_trainer_writes_the_same_bytes_as_before(name, tmp_path, one_thread):
    here = (torch.__version__.split("+")[0], torch.backends.cpu.get_cpu_capability())
    if here != RECORDED_ON:
        pytest.skip(f"digests were recorded on torch {RECORDED_ON[0]} / {RECORDED_ON[1]}, this is {here}")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((96, 16)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    y = rng.standard_normal((96, 16)).astype(np.float32)
    y /= np.linalg.norm(y, axis=1, keepdims=True)
    settings, expected = CONFIGS[name]
    train_mapper(x[:80], y[:80], x[80:], y[80:], TrainConfig(**settings), tmp_path, progress=False)
    assert _digests(tmp_path) == expected
