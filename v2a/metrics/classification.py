"""Classifier-based metrics: KL divergence (paired) and Inception Score, from PANNs logits.

Definitions follow MMAudio's av-benchmark, which takes them from SpecVQGAN / AudioLDM-eval
(KL) and torch-fidelity (IS). The inputs are Cnn14's *pre-sigmoid* `logits` (the
`fc_audioset` output, 527 AudioSet classes), not the sigmoid `clipwise_output`.

KL (av-benchmark's `KL-PANNS-softmax`, the number MMAudio and Diff-Foley report):
    p_i = softmax(reference logits of clip i), q_i = softmax(generated logits of clip i)
    KL = (1/N) * sum_i sum_c p_ic * (log p_ic - log(q_ic + 1e-6))
i.e. KL(reference || generated) per pair, averaged over pairs. The 1e-6 sits inside the log of
the generated distribution only, exactly as `torch.nn.functional.kl_div((q + EPS).log(), p)`;
so identical inputs give a slightly negative value (about -classes x 1e-6), as there.
With several generated samples per clip, av-benchmark computes this per sample index and
averages; with the same number of samples for every clip that equals the mean over all
(reference, sample) pairs, which is what `kl_divergence` computes when a reference row is
repeated for each sample.

`kl_divergence_sigmoid` is AudioLDM-eval's variant: the same sum, over per-class sigmoid
probabilities (not a proper Bernoulli KL: the (1 - p) terms are left out, as there).

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


def _kl_rows(p: np.ndarray, q: np.ndarray) -> float:
    # xlogy gives 0 for p == 0, as kl_div does for a zero target.
    per_row = (xlogy(p, p) - p * np.log(q + KL_EPS)).sum(axis=1)
    return float(per_row.mean())


def kl_divergence(generated_logits: np.ndarray, reference_logits: np.ndarray) -> float:
    """Mean over pairs of KL(softmax(reference) || softmax(generated)); row i of each is one pair."""
    gen, ref = _paired(generated_logits, reference_logits)
    return _kl_rows(softmax(ref), softmax(gen))


def kl_divergence_sigmoid(generated_logits: np.ndarray, reference_logits: np.ndarray) -> float:
    """AudioLDM-eval's sigmoid KL: sum_c p_c (log p_c - log(q_c + 1e-6)) over sigmoid probabilities."""
    gen, ref = _paired(generated_logits, reference_logits)
    sig = lambda x: 1.0 / (1.0 + np.exp(-x))  # noqa: E731
    return _kl_rows(sig(ref), sig(gen))


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
