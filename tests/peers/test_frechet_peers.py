"""Our Fréchet distance against pytorch-fid's and frechet-audio-distance's formulas, same statistics."""

import numpy as np
import pytest

from tests.peers.loaders import load_submodule
from v2a.metrics.frechet import frechet_distance, frechet_distance_from_stats, gaussian_stats


def _features(n, dim, seed, shift=0.0):
    rng = np.random.default_rng(seed)
    mix = rng.standard_normal((dim, dim)) / np.sqrt(dim)
    return rng.standard_normal((n, dim)) @ mix + shift


@pytest.fixture(scope="module")
def stats():
    a, b = _features(400, 32, 0), _features(300, 32, 1, shift=0.3)
    return gaussian_stats(a), gaussian_stats(b), (a, b)


def test_fd_equals_pytorch_fid(stats):
    fid = pytest.importorskip("pytorch_fid.fid_score")
    (mu1, s1), (mu2, s2), _ = stats
    expected = fid.calculate_frechet_distance(mu1, s1, mu2, s2)
    assert frechet_distance_from_stats(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-8)


def test_fad_equals_frechet_audio_distance_including_its_statistics(stats):
    from v2a.models.clap import _hub_forced_offline

    with _hub_forced_offline():  # it imports laion_clap, which reaches for the hub at import time
        fad = load_submodule("frechet_audio_distance", "fad", "frechet-audio-distance")
    peer = fad.FrechetAudioDistance.__new__(fad.FrechetAudioDistance)  # the formulas need no model
    _, _, (a, b) = stats
    (mu1, s1), (mu2, s2) = peer.calculate_embd_statistics(list(a)), peer.calculate_embd_statistics(list(b))
    np.testing.assert_allclose(gaussian_stats(a)[1], s1, rtol=1e-10, atol=1e-12)
    expected = peer.calculate_frechet_distance(mu1, s1, mu2, s2)
    assert frechet_distance(a, b) == pytest.approx(expected, rel=1e-8)
