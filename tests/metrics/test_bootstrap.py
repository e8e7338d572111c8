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


# --- paired set statistics (`v2a compare` on Fréchet distances and Inception Scores) -------------------------------

def _set_runs(rng, clips: int = 30, frames: int = 2, dim: int = 6, classes: int = 9, shift: float = 0.0,
              noise: float = 0.5):
    """Two runs' rows over the same clips (`frames` rows per clip, as VGGish gives), with what the clips share."""
    clip_of_row = [f"c{i:03d}" for i in range(clips) for _ in range(frames)]
    per_clip = np.repeat(rng.normal(0.0, 2.0, (clips, dim)), frames, axis=0)
    runs = [per_clip + rng.normal(0.0, noise, per_clip.shape) + s for s in (0.0, shift)]
    per_clip = np.repeat(rng.normal(0.0, 3.0, (clips, classes)), frames, axis=0)
    logits = [per_clip + rng.normal(0.0, noise, per_clip.shape) + s * np.arange(classes) / classes
              for s in (0.0, shift)]
    return clip_of_row, runs, logits


def _materialised_frechet(x, weights, ref_mu, ref_sigma) -> float:
    mu, sigma = gaussian_stats(np.repeat(x, weights, axis=0))
    return frechet_distance_from_stats(mu, sigma, ref_mu, ref_sigma)


def test_paired_set_replicates_equal_a_loop_that_materialises_each_resample():
    rng = np.random.default_rng(11)
    clips, runs, logits = _set_runs(rng)
    ref_mu, ref_sigma = gaussian_stats(rng.normal(0.1, 2.0, (80, runs[0].shape[1])))
    resamples = 12
    fd = [bootstrap.FrechetResampler(x, ref_mu, ref_sigma) for x in runs]
    is_ = [bootstrap.InceptionResampler(z) for z in logits]
    fd_reps, fd_point, shared = bootstrap.paired_set_replicates((clips, fd[0]), (clips, fd[1]), resamples)
    is_reps, is_point, _ = bootstrap.paired_set_replicates((clips, is_[0]), (clips, is_[1]), resamples)
    at = {c: i for i, c in enumerate(shared)}
    row_clip = np.array([at[c] for c in clips])
    by_hand_fd, by_hand_is = [], []
    for counts in np.concatenate(list(bootstrap.clip_counts(len(shared), resamples))):
        w = counts[row_clip]  # every row of a drawn clip, in both runs, as often as the clip was drawn
        by_hand_fd.append(_materialised_frechet(runs[1], w, ref_mu, ref_sigma)
                          - _materialised_frechet(runs[0], w, ref_mu, ref_sigma))
        by_hand_is.append(inception_score(np.repeat(logits[1], w, axis=0))[0]
                          - inception_score(np.repeat(logits[0], w, axis=0))[0])
    np.testing.assert_allclose(fd_reps, by_hand_fd, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(is_reps, by_hand_is, rtol=1e-10, atol=1e-12)
    # Unit weights give each run's own value.
    assert fd_point == pytest.approx(_materialised_frechet(runs[1], 1, ref_mu, ref_sigma)
                                     - _materialised_frechet(runs[0], 1, ref_mu, ref_sigma), rel=1e-9)
    assert is_point == pytest.approx(inception_score(logits[1])[0] - inception_score(logits[0])[0], rel=1e-10)
    assert np.ptp(fd_reps) > 0 and np.ptp(is_reps) > 0


def test_paired_set_replicates_leave_out_the_rows_of_clips_the_other_run_lacks():
    rng = np.random.default_rng(12)
    clips, runs, logits = _set_runs(rng, clips=20, frames=1)
    ref_mu, ref_sigma = gaussian_stats(rng.normal(0.0, 2.0, (60, runs[0].shape[1])))
    extra = rng.normal(5.0, 1.0, (3, runs[0].shape[1]))  # 3 clips only run B has
    b_rows, b_clips = np.concatenate([runs[1], extra]), clips + ["x1", "x2", "x3"]
    stat_a = bootstrap.FrechetResampler(runs[0], ref_mu, ref_sigma)
    stat_b = bootstrap.FrechetResampler(b_rows, ref_mu, ref_sigma)
    reps, point, shared = bootstrap.paired_set_replicates((clips, stat_a), (b_clips, stat_b), 5)
    alone = bootstrap.paired_set_replicates((clips, stat_a),
                                            (clips, bootstrap.FrechetResampler(runs[1], ref_mu, ref_sigma)), 5)
    assert shared == sorted(clips)
    np.testing.assert_allclose(reps, alone[0], rtol=1e-9)
    assert point == pytest.approx(alone[1], rel=1e-9)


def test_pairing_narrows_a_set_statistics_interval_where_the_clips_share_an_effect():
    # Both runs carry each clip's strong effect; B adds a small shift. Drawn once for both runs, a clip moves both
    # statistics together; drawn independently (an unpaired interval), its effect stays in the difference.
    rng = np.random.default_rng(13)
    clips, runs, logits = _set_runs(rng, clips=60, frames=1, dim=4, shift=0.3, noise=0.1)
    ref_mu, ref_sigma = gaussian_stats(rng.normal(0.0, 2.0, (200, 4)))
    for stats in ([bootstrap.FrechetResampler(x, ref_mu, ref_sigma) for x in runs],
                  [bootstrap.InceptionResampler(z) for z in logits]):
        paired, _, _ = bootstrap.paired_set_replicates((clips, stats[0]), (clips, stats[1]), 300)
        unpaired = (bootstrap.replicates(clips, stats[1], 300, seed=1)
                    - bootstrap.replicates(clips, stats[0], 300, seed=2))
        width = [np.subtract(*bootstrap.percentile_interval(r)[::-1]) for r in (paired, unpaired)]
        assert width[0] < 0.5 * width[1]
