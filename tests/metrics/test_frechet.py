import numpy as np
import pytest
import scipy.linalg

from v2a.metrics import frechet
from v2a.metrics.frechet import (FrechetComputationError, frechet_distance, frechet_distance_from_stats,
                                 gaussian_stats)


def _spd(rng, dim):
    a = rng.standard_normal((dim, dim))
    return a @ a.T / dim + 0.1 * np.eye(dim)


def test_fd_of_a_set_with_itself_is_zero():
    x = np.random.default_rng(0).standard_normal((300, 16)) * np.linspace(0.1, 3, 16)
    assert frechet_distance(x, x) == pytest.approx(0.0, abs=1e-6)


def test_fd_of_a_set_with_itself_is_zero_with_fewer_vectors_than_dims():
    x = np.random.default_rng(1).standard_normal((20, 64))
    assert frechet_distance(x, x) == pytest.approx(0.0, abs=1e-6)


def test_fd_matches_closed_form_for_diagonal_gaussians():
    mu1, mu2 = np.array([0.0, 1.0, -2.0]), np.array([1.0, 1.0, 0.5])
    var1, var2 = np.array([1.0, 4.0, 0.25]), np.array([2.0, 1.0, 0.25])
    expected = np.sum((mu1 - mu2) ** 2) + np.sum(var1 + var2 - 2 * np.sqrt(var1 * var2))
    assert frechet_distance_from_stats(mu1, np.diag(var1), mu2, np.diag(var2)) == pytest.approx(expected, rel=1e-10)


def test_fd_matches_closed_form_for_proportional_covariances():
    # S2 = c S1 gives tr((S1 S2)^1/2) = sqrt(c) tr(S1).
    rng = np.random.default_rng(2)
    s1, c = _spd(rng, 12), 2.5
    mu1, mu2 = rng.standard_normal(12), rng.standard_normal(12)
    expected = np.sum((mu1 - mu2) ** 2) + (1 + c - 2 * np.sqrt(c)) * np.trace(s1)
    assert frechet_distance_from_stats(mu1, s1, mu2, c * s1) == pytest.approx(expected, rel=1e-9)


def test_fd_of_samples_approaches_the_closed_form():
    rng = np.random.default_rng(3)
    mu1, mu2 = np.zeros(4), np.array([1.0, 0.0, 0.0, 2.0])
    var1, var2 = np.array([1.0, 2.0, 0.5, 1.0]), np.array([1.0, 0.5, 0.5, 3.0])
    a = mu1 + rng.standard_normal((40000, 4)) * np.sqrt(var1)
    b = mu2 + rng.standard_normal((40000, 4)) * np.sqrt(var2)
    expected = np.sum((mu1 - mu2) ** 2) + np.sum(var1 + var2 - 2 * np.sqrt(var1 * var2))
    assert frechet_distance(a, b) == pytest.approx(expected, rel=0.03)


def test_fd_agrees_with_a_plain_float64_scipy_computation():
    rng = np.random.default_rng(4)
    a = rng.standard_normal((200, 24)) @ rng.standard_normal((24, 24))
    b = rng.standard_normal((150, 24)) * 1.5 + 0.3
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    plain = (mu1 - mu2) @ (mu1 - mu2) + np.trace(s1) + np.trace(s2) - 2 * np.trace(scipy.linalg.sqrtm(s1 @ s2).real)
    assert frechet_distance(a, b) == pytest.approx(plain, rel=1e-9)


def test_gaussian_stats_are_float64_mean_and_unbiased_covariance():
    x = np.random.default_rng(5).standard_normal((50, 3)).astype(np.float32)
    mu, sigma = gaussian_stats(x)
    assert mu.dtype == np.float64 and sigma.dtype == np.float64
    np.testing.assert_allclose(sigma, np.cov(x.astype(np.float64), rowvar=False, ddof=1))


def test_gaussian_stats_need_two_vectors():
    with pytest.raises(ValueError, match="at least 2"):
        gaussian_stats(np.zeros((1, 4)))


def test_a_wrong_sqrtm_raises_instead_of_returning_a_number(monkeypatch):
    rng = np.random.default_rng(6)
    a, b = rng.standard_normal((100, 8)), rng.standard_normal((100, 8)) + 1
    real_sqrtm = scipy.linalg.sqrtm
    monkeypatch.setattr(scipy.linalg, "sqrtm", lambda m, *args, **kw: 1.2 * real_sqrtm(m))
    with pytest.raises(FrechetComputationError, match="disagrees"):
        frechet_distance(a, b)


def test_a_strongly_complex_sqrtm_raises(monkeypatch):
    rng = np.random.default_rng(7)
    a, b = rng.standard_normal((100, 8)), rng.standard_normal((100, 8))
    real_sqrtm = scipy.linalg.sqrtm
    monkeypatch.setattr(scipy.linalg, "sqrtm", lambda m, *args, **kw: real_sqrtm(m) + 0.5j * np.eye(len(m)))
    with pytest.raises(FrechetComputationError, match="complex"):
        frechet_distance(a, b)


def test_singular_covariances_get_the_eps_offset_and_stay_close_to_the_unregularised_value(caplog):
    rng = np.random.default_rng(8)
    a, b = rng.standard_normal((10, 32)), rng.standard_normal((12, 32)) + 0.5
    with caplog.at_level("WARNING", logger=frechet.__name__):
        value = frechet_distance(a, b, eps=1e-6)
    assert "adding" in caplog.text
    # pytorch-fid's form (offset only inside the square root) differs by at most 2 * eps * dim.
    mu1, s1 = gaussian_stats(a)
    mu2, s2 = gaussian_stats(b)
    off = 1e-6 * np.eye(32)
    common = ((mu1 - mu2) @ (mu1 - mu2) + np.trace(s1) + np.trace(s2)
              - 2 * np.trace(scipy.linalg.sqrtm((s1 + off) @ (s2 + off)).real))
    assert value >= 0
    assert abs(value - common) <= 2 * 1e-6 * 32 + 1e-9


def test_mismatched_dimensions_are_rejected():
    with pytest.raises(ValueError):
        frechet_distance(np.zeros((5, 3)), np.zeros((5, 4)))


def _unregularised(mu1, s1, mu2, s2):
    """The FD without any offset, its cross term from the eigenvalues of S1^(1/2) S2 S1^(1/2) (exact for PSD)."""
    w, u = np.linalg.eigh(s1)
    root = (u * np.sqrt(np.clip(w, 0, None))) @ u.T
    cross = np.sqrt(np.clip(np.linalg.eigvalsh(root @ s2 @ root), 0, None)).sum()
    return float((mu1 - mu2) @ (mu1 - mu2) + np.trace(s1) + np.trace(s2) - 2 * cross)


def test_the_offsets_change_of_fd_stays_in_the_derived_bound_which_2_eps_dim_is_not():
    # The case: 24 clips in 768 dims, where the offset moved FD by 0.00224 against 2 eps dim = 0.00154.
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((24, 768)), rng.standard_normal((24, 768)) + 0.01
    mu1, s1 = gaussian_stats(a)
    mu2, s2 = gaussian_stats(b)
    change = frechet_distance_from_stats(mu1, s1, mu2, s2) - _unregularised(mu1, s1, mu2, s2)
    low, high = frechet.bound_of_offset(s1, s2)
    assert high == pytest.approx(2e-6 * 768)
    assert low <= change <= high
    assert abs(change) > 2e-6 * 768  # the docstring's former bound does not hold


def test_the_reference_offset_rule_is_pytorch_fids_computation():
    """offset="if-non-finite": sqrtm of the unregularised product, the trace terms untouched (audioldm_eval's fid.py)."""
    rng = np.random.default_rng(8)
    a, b = rng.standard_normal((10, 32)), rng.standard_normal((12, 32)) + 0.5
    mu1, s1 = gaussian_stats(a)
    mu2, s2 = gaussian_stats(b)
    plain = float((mu1 - mu2) @ (mu1 - mu2) + np.trace(s1) + np.trace(s2)
                  - 2 * np.trace(scipy.linalg.sqrtm(s1 @ s2).real))
    assert frechet_distance(a, b, offset="if-non-finite") == pytest.approx(plain, rel=1e-9)
    assert frechet_distance(a, b) != pytest.approx(plain, rel=1e-9)  # the default offsets this singular case
    with pytest.raises(ValueError, match="unknown offset rule"):
        frechet_distance(a, b, offset="never")
