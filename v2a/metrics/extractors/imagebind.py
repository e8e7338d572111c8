"""ImageBind (Girdhar et al., CVPR 2023) vision and audio towers: av-benchmark's IB-score.

Architecture: `imagebind_huge` of the PyPI package imagebind-unofficial 0.1.1 (Meta's
facebookresearch/ImageBind code, `imagebind/models/imagebind_model.py`, `transformer.py`,
`multimodal_preprocessors.py`, `helpers.py`), rewritten here for the two modalities IB needs:

- vision: clips of 2 frames (3 x 2 x 224 x 224) -> Conv3d (2, 14, 14) patches without bias, a class
  token, learned positional embedding, pre-transformer LayerNorm, 32 blocks of 1280-d / 16 heads,
  LayerNorm + class token + Linear(1280, 1024) without bias, L2 normalisation.
- audio: (1, 128 mel, 204 frame) log-fbanks -> Conv2d 16 x 16 stride 10 without bias + LayerNorm,
  a class token, learned positional embedding, 12 blocks of 768-d / 12 heads with bias_k/bias_v,
  LayerNorm + class token + Linear(768, 1024) without bias, L2 normalisation and ImageBind's fixed
  logit scale 20 (a constant factor; it cancels in the cosine).
- several clips of one item (B, S, ...) are embedded one by one and their (normalised) embeddings
  averaged, as `ImageBindModel.forward` does.

Inputs as av-benchmark builds them (hkchengrex/av-benchmark):
- audio (`av_bench/data/audio_dataset.py`, `ImageBindAudioDataset`, "from ImageBind"): the *whole*
  generated file (no `audio_length` cut), every channel resampled to 16 kHz, 3 clips of 2 s placed by
  pytorchvideo's `ConstantClipsPerVideoSampler` (starts k x (duration - 2) / 3: 0, 2, 4 s for 8 s), each
  mean-removed, 128-bin Kaldi fbank of channel 0 (25 ms Hanning, 10 ms shift, htk, no dither), padded
  or cut to 204 frames, then `Normalize(mean=-4.268, std=9.138)`.
  The reference's quirk, reproduced: `waveform2melspec` removes the mean *in place*
  (`waveform -= waveform.mean()`) on a slice that is a view of the one resampled tensor, and the mean
  is over all channels. Where clips overlap (files shorter than 6 s: the step (duration - 2) / 3 is
  under 2 s), a later clip therefore sees the earlier clips' means already subtracted from the shared
  samples. ImageBind's own `imagebind/data.py` does the same.
- video (`av_bench/data/video_dataset.py`, `extract_video.py`): frames as FFmpeg's `fps=0.5` filter
  picks them (`v2a.media.fps_filter`: at 10 fps the frames at 0.9, 2.9, 4.9, 6.9 s), the first
  int(0.5 x clip length) of them (8 s -> 4), resized so the short side is 224 (bicubic), CLIP mean/std,
  three 224 x 224 crops along the long side (start, centre, end), and consecutive frame pairs as
  2-frame clips: 3 crops x (frames - 1) clips.
IB = 100 x mean over clips of cosine(vision embedding, audio embedding) (`av_bench/evaluate.py`;
MMAudio's table reports it x 100).

Module names follow `imagebind_huge.pth`, so its vision and audio tensors load with a strict match
(the text, depth, thermal and IMU tensors of that file are left out).
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from v2a.metrics.extractors._common import (Extractor, ExtractorConfigError, build_seeded, checkpoint_path,
                                            load_checkpoint, load_weights, model_id, resolve_section)

NAME = "imagebind-huge"
OFFICIAL_FILE = "imagebind_huge.pth"
OFFICIAL_SOURCE = "https://dl.fbaipublicfiles.com/imagebind/imagebind_huge.pth (ImageBind, Girdhar et al.)"

DEFAULTS = {
    "out_embed_dim": 1024,
    "vision_embed_dim": 1280,
    "vision_blocks": 32,
    "vision_heads": 16,
    "image_size": 224,
    "patch_size": 14,
    "audio_embed_dim": 768,
    "audio_blocks": 12,
    "audio_heads": 12,
    "audio_mel_bins": 128,
    "audio_frames": 204,
    "audio_patch": 16,
    "audio_stride": 10,
    # Input rules (av-benchmark's, not architecture).
    "sample_rate": 16000,
    "audio_clip_seconds": 2.0,
    "audio_clips": 3,
    "video_fps": 0.5,
}
ARCH_KEYS = ("out_embed_dim", "vision_embed_dim", "vision_blocks", "vision_heads", "image_size", "patch_size",
             "audio_embed_dim", "audio_blocks", "audio_heads", "audio_mel_bins", "audio_frames", "audio_patch",
             "audio_stride")
AUDIO_MEAN, AUDIO_STD = -4.268, 9.138
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


class Mlp(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, 4 * dim)
        self.fc2 = nn.Linear(4 * dim, dim)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x)))


class Block(nn.Module):
    def __init__(self, dim: int, heads: int, bias_kv: bool):
        super().__init__()
        self.attn = nn.MultiheadAttention(dim, heads, bias=True, add_bias_kv=bias_kv)
        self.norm_1 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim)
        self.norm_2 = nn.LayerNorm(dim, eps=1e-6)

    def forward(self, x):  # (L, B, D), as nn.MultiheadAttention's default layout and ImageBind's trunk
        h = self.norm_1(x)
        x = x + self.attn(h, h, h, need_weights=False)[0]
        return x + self.mlp(self.norm_2(x))


class Trunk(nn.Module):
    def __init__(self, dim: int, blocks: int, heads: int, pre_ln: bool, bias_kv: bool):
        super().__init__()
        # Index 0 as in ImageBind's Sequential(LayerNorm | Identity, rearrange).
        self.pre_transformer_layer = nn.Sequential(nn.LayerNorm(dim, eps=1e-6) if pre_ln else nn.Identity())
        self.blocks = nn.Sequential(*[Block(dim, heads, bias_kv) for _ in range(blocks)])

    def forward(self, tokens):  # (B, L, D)
        x = self.pre_transformer_layer(tokens).transpose(0, 1)
        for block in self.blocks:
            x = block(x)
        return x.transpose(0, 1)


class Stem(nn.Module):
    def __init__(self, proj: nn.Module, norm: nn.Module | None):
        super().__init__()
        self.proj = proj
        if norm is not None:
            self.norm_layer = norm

    def forward(self, x):
        x = self.proj(x).flatten(2).transpose(1, 2)
        return self.norm_layer(x) if hasattr(self, "norm_layer") else x


class PosEmbed(nn.Module):
    def __init__(self, tokens: int, dim: int):
        super().__init__()
        self.pos_embed = nn.Parameter(torch.zeros(1, tokens, dim))


class Preprocessor(nn.Module):
    def __init__(self, stem: Stem, num_patches: int, dim: int):
        super().__init__()
        self.rgbt_stem = stem
        self.pos_embedding_helper = PosEmbed(num_patches + 1, dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))

    def forward(self, x):
        tokens = self.rgbt_stem(x)
        tokens = torch.cat((self.cls_token.expand(tokens.shape[0], -1, -1), tokens), dim=1)
        return tokens + self.pos_embedding_helper.pos_embed


class _Select0(nn.Module):
    def forward(self, x):
        return x[:, 0]


class LogitScale(nn.Module):
    def __init__(self, init: float):
        super().__init__()
        self.register_buffer("log_logit_scale", torch.tensor(math.log(init)))

    def forward(self, x):
        return x * self.log_logit_scale.exp()


class _Normalize(nn.Module):
    def forward(self, x):
        return F.normalize(x, dim=-1, p=2)


class ImageBindVA(nn.Module):
    """ImageBind's vision and audio towers under the checkpoint's module names."""

    def __init__(self, out_embed_dim=1024, vision_embed_dim=1280, vision_blocks=32, vision_heads=16, image_size=224,
                 patch_size=14, audio_embed_dim=768, audio_blocks=12, audio_heads=12, audio_mel_bins=128,
                 audio_frames=204, audio_patch=16, audio_stride=10):
        super().__init__()
        vdim, adim = vision_embed_dim, audio_embed_dim
        vision_stem = Stem(nn.Sequential(nn.Identity(),  # ImageBind's PadIm2Video sits at index 0
                                         nn.Conv3d(3, vdim, kernel_size=(2, patch_size, patch_size),
                                                   stride=(2, patch_size, patch_size), bias=False)), None)
        audio_stem = Stem(nn.Conv2d(1, adim, kernel_size=audio_patch, stride=audio_stride, bias=False),
                          nn.LayerNorm(adim))
        n_vision = (image_size // patch_size) ** 2
        n_audio = ((audio_mel_bins - audio_patch) // audio_stride + 1) * ((audio_frames - audio_patch) // audio_stride + 1)
        self.modality_preprocessors = nn.ModuleDict({"vision": Preprocessor(vision_stem, n_vision, vdim),
                                                     "audio": Preprocessor(audio_stem, n_audio, adim)})
        self.modality_trunks = nn.ModuleDict({"vision": Trunk(vdim, vision_blocks, vision_heads, True, False),
                                              "audio": Trunk(adim, audio_blocks, audio_heads, False, True)})
        self.modality_heads = nn.ModuleDict({
            "vision": nn.Sequential(nn.LayerNorm(vdim, eps=1e-6), _Select0(), nn.Linear(vdim, out_embed_dim, bias=False)),
            "audio": nn.Sequential(nn.LayerNorm(adim, eps=1e-6), _Select0(), nn.Linear(adim, out_embed_dim, bias=False)),
        })
        self.modality_postprocessors = nn.ModuleDict({"vision": _Normalize(),
                                                      "audio": nn.Sequential(_Normalize(), LogitScale(20.0))})

    def _tower(self, name: str, x: torch.Tensor) -> torch.Tensor:
        b, s = x.shape[:2]
        x = x.reshape(b * s, *x.shape[2:])
        x = self.modality_trunks[name](self.modality_preprocessors[name](x))
        x = self.modality_postprocessors[name](self.modality_heads[name](x))
        return x.reshape(b, s, -1).mean(dim=1)

    def vision(self, clips: torch.Tensor) -> torch.Tensor:
        """(B, S, 3, 2, H, W) 2-frame clips -> (B, out_embed_dim), the mean of the clips' unit embeddings."""
        return self._tower("vision", clips)

    def audio(self, fbanks: torch.Tensor) -> torch.Tensor:
        """(B, S, 1, mels, frames) normalised fbanks -> (B, out_embed_dim) (each clip's unit vector x 20, averaged)."""
        return self._tower("audio", fbanks)


def init_imagebind_random_(model: ImageBindVA) -> ImageBindVA:
    """ImageBind's own init: Xavier-uniform linears (its trunks' 'jax' style), OpenCLIP-style tokens."""
    for m in model.modules():
        if isinstance(m, nn.Linear):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    for name, p in model.named_parameters():
        if name.endswith(("cls_token", "pos_embed")):
            nn.init.normal_(p, std=p.shape[-1] ** -0.5)
        elif name.endswith(("bias_k", "bias_v")):
            nn.init.xavier_normal_(p)
    return model


# ---- inputs, as av-benchmark builds them ---------------------------------------------------------

def clip_starts(duration: float, clip_seconds: float, clips: int) -> list[tuple[Fraction, Fraction]]:
    """pytorchvideo 0.1.5's ConstantClipsPerVideoSampler as ImageBind's `get_clip_timepoints` walks it.

    Its step is (duration - clip) / clips, not / (clips - 1): 8 s gives starts 0, 2, 4 and the last
    2 s are never heard."""
    max_start = Fraction(max(duration - clip_seconds, 0))
    step = Fraction(max_start, clips)
    out, index = [], 0
    while True:
        start = step * index
        out.append((start, start + Fraction(clip_seconds)))
        index += 1
        if index >= clips or step * index > max_start:
            return out


def audio_fbanks(wave: np.ndarray, sample_rate: int = 16000, clip_seconds: float = 2.0, clips: int = 3,
                 mel_bins: int = 128, frames: int = 204) -> torch.Tensor:
    """(clips, 1, mel_bins, frames): ImageBind's `load_and_transform_audio_data` on a 16-kHz waveform, mono
    (N,) or (channels, N) as the file holds it (the mean over all channels is removed, channel 0 is heard)."""
    import torchaudio

    arr = np.asarray(wave, dtype=np.float32)
    w = torch.tensor(arr.reshape(1, -1) if arr.ndim == 1 else arr)  # a copy: the loop below writes into it
    out = []
    for start, end in clip_starts(w.shape[1] / sample_rate, clip_seconds, clips):
        piece = w[:, int(start * sample_rate):int(end * sample_rate)]
        # In place on a view of `w`, as the reference does: overlapping clips see each other's removals.
        piece -= piece.mean()
        fbank = torchaudio.compliance.kaldi.fbank(piece, htk_compat=True, sample_frequency=sample_rate,
                                                  use_energy=False, window_type="hanning", num_mel_bins=mel_bins,
                                                  dither=0.0, frame_length=25, frame_shift=10).transpose(0, 1)
        gap = frames - fbank.shape[1]
        fbank = F.pad(fbank, (0, gap)) if gap > 0 else fbank[:, :frames]
        out.append(((fbank - AUDIO_MEAN) / AUDIO_STD).unsqueeze(0))
    return torch.stack(out)


def _resize_short_side(frames: torch.Tensor, size: int) -> torch.Tensor:
    from torchvision.transforms import v2

    return v2.Resize(size, interpolation=v2.InterpolationMode.BICUBIC)(frames)


def vision_clips(frames: np.ndarray, image_size: int = 224) -> torch.Tensor:
    """(3 x (T - 1), 3, 2, S, S) from (T, H, W, 3) uint8 frames sampled at 0.5 fps (av-benchmark's IB video path).

    A single frame is used as a 2-frame clip of itself (ImageBind's PadIm2Video 'repeat')."""
    x = torch.as_tensor(np.asarray(frames)).permute(0, 3, 1, 2)  # (T, 3, H, W) uint8
    x = _resize_short_side(x, image_size).float() / 255.0
    x = (x - torch.tensor(CLIP_MEAN).view(1, 3, 1, 1)) / torch.tensor(CLIP_STD).view(1, 3, 1, 1)
    if x.shape[0] == 1:
        x = x.repeat(2, 1, 1, 1)
    h, w = x.shape[-2:]
    crops = []
    for idx in range(3):  # av-benchmark's SpatialCrop(224, 3): start, centre, end of the long side
        y0, x0 = math.ceil((h - image_size) / 2), math.ceil((w - image_size) / 2)
        if h > w:
            y0 = 0 if idx == 0 else (h - image_size if idx == 2 else y0)
        else:
            x0 = 0 if idx == 0 else (w - image_size if idx == 2 else x0)
        crops.append(x[:, :, y0:y0 + image_size, x0:x0 + image_size])
    crops = torch.stack(crops)  # (3, T, C, S, S)
    pairs = torch.cat([crops[:, i:i + 2] for i in range(crops.shape[1] - 1)], dim=0)  # (3 (T-1), 2, C, S, S)
    return pairs.permute(0, 2, 1, 3, 4).contiguous()


class ImageBindExtractor(Extractor):
    """`embed(waveforms)` -> (N, 1024) audio embeddings; `embed_frames(frames)` -> (N, 1024) video embeddings."""

    name = NAME

    def __init__(self, model: ImageBindVA, model_id_: str, cfg: dict, device: str = "cpu", batch_size: int = 8):
        self.sample_rate = int(cfg["sample_rate"])
        self.cfg = cfg
        super().__init__(model, model_id_, device, batch_size)

    @torch.inference_mode()
    def embed(self, waveforms, sample_rate: int | None = None) -> np.ndarray:
        c = self.cfg
        inputs = [audio_fbanks(w, self.sample_rate, c["audio_clip_seconds"], c["audio_clips"], c["audio_mel_bins"],
                               c["audio_frames"]) for w in self._inputs(waveforms, sample_rate)]
        out = [self.model.audio(torch.stack(inputs[i:i + self.batch_size]).to(self.device)).float().cpu().numpy()
               for i in range(0, len(inputs), self.batch_size)]
        return np.concatenate(out) if out else np.zeros((0, c["out_embed_dim"]), np.float32)

    @torch.inference_mode()
    def embed_channels(self, items) -> np.ndarray:
        """Audio embeddings of whole files as they are stored: each item (wave, rate), wave (N,) or
        (channels, N); every channel is resampled to 16 kHz first, as av-benchmark's ImageBind loader does."""
        from v2a.metrics.audio import resample

        c = self.cfg
        inputs = [audio_fbanks(resample(np.asarray(w, np.float32), int(sr), self.sample_rate), self.sample_rate,
                               c["audio_clip_seconds"], c["audio_clips"], c["audio_mel_bins"], c["audio_frames"])
                  for w, sr in items]
        out = [self.model.audio(torch.stack(inputs[i:i + self.batch_size]).to(self.device)).float().cpu().numpy()
               for i in range(0, len(inputs), self.batch_size)]
        return np.concatenate(out) if out else np.zeros((0, c["out_embed_dim"]), np.float32)

    @torch.inference_mode()
    def embed_frames(self, videos) -> np.ndarray:
        """One embedding per item of `videos`, each (T, H, W, 3) uint8 frames at `video_fps`."""
        out = [self.model.vision(vision_clips(v, self.cfg["image_size"]).unsqueeze(0).to(self.device)).float().cpu().numpy()
               for v in videos]
        return np.concatenate(out) if out else np.zeros((0, self.cfg["out_embed_dim"]), np.float32)


def ib_score(video_embeddings: np.ndarray, audio_embeddings: np.ndarray) -> float:
    """100 x mean cosine of paired rows (av-benchmark's `torch.cosine_similarity(...).mean()`, x 100)."""
    v = torch.as_tensor(np.asarray(video_embeddings, dtype=np.float64))
    a = torch.as_tensor(np.asarray(audio_embeddings, dtype=np.float64))
    return 100.0 * float(torch.cosine_similarity(v, a, dim=-1).mean())


def ib_scores(video_embeddings: np.ndarray, audio_embeddings: np.ndarray) -> np.ndarray:
    """100 x the cosine of each pair, the values `ib_score` averages (its bootstrap interval resamples them)."""
    v = torch.as_tensor(np.asarray(video_embeddings, dtype=np.float64))
    a = torch.as_tensor(np.asarray(audio_embeddings, dtype=np.float64))
    return 100.0 * torch.cosine_similarity(v, a, dim=-1).numpy()


def load_imagebind_state(path, key: str) -> dict:
    """The vision and audio tensors of an ImageBind checkpoint (the full model holds six modalities)."""
    state = load_checkpoint(path, key)
    keep = (".vision.", ".audio.")
    return {k: v for k, v in state.items() if k.startswith("modality_") and any(m in k for m in keep)}


def build(section: dict | None, device: str = "cpu", key: str = "imagebind") -> ImageBindExtractor:
    cfg = resolve_section(key, section, DEFAULTS)
    for field in ARCH_KEYS + ("sample_rate", "audio_clips"):
        if not isinstance(cfg[field], int) or cfg[field] <= 0:
            raise ExtractorConfigError(f"extractors.{key}.{field} = {cfg[field]!r}; must be a positive integer")
    for dim, heads in (("vision_embed_dim", "vision_heads"), ("audio_embed_dim", "audio_heads")):
        if cfg[dim] % cfg[heads]:
            raise ExtractorConfigError(f"extractors.{key}: {dim} {cfg[dim]} is not divisible by {heads} {cfg[heads]}")
    ckpt = checkpoint_path(key, cfg, OFFICIAL_FILE, OFFICIAL_SOURCE)
    arch = {k: cfg[k] for k in ARCH_KEYS}
    if ckpt is None:
        model = build_seeded(lambda: ImageBindVA(**arch), cfg["seed"], init=init_imagebind_random_)
    else:
        model = ImageBindVA(**arch)
        load_weights(model, load_imagebind_state(ckpt, key), key, ckpt)
    return ImageBindExtractor(model, model_id(NAME, cfg, ARCH_KEYS, ckpt), cfg, device, cfg["batch_size"])
