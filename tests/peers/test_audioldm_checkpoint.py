"""The generator built from an original AudioLDM checkpoint against AudioLDM's own code (audioldm==0.1.1).

One random checkpoint (a reduced AudioLDM: ``audioldm_peer.SMALL_*``) is written as Lightning writes
it and read by both: AudioLDM's ``LatentDiffusion`` holds the weights it was saved from, v2a's
generator converts the file. Compared, each to 1e-5 of the peak: the UNet's noise prediction (with
the EMA weights, as AudioLDM samples inside ``ema_scope``), the VAE decode, the HiFi-GAN, and whole
DDIM sampling at eta = 1 and eta = 0 with identical injected noise (AudioLDM's ``noise_like`` draws
from the same per-item generator as v2a). The -s head layout (4/8/12/20 heads of 32 channels) is
checked on a full-size AudioLDM-s UNet.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from tests.peers import audioldm_peer as peer

SECONDS = 1.25  # int(1.25 * 25.6) = 32 latent frames: AudioLDM's UNet needs a multiple of its 4x downsampling
TOL = 1e-5


def _close(ours, theirs, tol=TOL):
    ours, theirs = np.asarray(ours, np.float64), np.asarray(theirs, np.float64)
    assert ours.shape == theirs.shape
    peak = float(np.abs(theirs).max())
    assert peak > 1e-3, "the peer's output is (nearly) zero: nothing is compared"
    err = float(np.abs(ours - theirs).max()) / peak
    assert err <= tol, f"max |ours - AudioLDM| = {err:.3g} of the peak {peak:.3g}"
    return err


@pytest.fixture(scope="module")
def ldm():
    return peer.build_latent_diffusion(peer.SMALL_UNET, peer.SMALL_VAE)


@pytest.fixture(scope="module")
def checkpoint(ldm, tmp_path_factory):
    path = tmp_path_factory.mktemp("audioldm") / "audioldm-small.ckpt"
    peer.save_checkpoint(ldm, path)
    return path


@pytest.fixture(scope="module")
def generator(checkpoint):
    from v2a.models import build_generator

    return build_generator({"model_id": "audioldm-small", "weights": str(checkpoint),
                            "unet": {"attention_head_dim": peer.SMALL_HEADS},
                            "text_encoder": {"num_attention_heads": peer.TINY_TEXT["num_attention_heads"]}})


def _conds(n, dim, seed):
    return F.normalize(torch.randn(n, dim, generator=torch.Generator().manual_seed(seed)), dim=-1)


def test_the_unet_has_audioldms_heads_per_block(generator):
    assert list(generator.unet.config.attention_head_dim) == peer.SMALL_HEADS
    heads = [b.attentions[0].transformer_blocks[0].attn1.heads for b in generator.unet.down_blocks
             if hasattr(b, "attentions")]
    assert heads == peer.SMALL_HEADS[1:]  # level 0 has no attention (attention_resolutions [4, 2])


@torch.no_grad()
def test_unet_noise_prediction_equals_audioldms_with_its_ema_weights(ldm, generator):
    x = torch.randn(2, 8, 32, 16, generator=torch.Generator().manual_seed(1))
    t = torch.tensor([17, 801])
    y = _conds(2, generator.cond_dim, seed=2)
    ours = generator.unet(x, t, encoder_hidden_states=None, class_labels=y).sample
    with ldm.ema_scope():
        theirs = ldm.apply_model(x, t, [y[:, None]])
    _close(ours, theirs)
    raw = ldm.apply_model(x, t, [y[:, None]])  # the non-EMA weights give another prediction
    assert float((ours - raw).abs().max()) > 1e-2 * float(raw.abs().max())


@torch.no_grad()
def test_vae_decode_equals_audioldms(ldm, generator):
    z = torch.randn(1, 8, 32, 16, generator=torch.Generator().manual_seed(3))
    assert generator.vae.config.scaling_factor == pytest.approx(float(ldm.scale_factor))
    ours = generator.vae.decode(z / generator.vae.config.scaling_factor).sample
    _close(ours, ldm.decode_first_stage(z))


@torch.no_grad()
def test_vocoder_equals_audioldms(ldm, generator):
    mel = torch.randn(1, 1, 128, 64, generator=torch.Generator().manual_seed(4))
    ours = generator.vocoder(mel.squeeze(1))
    theirs = ldm.mel_spectrogram_to_waveform(mel)[:, 0]
    _close(ours, theirs)


@torch.no_grad()
def _audioldm_sample(ldm, generator, cond, seed, steps, guidance, eta, monkeypatch):
    """AudioLDM's generate_sample from its DDIM sampler on: same starting latents, same per-step noise."""
    from audioldm.latent_diffusion import ddim

    shape = generator.latent_shape(SECONDS, "audioldm")
    g = torch.Generator().manual_seed(seed)
    x_t = torch.randn((1, *shape), generator=g)
    monkeypatch.setattr(ddim, "noise_like", lambda s, device, repeat=False: torch.randn(s, generator=g))
    neg = F.normalize(torch.from_numpy(generator.negative_embedding())[None], dim=-1)
    with ldm.ema_scope():
        samples, _ = peer.cpu_ddim_sampler(ldm).sample(
            steps, 1, shape, torch.as_tensor(cond)[:, None], eta=eta, x_T=x_t, verbose=False,
            unconditional_guidance_scale=guidance, unconditional_conditioning=neg[:, None])
    if float(samples.abs().max()) > 1e2:
        samples = samples.clamp(-10, 10)
    wave = ldm.mel_spectrogram_to_waveform(ldm.decode_first_stage(samples))[:, 0]
    return wave[:, : int(round(SECONDS * generator.sample_rate))]


@pytest.mark.parametrize("eta", [1.0, 0.0])
def test_ddim_sampling_equals_audioldms(ldm, generator, eta, monkeypatch):
    cond = _conds(1, generator.cond_dim, seed=5).numpy()
    ours = generator.generate(cond, seeds=[7], steps=5, guidance_scale=2.5, seconds=SECONDS, sampler="audioldm",
                              eta=eta)
    theirs = _audioldm_sample(ldm, generator, cond, 7, 5, 2.5, eta, monkeypatch)
    _close(ours, theirs)


def test_the_audioldm_s_unet_has_4_8_12_20_heads_and_matches(tmp_path):
    """Full-size AudioLDM-s UNet (default_audioldm_config, 185 M parameters): heads from 32 channels
    each, and the same noise prediction."""
    peer.audioldm()
    from audioldm.latent_diffusion.openaimodel import UNetModel
    from audioldm.utils import default_audioldm_config

    from v2a.models.audioldm_checkpoint import convert_unet, unet_config, unet_layout

    params = default_audioldm_config("audioldm-s-full-v2")["model"]["params"]["unet_config"]["params"]
    torch.manual_seed(0)
    theirs = UNetModel(**params).eval()
    peer.rerandomise(theirs, seed=0)
    sd = theirs.state_dict()
    layout = unet_layout(sd)
    cfg = unet_config(layout)  # no heads given: AudioLDM's own rule for a width-128 UNet
    assert cfg["attention_head_dim"] == peer.S_HEADS
    assert layout.channel_mult == [1, 2, 3, 5] and layout.attention_levels == [False, True, True, True]
    from diffusers import UNet2DConditionModel

    ours = UNet2DConditionModel(**cfg).eval()
    ours.load_state_dict(convert_unet(sd, layout), strict=True)
    del sd
    x = torch.randn(1, 8, 16, 16, generator=torch.Generator().manual_seed(8))
    t = torch.tensor([500])
    y = _conds(1, 512, seed=9)
    with torch.no_grad():
        _close(ours(x, t, encoder_hidden_states=None, class_labels=y).sample, theirs(x, t, y=y))
