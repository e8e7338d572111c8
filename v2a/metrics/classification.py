"""Classifier-based metrics: KL divergence (paired) and Inception Score, from PANNs logits.

The inputs are Cnn14's *pre-sigmoid* `logits` (the `fc_audioset` output, 527 AudioSet classes),
not the sigmoid `clipwise_output`. Two families of KL, each under its source's name:

av-benchmark (hkchengrex/av-benchmark `av_bench/metrics/kl.py`, what MMAudio reports), no epsilon:
    kl_softmax = kl_div(log_softmax(gen), log_softmax(ref), reduction="sum", log_target=True) / N
               = (1/N) sum_i sum_c p_ic (log p_ic - log q_ic),  p = softmax(ref), q = softmax(gen)
    kl_sigmoid = the same with logsigmoid: sum over per-class sigmoid probabilities, without the
                 (1 - p) terms (not a Bernoulli KL), as there.
i.e. KL(reference || generated) per pair, averaged over pairs; identical inputs give exactly 0.
The evaluation's `kl` row is `kl_softmax`, except under the `audioldm-eval` protocol (`kl_softmax_audioldm_eval`).

AudioLDM-eval (haoheliu/audioldm_eval `metrics/kl.py`, also SpecVQGAN's), with 1e-6 inside the log:
    kl_softmax_audioldm_eval = kl_div(log(softmax(gen) + 1e-6), softmax(ref), reduction="sum") / N
    kl_sigmoid_audioldm_eval = the same over sigmoid probabilities
so identical inputs give a slightly negative value (about -classes x 1e-6). The two families
differ by ~0.25 % on moderate logits and by up to ~17 % on peaky ones (docs/deviations.md).

Several samples per clip: av-benchmark's loop over sample lists keeps only the *last* list's
value (it overwrites its result each iteration). Here a reference row is repeated once per
sample and the mean runs over all (reference, sample) pairs, i.e. the average of the per-list
values when every clip has the same number of samples; with one sample per clip the two agree.

Inception Score (torch-fidelity `isc_features_to_metric`, 10 splits, shuffled with
`np.random.RandomState(2020).permutation`):
    p(y|x) = softmax(logits); per split: exp(mean_x KL(p(y|x) || mean_x p(y|x)))
    IS = mean over splits (std over splits is returned too)
"""

from __future__ import annotations

import numpy as np
from scipy.special import xlogy

KL_EPS = 1e-6


def _as_logits(x, name: str) -> np.ndarray:
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[0] == 0:
        raise ValueError(f"{name}: expected a non-empty (N, classes) logit array, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name}: logits contain NaN or inf")
    return arr


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def log_softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def _paired(generated_logits, reference_logits) -> tuple[np.ndarray, np.ndarray]:
    gen = _as_logits(generated_logits, "generated_logits")
    ref = _as_logits(reference_logits, "reference_logits")
    if gen.shape != ref.shape:
        raise ValueError(f"paired logits must have the same shape, got generated {gen.shape} and reference {ref.shape}")
    return gen, ref


def log_sigmoid(x: np.ndarray) -> np.ndarray:
    return -np.logaddexp(0.0, -x)


def _kl_from_logs(log_p: np.ndarray, log_q: np.ndarray) -> float:
    # kl_div(log_q, log_p, log_target=True, reduction="sum") / N
    return float((np.exp(log_p) * (log_p - log_q)).sum() / log_p.shape[0])


def kl_softmax(generated_logits: np.ndarray, reference_logits: np.ndarray) -> float:
    """av-benchmark's `kl_softmax`: mean over pairs of KL(softmax(reference) || softmax(generated))."""
    gen, ref = _paired(generated_logits, reference_logits)
    return _kl_from_logs(log_softmax(ref), log_softmax(gen))


def kl_sigmoid(generated_logits: np.ndarray, reference_logits: np.ndarray) -> float:
    """av-benchmark's `kl_sigmoid`: the same sum over per-class log-sigmoid probabilities."""
    gen, ref = _paired(generated_logits, reference_logits)
    return _kl_from_logs(log_sigmoid(ref), log_sigmoid(gen))


def _kl_eps_rows(p: np.ndarray, q: np.ndarray) -> float:
    # xlogy gives 0 for p == 0, as kl_div does for a zero target.
    per_row = (xlogy(p, p) - p * np.log(q + KL_EPS)).sum(axis=1)
    return float(per_row.mean())


def kl_softmax_audioldm_eval(generated_logits: np.ndarray, reference_logits: np.ndarray) -> float:
    """AudioLDM-eval's softmax KL: sum_c p_c (log p_c - log(q_c + 1e-6)), averaged over pairs."""
    gen, ref = _paired(generated_logits, reference_logits)
    return _kl_eps_rows(softmax(ref), softmax(gen))


def kl_sigmoid_audioldm_eval(generated_logits: np.ndarray, reference_logits: np.ndarray) -> float:
    """AudioLDM-eval's sigmoid KL: the same sum over sigmoid probabilities."""
    gen, ref = _paired(generated_logits, reference_logits)
    sig = lambda x: 1.0 / (1.0 + np.exp(-x))  # noqa: E731
    return _kl_eps_rows(sig(ref), sig(gen))


def kl_softmax_rows(generated_logits: np.ndarray, reference_logits: np.ndarray) -> np.ndarray:
    """`kl_softmax` of each pair: the values it averages (the row's bootstrap interval resamples them)."""
    gen, ref = _paired(generated_logits, reference_logits)
    log_p, log_q = log_softmax(ref), log_softmax(gen)
    return (np.exp(log_p) * (log_p - log_q)).sum(axis=1)


def kl_softmax_audioldm_eval_rows(generated_logits: np.ndarray, reference_logits: np.ndarray) -> np.ndarray:
    """`kl_softmax_audioldm_eval` of each pair."""
    gen, ref = _paired(generated_logits, reference_logits)
    p, q = softmax(ref), softmax(gen)
    return (xlogy(p, p) - p * np.log(q + KL_EPS)).sum(axis=1)


# The evaluation's `kl` row: av-benchmark's formula, unless the protocol names another (`Protocol.kl`).
kl_divergence = kl_softmax
KL_FORMULAS = {"av-benchmark": kl_softmax, "audioldm-eval": kl_softmax_audioldm_eval}
KL_ROW_FORMULAS = {"av-benchmark": kl_softmax_rows, "audioldm-eval": kl_softmax_audioldm_eval_rows}


def inception_splits(n: int) -> int:
    """The splits the evaluation scores `n` samples' Inception Score in: torch-fidelity's 10, which need at least
    10 samples; with fewer, one split over all of them (one split per sample would make every score exactly 1)."""
    return 10 if n >= 10 else 1


def inception_score(logits: np.ndarray, splits: int = 10, shuffle: bool = True,
                    rng_seed: int = 2020) -> tuple[float, float]:
    """(mean, std) of the Inception Score over `splits` chunks of the (N, classes) logits.

    Chunk boundaries are i * N // splits, as in torch-fidelity; `splits` larger than N would leave
    empty chunks, so it is an error (pass `min(10, N)` for a handful of clips).
    """
    x = _as_logits(logits, "logits")
    n = x.shape[0]
    if not 1 <= splits <= n:
        raise ValueError(f"splits must be between 1 and the number of clips ({n}), got {splits}")
    if shuffle:
        x = x[np.random.RandomState(rng_seed).permutation(n)]
    p = softmax(x)
    log_p = log_softmax(x)
    scores = []
    for i in range(splits):
        lo, hi = i * n // splits, (i + 1) * n // splits
        p_chunk, log_p_chunk = p[lo:hi], log_p[lo:hi]
        log_q = np.log(p_chunk.mean(axis=0, keepdims=True))
        scores.append(float(np.exp((p_chunk * (log_p_chunk - log_q)).sum(axis=1).mean())))
    return float(np.mean(scores)), float(np.std(scores))
