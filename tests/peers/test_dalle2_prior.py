"""Our dalle2-prior mapper against DALLE2-pytorch's own DiffusionPriorNetwork on identical weights."""

import pytest
import torch

from tests.peers.loaders import load_prior_module
from v2a.mapper import build_mapper, count_trainable_params
from v2a.mapper.diffusion import EmbeddingDiffusion

DIM, DEPTH, HEADS, HEAD_DIM, STEPS = 32, 2, 2, 16, 50


def _peer(module, **overrides):
    kw = dict(dim=DIM, num_timesteps=STEPS, depth=DEPTH, dim_head=HEAD_DIM, heads=HEADS, max_text_len=77,
              normformer=True, attn_dropout=0.05, ff_dropout=0.05)
    return module.DiffusionPriorNetwork(**{**kw, **overrides})


@pytest.fixture(scope="module")
def dalle2():
    return load_prior_module()


def _inputs(seed=0, batch=4):
    g = torch.Generator().manual_seed(seed)
    return (torch.randint(0, STEPS, (batch,), generator=g), torch.randn(batch, DIM, generator=g),
            torch.randn(batch, DIM, generator=g))


def test_state_dict_keys_and_shapes_are_dalle2s(dalle2):
    ours = build_mapper("diffusion", "transformer", dim=DIM, depth=DEPTH, heads=HEADS, head_dim=HEAD_DIM,
                        num_timesteps=STEPS)
    peer = _peer(dalle2)
    assert {k: tuple(v.shape) for k, v in ours.state_dict().items()} == \
        {k: tuple(v.shape) for k, v in peer.state_dict().items()}
    assert count_trainable_params(ours) == sum(p.numel() for p in peer.parameters() if p.requires_grad)


def test_dalle2_weights_in_our_network_give_dalle2s_predictions(dalle2):
    torch.manual_seed(1)
    peer = _peer(dalle2).eval()
    ours = build_mapper("diffusion", "transformer", dim=DIM, depth=DEPTH, heads=HEADS, head_dim=HEAD_DIM,
                        num_timesteps=STEPS).eval()
    ours.load_state_dict(peer.state_dict(), strict=True)
    t, x, c = _inputs()
    with torch.no_grad():
        expected = peer(x, t, text_embed=c)
        got = ours(t, x, c)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


def test_our_weights_in_dalle2_give_our_predictions_with_and_without_the_null_branch(dalle2):
    torch.manual_seed(2)
    ours = build_mapper("diffusion", "transformer", dim=DIM, depth=DEPTH, heads=HEADS, head_dim=HEAD_DIM,
                        num_timesteps=STEPS).eval()
    peer = _peer(dalle2).eval()
    peer.load_state_dict(ours.state_dict(), strict=True)
    t, x, c = _inputs(seed=3)
    null_c, null_x = ours.null_cond.expand_as(c), ours.null_x.expand_as(x)
    with torch.no_grad():
        torch.testing.assert_close(ours(t, x, c), peer(x, t, text_embed=c), rtol=1e-5, atol=1e-5)
        # DALLE2's unconditional branch drops both the condition and the noisy embedding
        dropped = peer(x, t, text_embed=c, text_cond_drop_prob=1.0, image_cond_drop_prob=1.0)
        torch.testing.assert_close(ours(t, null_x, null_c), dropped, rtol=1e-5, atol=1e-5)
        # and so does our sampler's guidance: forward_with_cond_scale on the same inputs
        diff = EmbeddingDiffusion(DIM, num_timesteps=STEPS, sampling_steps=5)
        guided = diff._guided_x0(ours, t, x, c, 0.9)
        torch.testing.assert_close(guided, peer.forward_with_cond_scale(x, t, text_embed=c, cond_scale=0.9),
                                   rtol=1e-5, atol=1e-5)


def test_full_width_network_has_dalle2s_parameter_count(dalle2):
    peer = _peer(dalle2, dim=512, depth=3, dim_head=64, heads=12, num_timesteps=1000)
    ours = build_mapper("diffusion", "transformer", dim=512, depth=3)
    assert count_trainable_params(ours) == sum(p.numel() for p in peer.parameters() if p.requires_grad)


def test_diffusion_schedule_and_ddim_step_are_dalle2s(dalle2):
    sched = dalle2.NoiseScheduler(beta_schedule="cosine", timesteps=1000, loss_type="l2")
    diff = EmbeddingDiffusion(512)
    torch.testing.assert_close(torch.tensor(diff.alphas_cumprod), sched.alphas_cumprod.double(), rtol=1e-6, atol=1e-7)


def test_ddim_sampling_equals_dalle2s_p_sample_loop_ddim(dalle2, monkeypatch):
    from v2a.mapper.keyed_noise import keyed_normal

    torch.manual_seed(4)
    ours = build_mapper("diffusion", "transformer", dim=DIM, depth=DEPTH, heads=HEADS, head_dim=HEAD_DIM,
                        num_timesteps=STEPS).eval()
    prior = dalle2.DiffusionPrior(_peer(dalle2), image_embed_dim=DIM, timesteps=STEPS, cond_drop_prob=0.1,
                                  condition_on_text_encodings=False, sampling_clamp_l2norm=True).eval()
    prior.net.load_state_dict(ours.state_dict(), strict=True)
    diff = EmbeddingDiffusion(DIM, num_timesteps=STEPS, sampling_steps=10, eta=0.0)
    assert diff.timestep_spacing == "dalle2"
    cond = torch.nn.functional.normalize(torch.randn(3, DIM), dim=-1)
    rows, samples = torch.arange(3), torch.zeros(3, dtype=torch.long)
    got = diff.generate(ours, cond, rows, samples, seed=7, guidance_scale=0.9)
    start = keyed_normal(7, rows, samples, 0, DIM)  # the same starting noise for DALLE2's loop
    monkeypatch.setattr(torch, "randn", lambda *a, **k: start.clone())
    with torch.no_grad():
        theirs = prior.p_sample_loop_ddim((3, DIM), {"text_embed": cond * diff.embed_scale}, timesteps=10, eta=0.0,
                                          cond_scale=0.9)
    torch.testing.assert_close(got, torch.nn.functional.normalize(theirs, dim=-1), rtol=1e-4, atol=1e-5)
