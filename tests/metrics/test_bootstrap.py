"""The bootstrap behind every results row's interval and `v2a compare` (v2a/metrics/bootstrap.py).

Each test checks a property a wrong bootstrap breaks: the draws are with replacement and seeded, whole clips are
resampled, the interval is the central 95 %, a paired difference shares its draws, and a resampled statistic
with every weight 1 is the statistic itself.
"""

from __future__ import annotations

import numpy as np
import pytest

from v2a.metrics import bootstrap
from v2a.metrics.classification import inception_score
from v2a.metrics.frechet import frechet_distance_from_stats, gaussian_stats, singular_offset


def _one_sample_per_clip(n: int, seed: int = 0):
    values = np.random.default_rng(seed).normal(3.0, 2.0, n)
    return [f"c{i:04d}" for i in range(n)], values


def test_draws_are_with_replacement_one_per_clip_each():
    counts = np.concatenate(list(bootstrap.clip_counts(50, 250)))
    assert counts.shape == (250, 50) and (counts.sum(axis=1) == 50).all()
    # With replacement, nearly every resample draws some clip twice or more and leaves others out
    # (without replacement every count would be 1).
    assert (counts.max(axis=1) >= 2).mean() > 0.99 and (counts == 0).mean() == pytest.approx(np.exp(-1), abs=0.02)


def test_the_interval_is_seeded_the_same_each_time_and_moves_with_the_seed():
    clips, values = _one_sample_per_clip(300)
    first = bootstrap.mean_interval(clips, values)
    assert bootstrap.mean_interval(clips, values) == first  # same seed, same draws, the same numbers exactly
    assert bootstrap.mean_interval(clips, values, seed=bootstrap.SEED + 1) != first
    # Draws follow the clips in sorted id order: listing the samples in another order changes nothing.
    order = np.random.default_rng(1).permutation(len(clips))
    assert bootstrap.mean_interval([clips[i] for i in order], values[order]) == pytest.approx(first, abs=1e-12)


def test_a_mean_gets_the_central_95_percent_of_its_sampling_spread():
    # The bootstrap distribution of a mean of n values is close to Normal(mean, s / sqrt(n)): the central 95 %
    # is +-1.96 s / sqrt(n) (a 90 % interval would be 16 % narrower; 1000 resamples land within about 3 %).
    clips, values = _one_sample_per_clip(2000)
    low, high = bootstrap.mean_interval(clips, values)
    se = values.std() / np.sqrt(len(values))
    assert high - low == pytest.approx(2 * 1.96 * se, rel=0.07)
    assert low < values.mean() < high
    assert (low + high) / 2 == pytest.approx(values.mean(), abs=0.2 * se)


def test_percentile_interval_cuts_2_5_percent_off_each_tail():
    assert bootstrap.percentile_interval(np.arange(1001.0)) == pytest.approx((25.0, 975.0), abs=1e-9)


def test_a_clip_is_resampled_with_all_its_samples():
    # 200 clips x 5 samples that share their clip's level: the spread of the mean comes from the 200 clip levels,
    # sqrt(5) wider than if the 1000 samples were resampled one by one.
    rng = np.random.default_rng(2)
    level = rng.normal(0.0, 1.0, 200)
    clips = [f"c{i:03d}" for i in range(200) for _ in range(5)]
    values = np.repeat(level, 5) + rng.normal(0.0, 0.01, 1000)
    low, high = bootstrap.mean_interval(clips, values)
    assert high - low == pytest.approx(2 * 1.96 * level.std() / np.sqrt(200), rel=0.1)


def test_a_paired_difference_cancels_what_the_clips_share():
    # Both runs follow each clip's level (spread 1); B is A + 0.05 with a small spread of its own. Paired, the
    # difference is resolved; the two means resampled independently would not resolve it (their spread is 20x).
    rng = np.random.default_rng(3)
    level = rng.normal(0.0, 1.0, 400)
    clips = [f"c{i:03d}" for i in range(400)]
    a = level + rng.normal(0.0, 0.05, 400)
    b = level + 0.05 + rng.normal(0.0, 0.05, 400)
    reps, shared = bootstrap.paired_difference_replicates((clips, a), (clips, b))
    low, high = bootstrap.percentile_interval(reps)
    assert len(shared) == 400 and 0 < low < 0.05 < high
    assert high - low == pytest.approx(2 * 1.96 * np.std(b - a) / np.sqrt(400), rel=0.1)
    assert bootstrap.per_clip_mean_difference((clips, a), (clips, b)) == pytest.approx(np.mean(b - a))


def test_a_paired_difference_uses_only_the_shared_clips():
    a = (["x", "y", "z"], [1.0, 2.0, 3.0])
    b = (["y", "z", "w"], [5.0, 7.0, 100.0])
    reps, shared = bootstrap.paired_difference_replicates(a, b, resamples=200)
    assert shared == ["y", "z"] and reps.min() >= 3.0 and reps.max() <= 4.0  # per-clip differences 3 and 4
    assert bootstrap.per_clip_mean_difference(a, b) == pytest.approx(3.5)


@pytest.mark.parametrize("n, dim", [(300, 16), (40, 64)])  # a regular and a singular (offset) covariance
def test_a_resampled_frechet_distance_with_unit_weights_is_the_distance(n, dim):
    rng = np.random.default_rng(4)
    gen, ref = rng.normal(0.2, 1.0, (n, dim)), rng.normal(0.0, 1.1, (n + 7, dim))
    mu, sigma = gaussian_stats(gen)
    ref_mu, ref_sigma = gaussian_stats(ref)
    expected = frechet_distance_from_stats(mu, sigma, ref_mu, ref_sigma)
    eps = 1e-6 if singular_offset(sigma, ref_sigma) else 0.0
    assert (eps > 0) == (n < dim)
    resampler = bootstrap.FrechetResampler(gen, ref_mu, ref_sigma, eps=eps)
    assert resampler(np.ones((1, n)))[0] == pytest.approx(expected, rel=1e-9)
    # A weight of 2 is the row listed twice.
    w = np.ones(n)
    w[:5] = 2
    twice = np.concatenate([gen, gen[:5]])
    m2, s2 = gaussian_stats(twice)
    assert resampler.one(w) == pytest.approx(frechet_distance_from_stats(m2, s2, ref_mu, ref_sigma), rel=1e-9)


def test_a_resampled_inception_score_with_unit_weights_is_the_score():
    logits = np.random.default_rng(5).normal(0.0, 3.0, (57, 11))
    assert bootstrap.InceptionResampler(logits).one(np.ones(57)) == pytest.approx(inception_score(logits)[0],
                                                                                 rel=1e-12)
    w = np.ones(57, dtype=int)
    w[3] = 3
    w[4] = 0
    rows = np.repeat(np.arange(57), w)
    assert bootstrap.InceptionResampler(logits).one(w) == pytest.approx(inception_score(logits[rows])[0], rel=1e-12)
