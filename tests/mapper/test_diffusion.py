"""The diffusion maths, apart from any trained network."""

import math

import numpy as np
import pytest
import torch

from v2a.mapper import build_mapper
from v2a.mapper.diffusion import EmbeddingDiffusion, cosine_alphas_cumprod, respaced_timesteps
from v2a.mapper.keyed_noise import keyed_normal


def test_cosine_schedule_goes_from_clean_to_pure_noise():
    ab = cosine_alphas_cumprod(1000)
    assert ab.shape == (1000,)
    assert np.all(np.diff(ab) < 0)
    assert ab[0] > 0.999 and ab[-1] < 1e-4
    # Halfway the cosine schedule keeps about half the signal power (a linear one keeps far less).
    assert 0.4 < ab[499] < 0.6


def test_respacing_picks_200_of_1000_steps_from_noise_to_clean():
    ts = respaced_timesteps(1000, 200)
    assert len(ts) == 200 and ts[0] == 999 and ts[-1] == 0
    assert all(a > b for a, b in zip(ts, ts[1:]))
    assert respaced_timesteps(1000, 1000) == list(range(999, -1, -1))
    with pytest.raises(ValueError, match="steps=1001"):
        respaced_timesteps(1000, 1001)


def test_keyed_noise_is_standard_normal_and_independent_of_batching():
    rows = torch.arange(2000)
    samples = torch.zeros(2000, dtype=torch.long)
    z = keyed_normal(7, rows, samples, 3, 64)
    assert abs(z.mean().item()) < 0.01 and abs(z.std().item() - 1) < 0.01
    assert torch.equal(keyed_normal(7, rows[500:510], samples[500:510], 3, 64), z[500:510])
    assert not torch.equal(keyed_normal(8, rows[:10], samples[:10], 3, 64), z[:10])
    assert not torch.equal(keyed_normal(7, rows[:10], samples[:10], 4, 64), z[:10])
    assert not torch.equal(keyed_normal(7, rows[:10], samples[:10] + 1, 3, 64), z[:10])


class _ConstantX0(torch.nn.Module):
    """Predicts x0 = cond exactly; lets the sampler's arithmetic be checked in closed form."""

    def __init__(self, dim):
        super().__init__()
        self.null_cond = torch.nn.Parameter(torch.zeros(dim))

    def forward(self, t, x_t, cond):
        return cond


def test_guidance_convention_is_uncond_plus_g_times_difference():
    diff = EmbeddingDiffusion(dim=4, num_timesteps=10, sampling_steps=10)
    net = _ConstantX0(4)
    net.null_cond.data = torch.tensor([0.0, 1.0, 0.0, 0.0])
    cond = torch.tensor([[1.0, 0.0, 0.0, 0.0]])
    t = torch.tensor([5])
    x = torch.zeros(1, 4)
    assert torch.allclose(diff._guided_x0(net, t, x, cond, 1.0), cond)
    assert torch.allclose(diff._guided_x0(net, t, x, cond, 0.0), net.null_cond[None])
    assert torch.allclose(diff._guided_x0(net, t, x, cond, 0.9), torch.tensor([[0.9, 0.1, 0.0, 0.0]]))


def test_sampler_returns_the_predicted_x0_direction_for_a_perfect_network():
    diff = EmbeddingDiffusion(dim=16, num_timesteps=100, sampling_steps=20, guidance_scale=1.0)
    cond = torch.nn.functional.normalize(torch.randn(5, 16), dim=-1)
    out = diff.generate(_ConstantX0(16), cond, torch.arange(5), torch.zeros(5, dtype=torch.long))
    assert torch.allclose(out, cond, atol=1e-5)
    assert torch.allclose(out.norm(dim=-1), torch.ones(5))


def test_training_loss_is_x0_mse_on_the_scaled_sphere():
    torch.manual_seed(0)
    diff = EmbeddingDiffusion(dim=16, num_timesteps=100, sampling_steps=100)
    assert diff.embed_scale == pytest.approx(math.sqrt(16))
    net = _ConstantX0(16)
    target = torch.nn.functional.normalize(torch.randn(8, 16), dim=-1)
    # The stub returns its condition, so with cond == target and no dropout the loss is 0.
    assert diff.loss(net, target, target, cond_drop_prob=0.0).item() == pytest.approx(0.0, abs=1e-10)
    # With every condition dropped, it returns the (zero) null condition: error = |x0|^2 / dim = 1.
    assert diff.loss(net, target, target, cond_drop_prob=0.9999999).item() == pytest.approx(1.0, rel=1e-5)


def test_sampling_of_a_real_network_is_deterministic_for_a_seed():
    torch.manual_seed(0)
    net = build_mapper("diffusion", "mlp", dim=16, depth=1, expansion=1, num_timesteps=50).eval()
    diff = EmbeddingDiffusion(dim=16, num_timesteps=50, sampling_steps=10)
    cond = torch.randn(4, 16)
    rows, samples = torch.arange(4), torch.zeros(4, dtype=torch.long)
    a = diff.generate(net, cond, rows, samples, seed=1)
    assert torch.equal(a, diff.generate(net, cond, rows, samples, seed=1))
    assert not torch.allclose(a, diff.generate(net, cond, rows, samples, seed=2))
