"""AudioLDM's own code (``audioldm==0.1.1``, github.com/haoheliu/AudioLDM) with random weights, offline.

``build_latent_diffusion`` makes AudioLDM's ``LatentDiffusion`` from its default configuration
(``audioldm.utils.default_audioldm_config``) with chosen sizes, without the CLAP conditioner (a
FiLM condition is handed to the UNet directly, so the cond stage is ``torch.nn.Identity``) and
with a HiFi-GAN of a chosen width (``HIFIGAN_16K_64`` patched while it is built).

LDM zero-initialises several output layers (``zero_module``); every parameter is re-randomised so
that no path compares zeros, and the EMA copy (``model_ema``) is made to differ from the trained
weights, as it does in a real checkpoint. ``save_checkpoint`` writes the state dict as Lightning
does (``{"state_dict": ...}``), with a CLAP text tower (our tiny ``ClapTextModelWithProjection``
under AudioLDM's ``cond_stage_model.model.text_branch`` names) so that the file has everything an
original checkpoint holds for the generator.
"""

from __future__ import annotations

import copy

import pytest
import torch

# A reduced AudioLDM: widths 32 / 64 / 96 (attention at 2x and 4x downsampling, 16 channels per
# head: 2 / 4 / 6 heads), a 3-level VAE of width 32 (factor 4 as in AudioLDM), HiFi-GAN of width 64.
SMALL_UNET = {"model_channels": 32, "channel_mult": [1, 2, 3], "attention_resolutions": [4, 2], "num_res_blocks": 1,
              "num_head_channels": 16, "extra_film_condition_dim": 32}
SMALL_HEADS = [2, 4, 6]
SMALL_VAE = {"ch": 32, "ch_mult": [1, 2, 4], "num_res_blocks": 1}
SMALL_HIFIGAN = 64
# AudioLDM-s (default_audioldm_config("audioldm-s-full-v2")): model_channels 128, channel_mult
# [1, 2, 3, 5], num_head_channels 32.
S_HEADS = [4, 8, 12, 20]


def audioldm():
    return pytest.importorskip("audioldm", reason="audioldm==0.1.1 is not installed (Makefile peer packages)")


def build_latent_diffusion(unet: dict | None = None, vae: dict | None = None, hifigan_width: int = SMALL_HIFIGAN,
                           seed: int = 0, scale_factor: float = 0.8):
    audioldm()
    from audioldm import LatentDiffusion
    from audioldm.hifigan import utilities as hifigan_utilities
    from audioldm.utils import default_audioldm_config

    cfg = default_audioldm_config("audioldm-s-full-v2")["model"]["params"]
    cfg["device"] = "cpu"
    cfg["unet_config"]["params"].update(unet or {})
    cfg["first_stage_config"]["params"]["ddconfig"].update(vae or {})
    cfg["cond_stage_config"] = {"target": "torch.nn.Identity"}
    cfg["cond_stage_trainable"] = True
    cfg["scale_factor"] = scale_factor
    saved = dict(hifigan_utilities.HIFIGAN_16K_64)
    hifigan_utilities.HIFIGAN_16K_64["upsample_initial_channel"] = hifigan_width
    try:
        torch.manual_seed(seed)
        model = LatentDiffusion(**cfg)
    finally:
        hifigan_utilities.HIFIGAN_16K_64.clear()
        hifigan_utilities.HIFIGAN_16K_64.update(saved)
    model.eval()
    rerandomise(model, seed)
    return model


@torch.no_grad()
def rerandomise(model, seed: int) -> None:
    """Every weight random (fan-in scaled, norms around 1), the EMA copy a perturbation of it."""
    g = torch.Generator().manual_seed(seed + 1)
    for name, p in model.named_parameters():
        if name.startswith("cond_stage_model") or name == "logvar":
            continue
        if p.ndim == 1:
            base = 1.0 if name.endswith("weight") else 0.0
            p.copy_(base + 0.1 * torch.randn(p.shape, generator=g))
        else:
            p.copy_(torch.randn(p.shape, generator=g) / p[0].numel() ** 0.5)  # fan-in scaled
    if getattr(model, "use_ema", False):
        shadow = dict(model.model_ema.named_buffers())
        for name, p in model.model.named_parameters():
            key = model.model_ema.m_name2s_name[name]
            shadow[key].copy_(p + 0.05 * p.abs().mean() * torch.randn(p.shape, generator=g))


def tiny_clap_text_tensors(config_kwargs: dict, seed: int = 0) -> dict:
    """A random CLAP text tower under AudioLDM's checkpoint names (cond_stage_model.model.*)."""
    from transformers import ClapTextConfig, ClapTextModelWithProjection

    torch.manual_seed(seed)
    text = ClapTextModelWithProjection(ClapTextConfig(**config_kwargs))
    out = {}
    for key, value in text.state_dict().items():
        if key.startswith("text_model."):
            out["cond_stage_model.model.text_branch." + key[len("text_model."):]] = value.clone()
        elif key.startswith("text_projection.linear1."):
            out["cond_stage_model.model.text_projection.0." + key[len("text_projection.linear1."):]] = value.clone()
        elif key.startswith("text_projection.linear2."):
            out["cond_stage_model.model.text_projection.2." + key[len("text_projection.linear2."):]] = value.clone()
    return out


TINY_TEXT = {"vocab_size": 512, "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2,
             "intermediate_size": 64, "max_position_embeddings": 80, "type_vocab_size": 1, "projection_dim": 32,
             "projection_hidden_act": "relu", "layer_norm_eps": 1e-5}


def save_checkpoint(model, path, text: dict | None = None, extra: dict | None = None) -> None:
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    state.update(tiny_clap_text_tensors(text or TINY_TEXT))
    torch.save({"state_dict": state, "global_step": 1, **copy.deepcopy(extra or {})}, path)


def cpu_ddim_sampler(model):
    """audioldm 0.1.1's DDIMSampler moves every schedule tensor to CUDA in ``register_buffer``; on
    CPU it keeps them where they are (no change to the maths)."""
    from audioldm.latent_diffusion import ddim

    class CpuDDIMSampler(ddim.DDIMSampler):
        def register_buffer(self, name, attr):
            setattr(self, name, attr)

    return CpuDDIMSampler(model)
