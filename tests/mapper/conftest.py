"""Synthetic embedding pairs for the mapper tests (no models, no downloads)."""

import numpy as np
import pytest
import torch


@pytest.fixture(autouse=True)
def one_cpu_thread():
    # Tiny networks on a shared 2-core box: a second OpenMP thread mostly waits for the first
    # (measured ~30x slower per step), so run the mapper tests single-threaded.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def l2(x):
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


class ClassPairs:
    """K classes: a visual centroid and audio centroid(s) per class; pairs are noisy copies.

    modes=2 gives every visual class two distinct audio modes (the one-to-many case).
    """

    def __init__(self, classes=8, dim=32, modes=1, visual_noise=0.6, audio_noise=0.2, seed=0):
        self.rng = np.random.default_rng(seed)
        self.dim, self.visual_noise, self.audio_noise = dim, visual_noise, audio_noise
        self.visual_centroids = l2(self.rng.standard_normal((classes, dim)))
        self.audio_modes = l2(self.rng.standard_normal((classes, modes, dim)))

    def draw(self, n):
        k_classes, k_modes = self.audio_modes.shape[:2]
        cls = self.rng.integers(k_classes, size=n)
        mode = self.rng.integers(k_modes, size=n)
        noise = lambda: self.rng.standard_normal((n, self.dim)) / np.sqrt(self.dim)
        visual = l2(self.visual_centroids[cls] + self.visual_noise * noise())
        audio = l2(self.audio_modes[cls, mode] + self.audio_noise * noise())
        return visual, audio, cls, mode


@pytest.fixture(scope="session")
def class_pairs():
    data = ClassPairs(classes=8, dim=32, modes=1, visual_noise=1.5, seed=0)
    train = data.draw(1024)
    held_out = data.draw(128)
    return train, held_out


@pytest.fixture(scope="session")
def two_mode_pairs():
    data = ClassPairs(classes=4, dim=32, modes=2, visual_noise=0.5, audio_noise=0.2, seed=1)
    return data, data.draw(2048), data.draw(64)


# Small versions of the four mappers, fast enough to train on one CPU thread in seconds.
SMALL = {
    "reg-mlp": dict(depth=1, expansion=2),
    "reg-transformer": dict(depth=2, heads=4, head_dim=16, prior_text_len=2),
    "diff-mlp": dict(depth=2, expansion=4),
    "diff-transformer": dict(depth=2, heads=4, head_dim=16, prior_text_len=2),
}
