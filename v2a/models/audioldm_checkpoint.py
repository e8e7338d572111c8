"""AudioLDM's original checkpoints (``.ckpt``) as the generator's diffusers / transformers components.

An original AudioLDM checkpoint (github.com/haoheliu/AudioLDM; the Zenodo files that its
``audioldm/utils.py`` ``get_metadata`` lists) is a PyTorch-Lightning state dict of AudioLDM's
``LatentDiffusion``:

    model.diffusion_model.*      the UNet (``audioldm/latent_diffusion/openaimodel.py`` UNetModel)
    model_ema.*                  its exponential moving average (``latent_diffusion/ema.py`` LitEma:
                                 one buffer per UNet parameter, named with the dots removed)
    first_stage_model.*          the mel VAE (``variational_autoencoder``), with
    first_stage_model.vocoder.*  the HiFi-GAN (``hifigan/models.py``, weight norm removed)
    cond_stage_model.model.*     the CLAP (text branch: RoBERTa + projection)
    scale_factor, betas, ...     the latent scale and the training noise schedule

This module reads such a file without unpickling code (``read_checkpoint``), works out AudioLDM's
architecture from the tensor shapes (``infer_architecture``), and renames the tensors into
``UNet2DConditionModel``, ``AutoencoderKL``, ``SpeechT5HifiGan`` and ``ClapTextModelWithProjection``
(``convert_*``), the layout diffusers' ``scripts/convert_original_audioldm_to_diffusers.py`` also
targets. Two things differ from that script, and both follow AudioLDM itself:

- **attention heads.** AudioLDM's UNet has ``num_head_channels`` channels per head (32 for -s and -m,
  64 for -l: ``default_audioldm_config``), so its blocks have 4/8/12/20 heads (-s). diffusers'
  script never sets ``attention_head_dim`` and its folders get 8 heads in every block.
- **EMA weights.** AudioLDM samples inside ``ema_scope`` (``ldm.py`` ``generate_sample``), i.e. with
  the ``model_ema.*`` copy of the UNet; diffusers' script takes the non-EMA weights unless told
  ``--extract_ema``. Where a checkpoint holds EMA weights, they are used here.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .safe_load import load_weights_only

log = logging.getLogger(__name__)

UNET_PREFIX = "model.diffusion_model."
EMA_PREFIX = "model_ema."
VAE_PREFIX = "first_stage_model."
VOCODER_PREFIX = "first_stage_model.vocoder."
CLAP_PREFIX = "cond_stage_model.model."

# AudioLDM's channels per attention head by UNet width: default_audioldm_config gives -s (model_channels
# 128) and -m (192) num_head_channels 32, and -l (256) 64. Other widths are not a released AudioLDM and
# must say their heads (generator.unet.attention_head_dim).
HEAD_CHANNELS_BY_WIDTH = {128: 32, 192: 32, 256: 64}
# AudioLDM's HiFi-GAN (audioldm/hifigan/utilities.py HIFIGAN_16K_64): what tensor shapes cannot tell.
HIFIGAN_16K_64 = {"upsample_rates": [5, 4, 2, 2, 2], "resblock_dilation_sizes": [[1, 3, 5], [1, 3, 5], [1, 3, 5]],
                  "sampling_rate": 16000}
# AudioLDM's training schedule (default_audioldm_config: linear_start/linear_end, LDM's "linear" = the
# square of a linspace of square roots, which diffusers calls scaled_linear).
AUDIOLDM_SCHEDULE = {"num_train_timesteps": 1000, "beta_start": 0.0015, "beta_end": 0.0195,
                     "beta_schedule": "scaled_linear", "clip_sample": False, "set_alpha_to_one": False,
                     "steps_offset": 1, "prediction_type": "epsilon"}
# RoBERTa-base (AudioLDM's CLAP text branch): 64 channels per head, LayerNorm eps 1e-5.
ROBERTA_HEAD_CHANNELS = 64
ROBERTA_LAYER_NORM_EPS = 1e-5


# --------------------------------------------------------------------------- reading

@dataclass
class CheckpointFile:
    """A checkpoint's tensors and how they were read."""

    state_dict: dict
    path: Path
    stand_ins: list[str] = field(default_factory=list)  # globals read as inert placeholders


def read_checkpoint(path: str | Path) -> CheckpointFile:
    """The tensors of a checkpoint, read without running code from the file.

    ``.safetensors`` through safetensors; anything else through ``torch.load(weights_only=True)``,
    with whatever else the file pickles (Lightning's hyper-parameters, callback and loop states) read
    as inert placeholders (``safe_load.load_weights_only``); only tensors are kept. Lightning's
    ``{"state_dict": ...}`` wrapper is unwrapped.
    """
    path = Path(path)
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return CheckpointFile(dict(load_file(str(path), device="cpu")), path)
    obj, stand_ins = load_weights_only(path)
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict):
        raise RuntimeError(f"{path}: expected a state dict, found {type(obj).__name__}")
    tensors = {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    if not tensors:
        raise RuntimeError(f"{path}: holds no tensors")
    return CheckpointFile(tensors, path, stand_ins)


def is_audioldm_checkpoint(state_dict: dict) -> bool:
    return any(k.startswith(UNET_PREFIX) for k in state_dict) and any(k.startswith(VAE_PREFIX) for k in state_dict)


# --------------------------------------------------------------------------- EMA

def ema_key(unet_key: str) -> str:
    """LitEma's buffer name for a parameter of ``model`` (the DiffusionWrapper): the dots removed."""
    return EMA_PREFIX + unet_key[len("model."):].replace(".", "")


def unet_state_dict(state_dict: dict, use_ema: bool = True) -> tuple[dict, bool]:
    """The UNet's tensors without the ``model.diffusion_model.`` prefix, from the EMA copy where the
    checkpoint has one for every UNet tensor (AudioLDM samples with it). Returns (tensors, ema_used)."""
    keys = [k for k in state_dict if k.startswith(UNET_PREFIX)]
    if not keys:
        raise KeyError(f"no `{UNET_PREFIX}*` tensors: not an AudioLDM LatentDiffusion checkpoint")
    have_ema = use_ema and all(ema_key(k) in state_dict for k in keys)
    if use_ema and not have_ema and any(k.startswith(EMA_PREFIX) for k in state_dict):
        missing = [k for k in keys if ema_key(k) not in state_dict]
        log.warning("checkpoint has model_ema.* but not for %d UNet tensors (e.g. %s): using the non-EMA weights",
                    len(missing), missing[0])
    out = {k[len(UNET_PREFIX):]: state_dict[ema_key(k) if have_ema else k] for k in keys}
    return out, have_ema


# --------------------------------------------------------------------------- architecture

def _sub(state_dict: dict, prefix: str) -> dict:
    return {k[len(prefix):]: v for k, v in state_dict.items() if k.startswith(prefix)}


def _indices(keys, pattern: str) -> list[int]:
    rx = re.compile(pattern)
    return sorted({int(m.group(1)) for k in keys if (m := rx.match(k))})


@dataclass
class UNetLayout:
    """AudioLDM's UNetModel hyper-parameters, read from a state dict's shapes."""

    in_channels: int
    out_channels: int
    model_channels: int
    channel_mult: list[int]
    num_res_blocks: int
    attention_levels: list[bool]       # per level: SpatialTransformer after each ResBlock
    film_dim: int                      # extra_film_condition_dim (the CLAP embedding)
    film_concat: bool                  # extra_film_use_concat
    transformer_depth: int

    @property
    def block_out_channels(self) -> list[int]:
        return [self.model_channels * m for m in self.channel_mult]

    def heads(self, head_channels: int) -> list[int]:
        """Heads per level, AudioLDM's rule: a level's channels // num_head_channels."""
        return [max(1, ch // head_channels) for ch in self.block_out_channels]


def unet_layout(unet: dict) -> UNetLayout:
    conv_in = unet["input_blocks.0.0.weight"]
    mc, in_ch = int(conv_in.shape[0]), int(conv_in.shape[1])
    blocks = _indices(unet, r"input_blocks\.(\d+)\.")
    levels: list[list[int]] = [[]]
    for i in blocks[1:]:
        if f"input_blocks.{i}.0.op.weight" in unet:  # a Downsample closes a level
            levels.append([])
        else:
            levels[-1].append(i)
    nrb = len(levels[0])
    if nrb == 0 or any(len(lv) != nrb for lv in levels):
        raise ValueError(f"UNet input blocks do not form levels of equal length: {levels}")
    mult, attn = [], []
    for lv in levels:
        ch = int(unet[f"input_blocks.{lv[0]}.0.out_layers.3.weight"].shape[0])
        if ch % mc:
            raise ValueError(f"UNet level width {ch} is not a multiple of model_channels {mc}")
        mult.append(ch // mc)
        attn.append(f"input_blocks.{lv[0]}.1.proj_in.weight" in unet)
    time_dim = int(unet["time_embed.0.weight"].shape[0])
    emb_in = int(unet[f"input_blocks.{levels[0][0]}.0.emb_layers.1.weight"].shape[1])
    film = unet.get("film_emb.weight")
    if film is None:
        raise ValueError("UNet has no film_emb: not a CLAP-conditioned (FiLM) AudioLDM")
    depth = len(_indices(unet, r"middle_block\.1\.transformer_blocks\.(\d+)\."))
    return UNetLayout(in_channels=in_ch, out_channels=int(unet["out.2.weight"].shape[0]), model_channels=mc,
                      channel_mult=mult, num_res_blocks=nrb, attention_levels=attn, film_dim=int(film.shape[1]),
                      film_concat=emb_in == 2 * time_dim, transformer_depth=max(depth, 1))


def head_channels_for(layout: UNetLayout) -> int:
    if layout.model_channels not in HEAD_CHANNELS_BY_WIDTH:
        raise ValueError(
            f"UNet model_channels {layout.model_channels} is none of AudioLDM's released widths "
            f"{sorted(HEAD_CHANNELS_BY_WIDTH)}: set generator.unet.attention_head_dim (heads per block)")
    return HEAD_CHANNELS_BY_WIDTH[layout.model_channels]


def unet_config(layout: UNetLayout, heads: list[int] | None = None) -> dict:
    """``UNet2DConditionModel`` kwargs for AudioLDM's UNet. ``heads``: per block (diffusers' legacy
    ``attention_head_dim``); None: AudioLDM's own (``HEAD_CHANNELS_BY_WIDTH``)."""
    if heads is None:
        heads = layout.heads(head_channels_for(layout))
    chans = layout.block_out_channels
    if len(heads) != len(chans) or any(c % h for c, h in zip(chans, heads)):
        raise ValueError(f"attention heads {heads} do not divide the block widths {chans}")
    if not layout.film_concat:
        raise ValueError("UNet adds its FiLM embedding to the time embedding (extra_film_use_concat false); "
                         "the generator supports AudioLDM's concatenation only")
    return {
        "in_channels": layout.in_channels,
        "out_channels": layout.out_channels,
        "down_block_types": ["CrossAttnDownBlock2D" if a else "DownBlock2D" for a in layout.attention_levels],
        "up_block_types": ["CrossAttnUpBlock2D" if a else "UpBlock2D" for a in layout.attention_levels[::-1]],
        "block_out_channels": chans,
        "layers_per_block": layout.num_res_blocks,
        "transformer_layers_per_block": layout.transformer_depth,
        "cross_attention_dim": chans,  # no context: attn2 attends to the block itself (no_context in AudioLDM)
        "attention_head_dim": list(heads),
        "norm_num_groups": 32,  # LDM's normalization(): GroupNorm32(32, ch)
        "class_embed_type": "simple_projection",
        "projection_class_embeddings_input_dim": layout.film_dim,
        "class_embeddings_concat": True,
    }


def vae_config(vae: dict, scale_factor: float) -> dict:
    """``AutoencoderKL`` kwargs for AudioLDM's mel VAE (LDM Encoder/Decoder, ``ddconfig``)."""
    levels = _indices(vae, r"encoder\.down\.(\d+)\.")
    nrb = len(_indices(vae, r"encoder\.down\.0\.block\.(\d+)\."))
    widths = [int(vae[f"encoder.down.{i}.block.0.conv1.weight"].shape[0]) for i in levels]
    z = int(vae["decoder.conv_in.weight"].shape[1])
    embed = int(vae["post_quant_conv.weight"].shape[1])
    if embed != z:
        raise ValueError(f"VAE embed_dim {embed} != z_channels {z}: diffusers' AutoencoderKL has one latent width")
    return {
        "in_channels": int(vae["encoder.conv_in.weight"].shape[1]),
        "out_channels": int(vae["decoder.conv_out.weight"].shape[0]),
        "down_block_types": ["DownEncoderBlock2D"] * len(widths),
        "up_block_types": ["UpDecoderBlock2D"] * len(widths),
        "block_out_channels": widths,
        "layers_per_block": nrb,
        "latent_channels": z,
        "norm_num_groups": 32,
        "scaling_factor": float(scale_factor),
    }


def vocoder_config(voc: dict, overrides: dict | None = None) -> dict:
    """``SpeechT5HifiGanConfig`` kwargs for AudioLDM's HiFi-GAN; strides and dilations (which shapes
    cannot tell) are AudioLDM's ``HIFIGAN_16K_64`` unless ``overrides`` says otherwise."""
    conv_pre = voc["conv_pre.weight"]
    ups = _indices(voc, r"ups\.(\d+)\.")
    n_res = len(_indices(voc, r"resblocks\.(\d+)\.")) // max(len(ups), 1)
    cfg = dict(HIFIGAN_16K_64)
    cfg.update(model_in_dim=int(conv_pre.shape[1]), upsample_initial_channel=int(conv_pre.shape[0]),
               upsample_kernel_sizes=[int(voc[f"ups.{i}.weight"].shape[2]) for i in ups],
               resblock_kernel_sizes=[int(voc[f"resblocks.{j}.convs1.0.weight"].shape[2]) for j in range(n_res)],
               normalize_before=False)
    cfg.update({k: v for k, v in (overrides or {}).items() if k in ("upsample_rates", "resblock_dilation_sizes",
                                                                    "sampling_rate")})
    if len(cfg["upsample_rates"]) != len(ups):
        raise ValueError(f"vocoder has {len(ups)} upsampling layers but upsample_rates is {cfg['upsample_rates']}")
    cfg["resblock_dilation_sizes"] = cfg["resblock_dilation_sizes"][:n_res]
    return cfg


def text_encoder_config(text: dict, overrides: dict | None = None) -> dict:
    """``ClapTextConfig`` kwargs for the CLAP text branch (RoBERTa + 2-layer projection)."""
    words = text["text_model.embeddings.word_embeddings.weight"]
    hidden = int(words.shape[1])
    cfg = {
        "vocab_size": int(words.shape[0]),
        "hidden_size": hidden,
        "num_hidden_layers": len(_indices(text, r"text_model\.encoder\.layer\.(\d+)\.")),
        "num_attention_heads": max(1, hidden // ROBERTA_HEAD_CHANNELS),
        "intermediate_size": int(text["text_model.encoder.layer.0.intermediate.dense.weight"].shape[0]),
        "max_position_embeddings": int(text["text_model.embeddings.position_embeddings.weight"].shape[0]),
        "type_vocab_size": int(text["text_model.embeddings.token_type_embeddings.weight"].shape[0]),
        "projection_dim": int(text["text_projection.linear2.weight"].shape[0]),
        "projection_hidden_act": "relu",
        "layer_norm_eps": ROBERTA_LAYER_NORM_EPS,
    }
    cfg.update({k: v for k, v in (overrides or {}).items() if k in ("num_attention_heads", "layer_norm_eps")})
    return cfg


def scheduler_config(state_dict: dict, overrides: dict | None = None) -> dict:
    """AudioLDM's training schedule, checked against the ``betas`` the checkpoint carries."""
    cfg = dict(AUDIOLDM_SCHEDULE)
    cfg.update(overrides or {})
    betas = state_dict.get("betas")
    if betas is not None:
        from diffusers import DDIMScheduler

        ours = DDIMScheduler.from_config(cfg).betas.double()
        theirs = betas.double().flatten()
        if ours.shape != theirs.shape or float((ours - theirs).abs().max()) > 1e-6:
            raise ValueError(f"the checkpoint's noise schedule (betas {float(theirs[0]):.6g} .. {float(theirs[-1]):.6g}, "
                             f"{theirs.numel()} steps) is not the configured one: set generator.scheduler")
    return cfg


# --------------------------------------------------------------------------- renaming

_RESNET = (("in_layers.0.", "norm1."), ("in_layers.2.", "conv1."), ("emb_layers.1.", "time_emb_proj."),
           ("out_layers.0.", "norm2."), ("out_layers.3.", "conv2."), ("skip_connection.", "conv_shortcut."))


def _resnet(rest: str) -> str:
    for old, new in _RESNET:
        if rest.startswith(old):
            return new + rest[len(old):]
    raise KeyError(rest)


def convert_unet(unet: dict, layout: UNetLayout) -> dict:
    """AudioLDM UNetModel tensors → ``UNet2DConditionModel`` names (the SpatialTransformer's inner
    names are diffusers' already)."""
    per_level = layout.num_res_blocks + 1
    fixed = {"time_embed.0.": "time_embedding.linear_1.", "time_embed.2.": "time_embedding.linear_2.",
             "film_emb.": "class_embedding.", "input_blocks.0.0.": "conv_in.", "out.0.": "conv_norm_out.",
             "out.2.": "conv_out."}
    out = {}
    for key, value in unet.items():
        new = next((n + key[len(o):] for o, n in fixed.items() if key.startswith(o)), None)
        if new is None and (m := re.match(r"input_blocks\.(\d+)\.(\d+)\.(.*)", key)):
            i, k, rest = int(m.group(1)), int(m.group(2)), m.group(3)
            level, j = divmod(i - 1, per_level)
            if j == layout.num_res_blocks:
                new = f"down_blocks.{level}.downsamplers.0.conv.{rest[len('op.'):]}"
            elif k == 0:
                new = f"down_blocks.{level}.resnets.{j}.{_resnet(rest)}"
            else:
                new = f"down_blocks.{level}.attentions.{j}.{rest}"
        elif new is None and (m := re.match(r"middle_block\.(\d)\.(.*)", key)):
            k, rest = int(m.group(1)), m.group(2)
            new = (f"mid_block.attentions.0.{rest}" if k == 1 else f"mid_block.resnets.{k // 2}.{_resnet(rest)}")
        elif new is None and (m := re.match(r"output_blocks\.(\d+)\.(\d+)\.(.*)", key)):
            i, rest = int(m.group(1)), m.group(3)
            level, j = divmod(i, per_level)
            if rest.startswith(tuple(o for o, _ in _RESNET)):
                new = f"up_blocks.{level}.resnets.{j}.{_resnet(rest)}"
            elif rest.startswith("conv."):  # Upsample
                new = f"up_blocks.{level}.upsamplers.0.{rest}"
            else:
                new = f"up_blocks.{level}.attentions.{j}.{rest}"
        if new is None:
            raise KeyError(f"unexpected AudioLDM UNet tensor {key!r}")
        out[new] = value
    return out


_VAE_ATTN = {"norm.": "group_norm.", "q.": "to_q.", "k.": "to_k.", "v.": "to_v.", "proj_out.": "to_out.0."}


def convert_vae(vae: dict) -> dict:
    """LDM Encoder/Decoder tensors → ``AutoencoderKL`` names; the mid-block attention's 1×1 convs
    become linear layers."""
    n_up = len(_indices(vae, r"decoder\.up\.(\d+)\."))
    out = {}
    for key, value in vae.items():
        if key.startswith(("vocoder.", "loss.")):  # the HiFi-GAN is converted apart; a training loss is not needed
            continue
        m = re.match(r"(encoder|decoder)\.(.*)", key)
        if not m:
            if key.split(".")[0] in ("quant_conv", "post_quant_conv"):
                out[key] = value
                continue
            raise KeyError(f"unexpected AudioLDM VAE tensor {key!r}")
        part, rest = m.groups()
        if (r := re.match(r"(down|up)\.(\d+)\.block\.(\d+)\.(.*)", rest)):
            kind, i, j, tail = r.group(1), int(r.group(2)), r.group(3), r.group(4)
            i = i if kind == "down" else n_up - 1 - i  # LDM counts the decoder's levels from the bottom
            new = f"{kind}_blocks.{i}.resnets.{j}.{tail.replace('nin_shortcut.', 'conv_shortcut.')}"
        elif (r := re.match(r"(down|up)\.(\d+)\.(downsample|upsample)\.(.*)", rest)):
            kind, i, tail = r.group(1), int(r.group(2)), r.group(4)
            i = i if kind == "down" else n_up - 1 - i
            new = f"{kind}_blocks.{i}.{r.group(3)}rs.0.{tail}"
        elif (r := re.match(r"mid\.block_(\d)\.(.*)", rest)):
            new = f"mid_block.resnets.{int(r.group(1)) - 1}.{r.group(2).replace('nin_shortcut.', 'conv_shortcut.')}"
        elif (r := re.match(r"mid\.attn_1\.(.*)", rest)):
            tail = r.group(1)
            name = next(n + tail[len(o):] for o, n in _VAE_ATTN.items() if tail.startswith(o))
            new = f"mid_block.attentions.0.{name}"
            if value.ndim == 4:  # 1×1 conv → linear
                value = value[:, :, 0, 0]
        elif rest.startswith("norm_out."):
            new = "conv_norm_out." + rest[len("norm_out."):]
        else:
            new = rest  # conv_in, conv_out
        out[f"{part}.{new}"] = value
    return out


def _fold_weight_norm(sd: dict) -> dict:
    """A weight-normed HiFi-GAN (``weight_g``/``weight_v``) as plain weights: what AudioLDM's
    ``get_vocoder`` does with ``remove_weight_norm`` before its checkpoints were written."""
    out = {}
    for key, value in sd.items():
        if key.endswith(".weight_v"):
            base = key[: -len("_v")]
            g = sd[base + "_g"]
            norm = value.flatten(1).norm(dim=1).reshape(g.shape) if g.shape[0] == value.shape[0] else \
                value.transpose(0, 1).flatten(1).norm(dim=1).reshape(g.shape)
            out[base] = g * value / norm
        elif not key.endswith(".weight_g"):
            out[key] = value
    return out


def convert_vocoder(voc: dict, model_in_dim: int) -> dict:
    """AudioLDM's HiFi-GAN → ``SpeechT5HifiGan`` names (``ups`` → ``upsampler``); its unused
    ``mean``/``scale`` buffers (``normalize_before`` is false) at their initial values."""
    out = {}
    for key, value in _fold_weight_norm(voc).items():
        out["upsampler." + key[len("ups."):] if key.startswith("ups.") else key] = value
    out["mean"] = torch.zeros(model_in_dim)
    out["scale"] = torch.ones(model_in_dim)
    return out


def convert_text_encoder(clap: dict) -> dict:
    """The CLAP's text tower (``text_branch`` RoBERTa, ``text_projection`` 0/2) → the key layout of
    ``ClapTextModelWithProjection``, as diffusers' converter maps it."""
    out = {}
    for key, value in clap.items():
        if key.startswith("text_branch."):
            out["text_model." + key[len("text_branch."):]] = value
        elif key.startswith("text_projection.0."):
            out["text_projection.linear1." + key[len("text_projection.0."):]] = value
        elif key.startswith("text_projection.2."):
            out["text_projection.linear2." + key[len("text_projection.2."):]] = value
    return {k: v for k, v in out.items() if not k.endswith("position_ids")}


# --------------------------------------------------------------------------- building

@dataclass
class AudioLDMComponents:
    unet: torch.nn.Module
    vae: torch.nn.Module
    vocoder: torch.nn.Module
    text_encoder: torch.nn.Module
    scheduler_config: dict
    ema: bool                 # the UNet holds the checkpoint's EMA weights
    heads: list[int]          # attention heads per UNet block
    stand_ins: list[str]      # globals read as inert placeholders


def _load(module: torch.nn.Module, state: dict, what: str, path: Path, allow_missing=()) -> None:
    missing, unexpected = module.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.endswith(tuple(allow_missing))]
    if missing or unexpected:
        raise RuntimeError(f"{path}: the AudioLDM {what} does not fit its converted layout "
                           f"(missing {missing[:5]}{'...' if len(missing) > 5 else ''}, "
                           f"unexpected {unexpected[:5]}{'...' if len(unexpected) > 5 else ''})")


def load_audioldm_checkpoint(path: str | Path, dtype: torch.dtype = torch.float32, unet: dict | None = None,
                             vocoder: dict | None = None, text_encoder: dict | None = None,
                             scheduler: dict | None = None, use_ema: bool = True) -> AudioLDMComponents:
    """Build the generator's components from an original AudioLDM checkpoint.

    ``unet``, ``vocoder``, ``text_encoder``, ``scheduler``: the profile's sections, read only for what
    the tensors cannot tell (``unet.attention_head_dim``: heads per block; the vocoder's strides and
    dilations; the text encoder's heads; the schedule). Everything else comes from the file.
    """
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import ClapTextConfig, ClapTextModelWithProjection, SpeechT5HifiGan, SpeechT5HifiGanConfig

    ckpt = read_checkpoint(path)
    sd = ckpt.state_dict
    if not is_audioldm_checkpoint(sd):
        raise RuntimeError(f"{ckpt.path}: no `{UNET_PREFIX}*` and `{VAE_PREFIX}*` tensors: not an original AudioLDM "
                           "checkpoint (a diffusers AudioLDM folder is given as a directory)")
    unet_sd, ema = unet_state_dict(sd, use_ema)
    layout = unet_layout(unet_sd)
    heads = (unet or {}).get("attention_head_dim")
    if isinstance(heads, int):
        heads = [heads] * len(layout.channel_mult)
    ucfg = unet_config(layout, heads)
    scale = sd.get("scale_factor")
    vae_sd = _sub(sd, VAE_PREFIX)
    voc_sd = _sub(sd, VOCODER_PREFIX)
    text_sd = convert_text_encoder(_sub(sd, CLAP_PREFIX))
    if not voc_sd:
        raise RuntimeError(f"{ckpt.path}: no `{VOCODER_PREFIX}*` tensors (AudioLDM keeps its HiFi-GAN in the VAE)")
    if not text_sd:
        raise RuntimeError(f"{ckpt.path}: no `{CLAP_PREFIX}text_branch.*` tensors (the CLAP text tower that "
                           "gives guidance its unconditional embedding)")
    vcfg = vocoder_config(voc_sd, vocoder)
    tcfg = text_encoder_config(text_sd, text_encoder)
    with torch.device("meta"):  # no random init of ~0.7 G parameters that the checkpoint overwrites
        net = UNet2DConditionModel(**ucfg)
        vae = AutoencoderKL(**vae_config(vae_sd, float(scale) if scale is not None else 1.0))
        voc = SpeechT5HifiGan(SpeechT5HifiGanConfig(**vcfg))
        text = ClapTextModelWithProjection(ClapTextConfig(**tcfg))
    for module in (net, vae, voc, text):
        module.to_empty(device="cpu")
    _load(net, convert_unet(unet_sd, layout), "UNet", ckpt.path)
    _load(vae, convert_vae(vae_sd), "VAE", ckpt.path)
    _load(voc, convert_vocoder(voc_sd, vcfg["model_in_dim"]), "vocoder", ckpt.path)
    # buffers that are not in the file: RoBERTa's position ids and token type ids, rebuilt as at init
    _load(text, text_sd, "CLAP text tower", ckpt.path, allow_missing=("position_ids", "token_type_ids"))
    emb = text.text_model.embeddings
    for name in ("position_ids", "token_type_ids"):
        buf = getattr(emb, name, None)
        if buf is not None:
            n = buf.shape[-1]
            getattr(emb, name).copy_(torch.arange(n).expand(1, -1) if name == "position_ids"
                                     else torch.zeros(1, n, dtype=buf.dtype))
    if ema:
        log.info("%s: UNet from the EMA weights (model_ema.*), as AudioLDM samples", ckpt.path)
    if dtype != torch.float32:
        net, vae, voc, text = (m.to(dtype) for m in (net, vae, voc, text))
    return AudioLDMComponents(net, vae, voc, text,
                              scheduler_config(sd, scheduler), ema, list(ucfg["attention_head_dim"]), ckpt.stand_ins)


def audioldm_heads(block_out_channels: list[int]) -> list[int] | None:
    """AudioLDM's heads per block for a UNet of these widths (None: not a released AudioLDM width)."""
    head = HEAD_CHANNELS_BY_WIDTH.get(int(block_out_channels[0]))
    return None if head is None else [max(1, int(c) // head) for c in block_out_channels]


def unet_heads(config) -> list[int]:
    """Heads per block of a ``UNet2DConditionModel`` config (``num_attention_heads`` where set, else
    diffusers' legacy ``attention_head_dim``, which means heads)."""
    heads = config.get("num_attention_heads") or config.get("attention_head_dim")
    n = len(config["block_out_channels"])
    return [int(heads)] * n if isinstance(heads, int) else [int(h) for h in heads]


def heads_mismatch(config) -> str | None:
    """None when a UNet config has AudioLDM's heads per block (or is no released AudioLDM width);
    otherwise a sentence saying how it differs and what to do."""
    chans = list(config["block_out_channels"])
    expected = audioldm_heads(chans)
    if expected is None:
        return None
    have = unet_heads(config)
    attn = [i for i, t in enumerate(config.get("down_block_types", ())) if "CrossAttn" in t] or range(len(chans))
    if all(have[i] == expected[i] for i in attn):
        return None
    return (f"the generator's UNet has {[have[i] for i in attn]} attention heads in its attention blocks, AudioLDM has "
            f"{[expected[i] for i in attn]} ({HEAD_CHANNELS_BY_WIDTH[int(chans[0])]} channels per head, "
            "default_audioldm_config): its noise prediction is not AudioLDM's (8 heads everywhere, as diffusers' "
            "converter writes, measured 4.7 % relative L2 on AudioLDM-s). Use the original checkpoint "
            "(generator.weights: an audioldm-*-ckpt registry entry or a .ckpt) or set "
            f"generator.unet.attention_head_dim: {expected}")
