import numpy as np
import pytest
import torch

from v2a.metrics.classification import (inception_score, kl_divergence, kl_sigmoid, kl_sigmoid_audioldm_eval,
                                       kl_softmax, kl_softmax_audioldm_eval)


def test_kl_of_identical_logits_is_zero_for_av_benchmark_and_slightly_negative_for_audioldm_eval():
    logits = np.random.default_rng(0).standard_normal((6, 527)) * 3
    assert kl_divergence(logits, logits) == 0.0
    assert kl_sigmoid(logits, logits) == 0.0
    # log(q + 1e-6) shifts each class term by about -1e-6, so identical inputs give ~ -classes * 1e-6.
    eps_kl = kl_softmax_audioldm_eval(logits, logits)
    assert -527 * 1e-6 < eps_kl < 0


def test_the_evaluations_kl_is_av_benchmarks_softmax_kl():
    assert kl_divergence is kl_softmax


def test_kl_is_reference_against_generated_on_known_distributions():
    p = np.array([[9 / 25, 12 / 25, 4 / 25]])  # reference
    q = np.array([[1 / 3, 1 / 3, 1 / 3]])      # generated
    expected = float(np.sum(p * np.log(p / q)))  # 0.0853, the SpecVQGAN docstring example
    assert kl_divergence(np.log(q), np.log(p)) == pytest.approx(expected, abs=1e-5)
    assert kl_divergence(np.log(p), np.log(q)) != pytest.approx(expected, abs=1e-3)


def test_kl_matches_torch_kl_div_as_av_benchmark_calls_it():
    rng = np.random.default_rng(1)
    gen, ref = rng.standard_normal((5, 527)) * 2, rng.standard_normal((5, 527)) * 2
    g, r = torch.from_numpy(gen), torch.from_numpy(ref)
    F = torch.nn.functional
    softmax_ref = F.kl_div(F.log_softmax(g, 1), F.log_softmax(r, 1), reduction="sum", log_target=True) / 5
    sigmoid_ref = F.kl_div(F.logsigmoid(g), F.logsigmoid(r), reduction="sum", log_target=True) / 5
    assert kl_softmax(gen, ref) == pytest.approx(float(softmax_ref), rel=1e-9)
    assert kl_sigmoid(gen, ref) == pytest.approx(float(sigmoid_ref), rel=1e-9)


def test_audioldm_eval_kl_matches_torch_kl_div_as_audioldm_eval_calls_it():
    rng = np.random.default_rng(1)
    gen, ref = rng.standard_normal((5, 527)) * 2, rng.standard_normal((5, 527)) * 2
    g, r = torch.from_numpy(gen), torch.from_numpy(ref)
    softmax_ref = torch.nn.functional.kl_div((g.softmax(1) + 1e-6).log(), r.softmax(1), reduction="sum") / 5
    sigmoid_ref = torch.nn.functional.kl_div((g.sigmoid() + 1e-6).log(), r.sigmoid(), reduction="sum") / 5
    assert kl_softmax_audioldm_eval(gen, ref) == pytest.approx(float(softmax_ref), rel=1e-9)
    assert kl_sigmoid_audioldm_eval(gen, ref) == pytest.approx(float(sigmoid_ref), rel=1e-9)


def test_the_two_kl_families_part_on_peaky_logits():
    rng = np.random.default_rng(3)
    gen, ref = rng.standard_normal((8, 527)) * 20, rng.standard_normal((8, 527)) * 20
    a, b = kl_softmax(gen, ref), kl_softmax_audioldm_eval(gen, ref)
    assert abs(a - b) / a > 0.01  # the 1e-6 floor caps log q where q underflows


def test_kl_rejects_unpaired_shapes():
    with pytest.raises(ValueError, match="same shape"):
        kl_divergence(np.zeros((3, 527)), np.zeros((4, 527)))


def test_inception_score_of_confident_evenly_spread_predictions_is_the_class_count():
    k = 5
    logits = 50.0 * np.eye(k)[np.arange(40) % k]
    mean, std = inception_score(logits, splits=1)
    assert mean == pytest.approx(k, rel=1e-6)
    assert std == 0.0


def test_inception_score_of_uniform_predictions_is_one():
    mean, _ = inception_score(np.zeros((20, 527)), splits=10)
    assert mean == pytest.approx(1.0)


def test_inception_score_matches_torch_fidelity_formula():
    logits = np.random.default_rng(2).standard_normal((53, 527)) * 4
    x = torch.from_numpy(logits[np.random.RandomState(2020).permutation(53)])
    p, log_p = x.softmax(1), x.log_softmax(1)
    scores = []
    for i in range(10):
        lo, hi = i * 53 // 10, (i + 1) * 53 // 10
        q = p[lo:hi].mean(0, keepdim=True)
        scores.append((p[lo:hi] * (log_p[lo:hi] - q.log())).sum(1).mean().exp().item())
    mean, std = inception_score(logits)
    assert mean == pytest.approx(np.mean(scores), rel=1e-9)
    assert std == pytest.approx(np.std(scores), rel=1e-9)


def test_inception_score_needs_at_least_one_sample_per_split():
    with pytest.raises(ValueError, match="splits"):
        inception_score(np.zeros((3, 10)), splits=10)
