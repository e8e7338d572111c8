"""Aggregators over stored per-frame embeddings (paper Table 5): mean, middle, random."""

import numpy as np
import pytest

from v2a.core.aggregate import aggregate_frames, aggregate_many


def frames(n, dim=8, seed=0):
    return np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)


def unit(v):
    return v / np.linalg.norm(v)


@pytest.mark.parametrize("n, middle", [(1, 0), (5, 2), (10, 4)])
def test_middle_picks_the_middle_frame(n, middle):
    f = frames(n)
    np.testing.assert_allclose(aggregate_frames(f, "middle"), unit(f[middle]), atol=1e-6)


def test_mean_is_the_normalised_mean_of_the_frames():
    f = frames(7)
    out = aggregate_frames(f, "mean")
    np.testing.assert_allclose(out, unit(f.mean(axis=0)), atol=1e-6)
    assert np.isclose(np.linalg.norm(out), 1.0, atol=1e-6)


def test_random_picks_one_of_the_frames_deterministically_per_clip_and_seed():
    f = frames(10)
    picked = aggregate_frames(f, "random", clip_id="clip-a", seed=3)
    assert any(np.allclose(picked, unit(row), atol=1e-6) for row in f)
    np.testing.assert_array_equal(picked, aggregate_frames(f, "random", clip_id="clip-a", seed=3))
    choices = {tuple(aggregate_frames(f, "random", clip_id=f"clip-{i}", seed=3)) for i in range(40)}
    assert len(choices) > 3  # different clips land on different frames


def test_random_does_not_depend_on_the_order_clips_are_read_in():
    ids = [f"clip-{i}" for i in range(12)]
    per_clip = [frames(10, seed=i) for i in range(12)]
    forward = aggregate_many(per_clip, "random", ids, seed=7)
    order = np.random.default_rng(0).permutation(12)
    shuffled = aggregate_many([per_clip[i] for i in order], "random", [ids[i] for i in order], seed=7)
    np.testing.assert_array_equal(shuffled, forward[order])


def test_the_seed_changes_the_random_choice():
    per_clip = [frames(10, seed=i) for i in range(12)]
    ids = [f"clip-{i}" for i in range(12)]
    assert not np.array_equal(aggregate_many(per_clip, "random", ids, seed=0),
                              aggregate_many(per_clip, "random", ids, seed=1))


def test_stored_frames_as_lists_aggregate_like_arrays():
    f = frames(4)
    np.testing.assert_allclose(aggregate_many([[list(r) for r in f]], "mean")[0], aggregate_frames(f, "mean"))


def test_an_unknown_aggregator_names_the_accepted_ones():
    with pytest.raises(ValueError, match="mean, middle, random"):
        aggregate_frames(frames(3), "max")
