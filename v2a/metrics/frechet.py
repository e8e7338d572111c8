"""Fréchet distance between Gaussian fits of two embedding sets (FD with PANNs, FAD with VGGish).

The value is the *squared* distance, as the audio-generation papers report it:

    FD = |mu1 - mu2|^2 + tr(S1) + tr(S2) - 2 tr((S1 S2)^(1/2))

Everything runs in float64. The matrix square root comes from `scipy.linalg.sqrtm` and is
checked against the eigenvalue form tr((S1 S2)^(1/2)) = sum_i sqrt(lambda_i(S1 S2)) (the
eigenvalues of a product of two PSD matrices are real and non-negative); some scipy releases
return a wrong or spuriously complex sqrtm, and a disagreement raises `FrechetComputationError`
instead of quietly producing a wrong number.

Singular covariances. With fewer vectors than dimensions (e.g. a few hundred clips in the
2048-d PANNs space) a covariance is singular and sqrtm of the product is ill-conditioned. By default
(`offset="if-singular"`) we then add `eps * I` to both covariances and use the offset covariances in
the trace terms too, so the result is the exact FD between N(mu1, S1 + eps I) and N(mu2, S2 + eps I):
a set compared with itself still gives 0 and the value is never negative.

How far that is from the unregularised FD (what pytorch-fid, audioldm_eval and av-benchmark report
whenever their sqrtm of S1 S2 comes out finite, i.e. almost always). With A = S1 + eps I, B = S2 + eps I,
the difference is D = 2 eps dim - 2 (tr (A B)^(1/2) - tr (S1 S2)^(1/2)). The cross term only grows
with the offset (tr (X^(1/2) Y X^(1/2))^(1/2) is monotone in X and Y), and, because
0 <= (s + eps)^(1/2) - s^(1/2) <= eps^(1/2) for every eigenvalue s, it grows by at most
eps^(1/2) (tr S1^(1/2) + tr S2^(1/2)) + eps dim (nuclear-norm triangle inequality). Hence

    -2 eps^(1/2) (tr S1^(1/2) + tr S2^(1/2))  <=  D  <=  2 eps dim.

The lower side dominates: a direction in which one set varies and the other does not contributes
about (eps s)^(1/2), not eps, to the cross term, so |D| scales with sqrt(eps), not with eps * dim
(24 clips in 768 dims: |D| = 0.00224 where 2 eps dim is 0.00154; `bound_of_offset` gives the bound).
`offset="if-non-finite"` is the reference implementations' rule instead: sqrtm of the unregularised
product, the offset added (to the product only) when that is not finite. A warning is logged
whenever the offset is used.
"""

from __future__ import annotations

import logging

import numpy as np
import scipy.linalg

log = logging.getLogger(__name__)

DEFAULT_EPS = 1e-6
# A covariance counts as singular when its smallest eigenvalue is below this fraction of its
# largest: float64 rounding leaves the "zero" eigenvalues of a rank-deficient sample covariance
# at about 1e-16 of the largest, far below any genuine spread in a real embedding set.
_SINGULAR_RTOL = 1e-10


class FrechetComputationError(RuntimeError):
    """The sqrtm and eigenvalue forms of tr((S1 S2)^(1/2)) disagree, or sqrtm is unusably complex."""


def gaussian_stats(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and unbiased (N - 1) covariance of an (N, D) array, in float64."""
    x = np.asarray(features, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"expected an (N, D) feature array, got shape {x.shape}")
    if x.shape[0] < 2:
        raise ValueError(f"a covariance needs at least 2 vectors, got {x.shape[0]}")
    if not np.all(np.isfinite(x)):
        raise ValueError("features contain NaN or inf")
    mu = x.mean(axis=0)
    sigma = np.cov(x, rowvar=False)
    return mu, np.atleast_2d(sigma)


def _is_singular(sigma: np.ndarray) -> bool:
    eig = np.linalg.eigvalsh(sigma)
    top = max(float(eig[-1]), np.finfo(np.float64).tiny)
    return float(eig[0]) <= _SINGULAR_RTOL * top


def _trace_sqrt_sqrtm(product: np.ndarray) -> tuple[float, bool]:
    """tr(sqrtm(product)) and whether sqrtm returned something finite."""
    root = scipy.linalg.sqrtm(product)
    if isinstance(root, tuple):  # older scipy returned (root, errest) when disp=False
        root = root[0]
    if not np.all(np.isfinite(root)):
        return float("nan"), False
    if np.iscomplexobj(root):
        imag = np.abs(np.diagonal(root).imag).max()
        # The same tolerance pytorch-fid uses: a larger imaginary diagonal is not round-off.
        if imag > 1e-3:
            raise FrechetComputationError(
                f"scipy.linalg.sqrtm returned a complex square root (max |imag| on the diagonal {imag:.3g}); "
                "the covariances are probably not positive semi-definite")
        root = root.real
    return float(np.trace(root)), True


def _trace_sqrt_eig(s1: np.ndarray, s2: np.ndarray) -> float:
    """sum_i sqrt(lambda_i(S1 S2)), computed through a similar symmetric matrix.

    S1 S2 = R (R S2 R) R^-1 with R = S1^(1/2), so it has the eigenvalues of the symmetric PSD
    matrix R S2 R. Symmetric eigensolvers are faster and more accurate than a general `eigvals`
    on S1 S2, and none of this goes through sqrtm, so it is an independent check.
    """
    w, u = np.linalg.eigh(s1)
    root1 = (u * np.sqrt(np.clip(w, 0.0, None))) @ u.T
    m = root1 @ s2 @ root1
    eig = np.linalg.eigvalsh(0.5 * (m + m.T))
    # Negative eigenvalues are round-off on the (near-)zero directions of a PSD product.
    return float(np.sqrt(np.clip(eig, 0.0, None)).sum())


OFFSET_RULES = ("if-singular", "if-non-finite")


def singular_offset(sigma1: np.ndarray, sigma2: np.ndarray, offset: str = "if-singular") -> bool:
    """Whether `frechet_distance_from_stats` offsets both covariances (and its trace terms) for these two: what a
    resampled distance must repeat to bootstrap the same quantity (v2a.metrics.bootstrap)."""
    return offset == "if-singular" and (_is_singular(np.atleast_2d(sigma1)) or _is_singular(np.atleast_2d(sigma2)))


def bound_of_offset(sigma1: np.ndarray, sigma2: np.ndarray, eps: float = DEFAULT_EPS) -> tuple[float, float]:
    """(lowest, highest) possible change of the FD made by the `if-singular` offset (module docstring)."""
    roots = sum(float(np.sqrt(np.clip(np.linalg.eigvalsh(np.asarray(s, np.float64)), 0.0, None)).sum())
                for s in (sigma1, sigma2))
    return -2.0 * np.sqrt(eps) * roots, 2.0 * eps * np.asarray(sigma1).shape[0]


def frechet_distance_from_stats(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray,
                                eps: float = DEFAULT_EPS, rtol: float = 1e-4, offset: str = "if-singular") -> float:
    """Squared Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2).

    `eps` is the diagonal offset used when a covariance is singular (see the module docstring); `offset`
    says when: "if-singular" (v2a's default) or "if-non-finite" (pytorch-fid's and audioldm_eval's rule).
    `rtol` bounds the allowed disagreement between the sqrtm and eigenvalue forms of the
    cross term, relative to (tr S1 + tr S2) / 2, the scale of that term.
    """
    mu1 = np.atleast_1d(np.asarray(mu1, dtype=np.float64))
    mu2 = np.atleast_1d(np.asarray(mu2, dtype=np.float64))
    s1 = np.atleast_2d(np.asarray(sigma1, dtype=np.float64))
    s2 = np.atleast_2d(np.asarray(sigma2, dtype=np.float64))
    dim = mu1.shape[0]
    if mu2.shape != (dim,) or s1.shape != (dim, dim) or s2.shape != (dim, dim):
        raise ValueError(f"shape mismatch: mu1 {mu1.shape}, sigma1 {s1.shape}, mu2 {mu2.shape}, sigma2 {s2.shape}")
    for name, arr in (("mu1", mu1), ("sigma1", s1), ("mu2", mu2), ("sigma2", s2)):
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{name} contains NaN or inf")

    if offset not in OFFSET_RULES:
        raise ValueError(f"unknown offset rule {offset!r}; accepted: {', '.join(OFFSET_RULES)}")
    singular = offset == "if-singular" and (_is_singular(s1) or _is_singular(s2))
    trace_cross, finite = (float("nan"), False) if singular else _trace_sqrt_sqrtm(s1 @ s2)
    c1, c2 = s1, s2  # the covariances of the cross term
    if singular or not finite:
        log.warning("Fréchet distance: %s covariance in %d dims; adding %.1e * I to both covariances",
                    "singular" if singular else "ill-conditioned", dim, eps)
        c1, c2 = s1 + eps * np.eye(dim), s2 + eps * np.eye(dim)
        if offset == "if-singular":  # the exact FD of the offset Gaussians: the trace terms move too
            s1, s2 = c1, c2
        trace_cross, finite = _trace_sqrt_sqrtm(c1 @ c2)
        if not finite:
            raise FrechetComputationError("scipy.linalg.sqrtm returned non-finite values even after the eps offset")

    trace_eig = _trace_sqrt_eig(c1, c2)
    scale = 0.5 * (np.trace(s1) + np.trace(s2))
    tolerance = rtol * max(scale, 1e-12)
    if abs(trace_cross - trace_eig) > tolerance:
        raise FrechetComputationError(
            f"tr((S1 S2)^1/2) disagrees between scipy.linalg.sqrtm ({trace_cross:.10g}) and the eigenvalue "
            f"form ({trace_eig:.10g}); difference {abs(trace_cross - trace_eig):.3g} > tolerance {tolerance:.3g}. "
            f"This scipy ({scipy.__version__}) may have a broken sqrtm; refusing to report a Fréchet distance")

    diff = mu1 - mu2
    value = float(diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * trace_cross)
    # Round-off can leave a tiny negative number for (near-)identical sets.
    return max(value, 0.0)


def frechet_distance(features_a: np.ndarray, features_b: np.ndarray, eps: float = DEFAULT_EPS,
                     rtol: float = 1e-4, offset: str = "if-singular") -> float:
    """Squared Fréchet distance between Gaussian fits of two (N, D) feature arrays."""
    a = np.asarray(features_a)
    b = np.asarray(features_b)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"expected (N, D) arrays with the same D, got {a.shape} and {b.shape}")
    mu1, s1 = gaussian_stats(a)
    mu2, s2 = gaussian_stats(b)
    return frechet_distance_from_stats(mu1, s1, mu2, s2, eps=eps, rtol=rtol, offset=offset)
