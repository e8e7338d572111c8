"""95 % percentile bootstrap intervals over clips, seeded, for the results rows and for `v2a compare`.

The unit of resampling is the clip: a resample draws as many clips as the set has, with replacement, and a
drawn clip brings all of its generated samples (with several samples per clip they are not independent of
each other, so resampling them one by one would make the interval too narrow). A resample is a vector of
counts per clip; a statistic is recomputed with each clip's items weighted by its count.

Determinism: the draws come from `np.random.default_rng(SEED)` over the clips in sorted id order, so one set
of clips gets the same resamples in every run, for every metric, on every machine. The interval is the
2.5th and 97.5th percentile of the resampled statistics (numpy's linear interpolation), the percentile
interval of Efron & Tibshirani, "An Introduction to the Bootstrap" (1993), ch. 13.

Fréchet distances are refitted on each resample against the fixed reference statistics (the stored
reference keeps only its Gaussian fit), so their interval is the spread from the generated set's clips.
Each resample is kept cheap: the features are mapped once through R = S_ref^(1/2), after which
tr((S_ref S)^(1/2)) = sum sqrt(eig(R S R)) needs one weighted Gram matrix of the mapped rows and one symmetric
eigenvalue solve, no matrix square root (benchmarks/bootstrap_cost.py measures it).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import numpy as np

SEED = 27                 # fixed: the intervals of a run never change from one scoring to the next
LEVEL = 0.95
CLIP_RESAMPLES = 1000     # per-sample means and set statistics that are cheap to recompute
# `v2a compare`'s paired set statistics: a paired Fréchet resample recomputes two distances (about 16 s at 15k
# clips x 2048-d on 2 cores); 200 is the count suggested for the evaluation's own Fréchet intervals
# (benchmarks/README.md: each end of the interval within about a tenth of its half-width).
SET_RESAMPLES = 200
_CHUNK = 100              # resamples drawn (and held in memory) at a time


def clip_counts(n_clips: int, resamples: int, seed: int = SEED) -> Iterator[np.ndarray]:
    """(at most _CHUNK, n_clips) int arrays, the draws of each resample counted per clip; `resamples` rows in all."""
    if n_clips < 1:
        raise ValueError("a bootstrap needs at least one clip")
    rng = np.random.default_rng(seed)
    done = 0
    while done < resamples:
        b = min(_CHUNK, resamples - done)
        draws = rng.integers(0, n_clips, size=(b, n_clips))
        flat = (draws + n_clips * np.arange(b)[:, None]).ravel()
        yield np.bincount(flat, minlength=b * n_clips).reshape(b, n_clips)
        done += b


def percentile_interval(replicates: np.ndarray, level: float = LEVEL) -> tuple[float, float]:
    """(low, high): the percentiles of the resampled statistics that bound the central `level`."""
    reps = np.asarray(replicates, dtype=np.float64)
    reps = reps[np.isfinite(reps)]
    if reps.size == 0:
        return float("nan"), float("nan")
    tail = 100.0 * (1.0 - level) / 2.0
    low, high = np.percentile(reps, [tail, 100.0 - tail])
    return float(low), float(high)


def _clip_index(item_clips: Sequence[str]) -> tuple[list[str], np.ndarray]:
    """(sorted clip ids, each item's position in them)."""
    clips = sorted(set(item_clips))
    at = {c: i for i, c in enumerate(clips)}
    return clips, np.array([at[c] for c in item_clips], dtype=np.int64)


def replicates(item_clips: Sequence[str], statistic: Callable[[np.ndarray], np.ndarray], resamples: int,
               seed: int = SEED) -> np.ndarray:
    """The statistic over `resamples` clip resamples. `statistic` gets a (b, n_items) array of item weights (each
    item weighted by its clip's count) and returns b values."""
    _, index = _clip_index(item_clips)
    n_clips = int(index.max()) + 1 if len(index) else 0
    out = [statistic(counts[:, index]) for counts in clip_counts(n_clips, resamples, seed)]
    return np.concatenate(out) if out else np.empty(0)


def interval(item_clips: Sequence[str], statistic: Callable[[np.ndarray], np.ndarray], resamples: int,
             seed: int = SEED) -> tuple[float, float]:
    return percentile_interval(replicates(item_clips, statistic, resamples, seed))


def weighted_mean(values) -> Callable[[np.ndarray], np.ndarray]:
    """The statistic of a mean of per-item values (a clip drawn twice counts its samples twice)."""
    v = np.asarray(values, dtype=np.float64)

    def statistic(weights: np.ndarray) -> np.ndarray:
        return (weights @ v) / weights.sum(axis=1)
    return statistic


def mean_interval(item_clips: Sequence[str], values, resamples: int = CLIP_RESAMPLES,
                  seed: int = SEED) -> tuple[float, float]:
    """Interval of the mean of per-sample values, resampling clips with all their samples."""
    return interval(item_clips, weighted_mean(values), resamples, seed)


def paired_difference_replicates(a: tuple[Sequence[str], Sequence[float]], b: tuple[Sequence[str], Sequence[float]],
                                 resamples: int = CLIP_RESAMPLES, seed: int = SEED) -> tuple[np.ndarray, list[str]]:
    """(mean_b - mean_a over the same clip resamples, the shared clips): both runs' samples of a drawn clip enter
    with the clip's one count, so what the clips have in common cancels out of the difference.

    a, b: (clip id of each sample, its value). Samples of clips the other run lacks are left out."""
    shared = sorted(set(a[0]) & set(b[0]))
    if not shared:
        raise ValueError("the two runs share no scored clip")
    at = {c: i for i, c in enumerate(shared)}
    sides = []
    for clips, values in (a, b):
        keep = [i for i, c in enumerate(clips) if c in at]
        index = np.array([at[clips[i]] for i in keep], dtype=np.int64)
        v = np.asarray(values, dtype=np.float64)[keep]
        sums = np.bincount(index, weights=v, minlength=len(shared))
        sizes = np.bincount(index, minlength=len(shared)).astype(np.float64)
        sides.append((sums, sizes))
    out = []
    for counts in clip_counts(len(shared), resamples, seed):
        (sa, na), (sb, nb) = sides
        out.append(counts @ sb / (counts @ nb) - counts @ sa / (counts @ na))
    return np.concatenate(out), shared


def per_clip_mean_difference(a, b) -> float:
    """mean_b - mean_a over the samples of the shared clips (the value the paired interval is about)."""
    shared = set(a[0]) & set(b[0])
    mean = [float(np.mean([v for c, v in zip(clips, values) if c in shared])) for clips, values in (a, b)]
    return mean[1] - mean[0]


def paired_set_replicates(a: tuple[Sequence[str], Callable[[np.ndarray], np.ndarray]],
                          b: tuple[Sequence[str], Callable[[np.ndarray], np.ndarray]],
                          resamples: int, seed: int = SEED,
                          progress: Callable[[int], None] | None = None) -> tuple[np.ndarray, float, list[str]]:
    """(statistic_b - statistic_a over the same clip resamples, the same difference with unit weights, the shared
    clips) for statistics of a whole set (`FrechetResampler`, `InceptionResampler`).

    a, b: (the clip id of each row, the run's statistic of (k, rows) row weights). Each resample draws the shared
    clips once; every row of a drawn clip, in either run, is weighted by that one count, so what a clip does to
    both runs cancels out of the difference as it does for a mean (`paired_difference_replicates`). Rows of clips
    the other run lacks weigh 0. progress(k) is told of each k resamples done."""
    shared = sorted(set(a[0]) & set(b[0]))
    if not shared:
        raise ValueError("the two runs share no scored clip")
    at = {c: i for i, c in enumerate(shared)}
    # A row of an unshared clip reads the column past the last clip, which is always 0.
    index = [np.array([at.get(c, len(shared)) for c in clips], dtype=np.int64) for clips, _ in (a, b)]
    (_, stat_a), (_, stat_b) = a, b

    def difference(counts: np.ndarray) -> np.ndarray:
        counts = np.hstack([counts, np.zeros((len(counts), 1), dtype=counts.dtype)])
        return stat_b(counts[:, index[1]]) - stat_a(counts[:, index[0]])

    point = float(difference(np.ones((1, len(shared)), dtype=np.int64))[0])
    out = []
    for counts in clip_counts(len(shared), resamples, seed):
        # One resample at a time: a Fréchet statistic holds a (D x D) Gram matrix per row of weights anyway.
        for one in counts:
            out.append(difference(one[None, :]))
            if progress is not None:
                progress(1)
    return (np.concatenate(out) if out else np.empty(0)), point, shared


class FrechetResampler:
    """Fréchet distance of the generated features, reweighted, against fixed reference statistics.

    features: (n_rows, D), one row per sample (or per frame: VGGish gives several per sample); the statistic
    takes (b, n_rows) row weights. `eps` > 0 reproduces the "if-singular" offset of
    `v2a.metrics.frechet.frechet_distance_from_stats` (both covariances + eps I, in every term), applied when
    the point value was offset, so a resample of unit weights gives the point value."""

    def __init__(self, features: np.ndarray, ref_mu: np.ndarray, ref_sigma: np.ndarray, eps: float = 0.0):
        x = np.asarray(features, dtype=np.float64)
        mu_ref = np.asarray(ref_mu, dtype=np.float64)
        s_ref = np.asarray(ref_sigma, dtype=np.float64)
        dim = x.shape[1]
        if eps:
            s_ref = s_ref + eps * np.eye(dim)
        w, u = np.linalg.eigh(s_ref)
        self.root = (u * np.sqrt(np.clip(w, 0.0, None))) @ u.T  # R = S_ref^(1/2), symmetric
        self.x, self.y = x, x @ self.root                      # rows mapped once: R S R is their covariance
        self.mu_ref, self.trace_ref, self.eps, self.dim = mu_ref, float(np.trace(s_ref)), eps, dim
        # R (S + eps I) R = R S R + eps R^2, and R^2 = S_ref (+ eps I).
        self.shift = eps * s_ref if eps else None

    def one(self, weights: np.ndarray) -> float:
        w = np.asarray(weights, dtype=np.float64)
        total = w.sum()
        nz = np.flatnonzero(w)
        wn = w[nz]
        mu = wn @ self.x[nz] / total
        # Scaled by sqrt(weight), the covariance is a plain Gram matrix (numpy uses a symmetric rank-k update).
        root_w = np.sqrt(wn)[:, None]
        yc = (self.y[nz] - mu @ self.root) * root_w
        gram = yc.T @ yc / (total - 1.0)
        if self.shift is not None:
            gram += self.shift
        eig = np.linalg.eigvalsh(0.5 * (gram + gram.T))
        cross = float(np.sqrt(np.clip(eig, 0.0, None)).sum())
        xc = (self.x[nz] - mu) * root_w
        trace = float(np.einsum("ij,ij->", xc, xc)) / (total - 1.0) + self.eps * self.dim
        diff = mu - self.mu_ref
        return max(float(diff @ diff) + trace + self.trace_ref - 2.0 * cross, 0.0)

    def __call__(self, weights: np.ndarray) -> np.ndarray:
        return np.array([self.one(w) for w in np.atleast_2d(weights)])


class InceptionResampler:
    """Inception Score recomputed on a resample: the resampled rows in order, each repeated by its weight, scored
    as `v2a.metrics.classification.inception_score` scores a set (its splits and fixed shuffle).

    Per split, mean_x KL(p_x || q) = mean_x sum_c p_xc log p_xc - sum_c q_c log q_c with q the split's mean p, so
    a resample needs only each split's count of every row: one (splits x rows) @ (rows x classes) product
    instead of gathering the resampled rows' probabilities."""

    def __init__(self, logits: np.ndarray, splits: int = 10, rng_seed: int = 2020):
        from v2a.metrics.classification import log_softmax, softmax

        x = np.asarray(logits, dtype=np.float64)
        self.p = softmax(x)
        self.neg_entropy = (self.p * log_softmax(x)).sum(axis=1)
        self.splits, self.rng_seed = splits, rng_seed

    def one(self, weights: np.ndarray) -> float:
        rows = np.repeat(np.arange(len(self.p)), np.asarray(weights, dtype=np.int64))
        n = len(rows)
        splits = self.splits if n >= self.splits else 1
        rows = rows[np.random.RandomState(self.rng_seed).permutation(n)]
        bounds = np.array([i * n // splits for i in range(splits + 1)])
        split_of = np.repeat(np.arange(splits), np.diff(bounds))
        counts = np.bincount(split_of * len(self.p) + rows, minlength=splits * len(self.p))
        counts = counts.reshape(splits, len(self.p)).astype(np.float64)
        sizes = np.diff(bounds).astype(np.float64)[:, None]
        q = counts @ self.p / sizes
        kl = (counts @ self.neg_entropy) / sizes[:, 0] - (q * np.log(q)).sum(axis=1)
        return float(np.mean(np.exp(kl)))

    def __call__(self, weights: np.ndarray) -> np.ndarray:
        return np.array([self.one(w) for w in np.atleast_2d(weights)])
