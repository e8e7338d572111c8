"""Synchformer (Iashin et al., ICASSP 2024): the audio-visual offset classifier behind av-benchmark's DeSync.

Architecture: the `Synchformer` of av-benchmark (github.com/hkchengrex/av-benchmark, `av_bench/synchformer/`:
`synchformer.py`, `motionformer.py`, `video_model_builder.py`, `vit_helper.py`, `ast.py`,
`hf_src/modeling_ast.py`, `transformer.py`), itself taken from github.com/v-iashin/Synchformer, rewritten here:

- video (`vfeat_extractor`, a MotionFormer with divided space-time attention): a 16-frame, 224 x 224 segment
  -> Conv3d (2, 16, 16) patches (8 x 14 x 14 tokens) + a class token; a spatial positional embedding shared by
  the 8 time steps plus a per-step temporal one; 12 blocks of 768-d / 12 heads, each time attention (every
  position across the 8 steps), then space attention (every step across the 196 positions), then the MLP, with
  the class token attending to everything and serving as an extra key of every group; LayerNorm (1e-6);
  one pre-norm encoder layer with its own class token pools the 196 positions of each step -> (8, 768).
- audio (`afeat_extractor`, an AST): a (128 mel, 66 frame) log-mel segment -> Conv2d 16 x 16 stride 10
  (12 x 6 patches) with class and distillation tokens, 12 pre-norm layers (LayerNorm 1e-12), final LayerNorm;
  one pre-norm encoder layer with its own class token pools the 12 frequency patches of each time step
  -> (6, 768).
- offset head (`vproj`, `aproj`, `transformer`): the features of 14 consecutive segments, projected, each
  stream LayerNormed, laid out as [OFF, 14 x 8 video, MOD, 14 x 6 audio] (198 tokens) + a learned positional
  embedding, 3 minGPT blocks of 8 heads, LayerNorm, and a Linear(768, 21) on the OFF token: logits of 21
  offset classes.

Inputs, as av-benchmark builds them (`extract_video.py`, `av_bench/data/video_dataset.py`, `av_bench/extract.py`,
`av_bench/extraction_models.py`): video at 25 fps, the first `clip_seconds`, each frame resized so its short
side is 224 (bicubic, antialiased, on uint8), centre-cropped to 224 x 224, scaled to [0, 1] and normalised with
mean = std = 0.5, cut into 16-frame segments every 8 frames; audio mono at 16 kHz cut into 10240-sample
segments every 5120 samples (0.64 s every 0.32 s, the same span as a video segment), each a 128-band
power mel spectrogram (n_fft 1024, window 400, hop 160, centred), log(x + 1e-6), zero-padded from 65 to 66
frames, then (x + 4.2677393) / (2 x 4.5689974).

DeSync (`av_bench/evaluate.py`): the offset classes are 21 values evenly spaced over [-2, 2] s (0.2 s apart);
for each clip the head is run on its first 14 segments and on its last 14 (the first and last 4.8 s), each
gives |offset of the arg-max class|, and DeSync is the mean of all these values over all clips (seconds).

Module names follow the released `synchformer_state_dict.pth` (MMAudio's ext_weights, which av-benchmark loads
with a strict match), so it loads the same way here.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from v2a.metrics.extractors._common import (Extractor, ExtractorConfigError, build_seeded, checkpoint_path,
                                            load_checkpoint, load_weights, model_id, resolve_section)

NAME = "synchformer"
OFFICIAL_FILE = "synchformer_state_dict.pth"
OFFICIAL_SOURCE = ("https://github.com/hkchengrex/MMAudio/releases/download/v0.1/synchformer_state_dict.pth "
                   "(Synchformer 24-01-04T16-39-21, AudioSet; MMAudio's ext_weights)")

DEFAULTS = {
    "video_embed_dim": 768,
    "video_depth": 12,
    "video_heads": 12,
    "image_size": 224,
    "patch_size": 16,
    "segment_frames": 16,      # frames of one video segment
    "temporal_patch": 2,       # frames per token (Conv3d depth)
    "audio_embed_dim": 768,
    "audio_depth": 12,
    "audio_heads": 12,
    "audio_mlp_dim": 3072,
    "mel_bins": 128,
    "spec_frames": 66,         # mel frames of one audio segment, after padding
    "audio_patch": 16,
    "audio_stride": 10,
    "sync_embed_dim": 768,
    "sync_depth": 3,
    "sync_heads": 8,
    "window_segments": 14,     # segments the offset head sees at once (4.8 s)
    "offset_classes": 21,
    # Input rules and the DeSync grid (av-benchmark's, not architecture).
    "max_offset": 2.0,         # the classes span [-max_offset, max_offset] s
    "sample_rate": 16000,
    "video_fps": 25.0,
    "segment_step_frames": 8,
}
ARCH_KEYS = ("video_embed_dim", "video_depth", "video_heads", "image_size", "patch_size", "segment_frames",
             "temporal_patch", "audio_embed_dim", "audio_depth", "audio_heads", "audio_mlp_dim", "mel_bins",
             "spec_frames", "audio_patch", "audio_stride", "sync_embed_dim", "sync_depth", "sync_heads",
             "window_segments", "offset_classes")
# av-benchmark's audio normalisation (from Synchformer's AudioSet statistics) and mel front end.
AUDIO_MEAN, AUDIO_STD = -4.2677393, 4.5689974
MEL_N_FFT, MEL_WIN, MEL_HOP = 1024, 400, 160
VIDEO_MEAN = VIDEO_STD = 0.5


# ---- shared pieces ---------------------------------------------------------------------------------

class ClsPool(nn.Module):
    """One pre-norm transformer encoder layer (GELU, LayerNorm 1e-6) over [CLS, tokens]; returns the CLS output.

    Parameter names are those of torch's `nn.TransformerEncoderLayer` plus `cls_token`, as in the checkpoint."""

    def __init__(self, dim: int, heads: int, mlp_dim: int):
        super().__init__()
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.self_attn = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.linear1 = nn.Linear(dim, mlp_dim)
        self.linear2 = nn.Linear(mlp_dim, dim)
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (N, L, D) -> (N, D)
        x = torch.cat((self.cls_token.expand(x.shape[0], -1, -1), x), dim=1)
        h = self.norm1(x)
        x = x + self.self_attn(h, h, h, need_weights=False)[0]
        x = x + self.linear2(F.gelu(self.linear1(self.norm2(x))))
        return x[:, 0]


def _attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """softmax(q k^T) v with q already scaled."""
    return torch.softmax(q @ k.transpose(-2, -1), dim=-1) @ v


# ---- video: MotionFormer ---------------------------------------------------------------------------

class DividedAttention(nn.Module):
    """Attention within groups of tokens (one frame's positions, or one position's frames), the class token
    querying all tokens and joining every group as an extra key."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.scale = (dim // heads) ** -0.5
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, frames: int, over_time: bool) -> torch.Tensor:
        b, length, dim = x.shape
        h, dh = self.heads, dim // self.heads
        q, k, v = (t.reshape(b, length, h, dh).transpose(1, 2) for t in self.qkv(x).chunk(3, dim=-1))
        q = q * self.scale
        cls_out = _attend(q[:, :, :1], k, v)  # (b, h, 1, dh)
        positions = (length - 1) // frames

        def grouped(t: torch.Tensor) -> torch.Tensor:  # (b, h, F*N, dh) -> (b, h, groups, members, dh)
            t = t[:, :, 1:].reshape(b, h, frames, positions, dh)
            return t.transpose(2, 3) if over_time else t

        qg, kg, vg = grouped(q), grouped(k), grouped(v)
        groups = qg.shape[2]
        kg = torch.cat((k[:, :, :1, None].expand(-1, -1, groups, -1, -1), kg), dim=3)
        vg = torch.cat((v[:, :, :1, None].expand(-1, -1, groups, -1, -1), vg), dim=3)
        out = _attend(qg, kg, vg)
        if over_time:
            out = out.transpose(2, 3)
        out = torch.cat((cls_out, out.reshape(b, h, frames * positions, dh)), dim=2)
        return self.proj(out.transpose(1, 2).reshape(b, length, dim))


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x)))


class DividedSpaceTimeBlock(nn.Module):
    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = DividedAttention(dim, heads)
        self.timeattn = DividedAttention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, 4 * dim)
        self.norm3 = nn.LayerNorm(dim, eps=1e-6)

    def forward(self, x: torch.Tensor, frames: int) -> torch.Tensor:
        x = x + self.timeattn(self.norm3(x), frames, over_time=True)
        x = x + self.attn(self.norm1(x), frames, over_time=False)
        return x + self.mlp(self.norm2(x))


class _Proj(nn.Module):
    def __init__(self, conv: nn.Module):
        super().__init__()
        self.proj = conv


class MotionFormer(nn.Module):
    """(N, C, T, H, W) segments -> (N, T // temporal_patch, D): one feature per time step."""

    def __init__(self, dim: int, depth: int, heads: int, image_size: int, patch_size: int, segment_frames: int,
                 temporal_patch: int):
        super().__init__()
        self.grid = image_size // patch_size
        self.steps = segment_frames // temporal_patch
        # The checkpoint keeps MotionFormer's 2-D patch embedding; only its size is used (the token count).
        self.patch_embed = _Proj(nn.Conv2d(3, dim, kernel_size=patch_size, stride=patch_size))
        self.patch_embed_3d = _Proj(nn.Conv3d(3, dim, kernel_size=(temporal_patch, patch_size, patch_size),
                                              stride=(temporal_patch, patch_size, patch_size)))
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, self.grid ** 2 + 1, dim))
        self.temp_embed = nn.Parameter(torch.zeros(1, self.steps, dim))
        self.blocks = nn.ModuleList(DividedSpaceTimeBlock(dim, heads) for _ in range(depth))
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.spatial_attn_agg = ClsPool(dim, heads, 4 * dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[0]
        tokens = self.patch_embed_3d.proj(x).flatten(2).transpose(1, 2)  # (N, steps * grid^2, D), step-major
        steps, positions = tokens.shape[1] // self.grid ** 2, self.grid ** 2
        if steps != self.steps:
            raise ValueError(f"synchformer: a video segment gives {steps} time steps, the model expects {self.steps}")
        pos = self.pos_embed[:, 1:].repeat(1, steps, 1) + self.temp_embed.repeat_interleave(positions, dim=1)
        x = torch.cat((self.cls_token.expand(n, -1, -1) + self.pos_embed[:, :1], tokens + pos), dim=1)
        for block in self.blocks:
            x = block(x, steps)
        x = self.norm(x[:, 1:])
        d = x.shape[-1]
        pooled = self.spatial_attn_agg(x.reshape(n * steps, positions, d))
        return pooled.reshape(n, steps, d)


# ---- audio: AST ------------------------------------------------------------------------------------

class _AstSelfAttention(nn.Module):
    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.query = nn.Linear(dim, dim)
        self.key = nn.Linear(dim, dim)
        self.value = nn.Linear(dim, dim)

    def forward(self, x):
        b, length, dim = x.shape
        q, k, v = (lin(x).reshape(b, length, self.heads, -1).transpose(1, 2) for lin in (self.query, self.key, self.value))
        out = _attend(q / math.sqrt(dim // self.heads), k, v)
        return out.transpose(1, 2).reshape(b, length, dim)


class _Dense(nn.Module):
    def __init__(self, d_in: int, d_out: int):
        super().__init__()
        self.dense = nn.Linear(d_in, d_out)


class _AstAttention(nn.Module):
    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.attention = _AstSelfAttention(dim, heads)
        self.output = _Dense(dim, dim)

    def forward(self, x):
        return self.output.dense(self.attention(x))


class AstLayer(nn.Module):
    def __init__(self, dim: int, heads: int, mlp_dim: int):
        super().__init__()
        self.attention = _AstAttention(dim, heads)
        self.intermediate = _Dense(dim, mlp_dim)
        self.output = _Dense(mlp_dim, dim)
        self.layernorm_before = nn.LayerNorm(dim, eps=1e-12)
        self.layernorm_after = nn.LayerNorm(dim, eps=1e-12)

    def forward(self, x):
        x = x + self.attention(self.layernorm_before(x))
        return x + self.output.dense(F.gelu(self.intermediate.dense(self.layernorm_after(x))))


class _AstEmbeddings(nn.Module):
    def __init__(self, dim: int, tokens: int, patch: int, stride: int):
        super().__init__()
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.distillation_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.patch_embeddings = nn.Module()
        self.patch_embeddings.projection = nn.Conv2d(1, dim, kernel_size=patch, stride=stride)
        self.position_embeddings = nn.Parameter(torch.zeros(1, tokens + 2, dim))


class _AstEncoder(nn.Module):
    def __init__(self, dim: int, depth: int, heads: int, mlp_dim: int):
        super().__init__()
        self.layer = nn.ModuleList(AstLayer(dim, heads, mlp_dim) for _ in range(depth))


class _AstModel(nn.Module):
    def __init__(self, dim, depth, heads, mlp_dim, tokens, patch, stride):
        super().__init__()
        self.embeddings = _AstEmbeddings(dim, tokens, patch, stride)
        self.encoder = _AstEncoder(dim, depth, heads, mlp_dim)
        self.layernorm = nn.LayerNorm(dim, eps=1e-12)


class AST(nn.Module):
    """(N, mel_bins, spec_frames) log-mels -> (N, t, D): one feature per time patch."""

    def __init__(self, dim: int, depth: int, heads: int, mlp_dim: int, mel_bins: int, spec_frames: int,
                 patch: int, stride: int):
        super().__init__()
        self.freq = (mel_bins - patch) // stride + 1
        self.time = (spec_frames - patch) // stride + 1
        self.ast = _AstModel(dim, depth, heads, mlp_dim, self.freq * self.time, patch, stride)
        self.freq_attn_agg = ClsPool(dim, heads, mlp_dim)

    def forward(self, spec: torch.Tensor) -> torch.Tensor:
        emb = self.ast.embeddings
        n = spec.shape[0]
        x = emb.patch_embeddings.projection(spec.unsqueeze(1)).flatten(2).transpose(1, 2)  # (N, f * t, D), f-major
        x = torch.cat((emb.cls_token.expand(n, -1, -1), emb.distillation_token.expand(n, -1, -1), x), dim=1)
        x = x + emb.position_embeddings
        for layer in self.ast.encoder.layer:
            x = layer(x)
        x = self.ast.layernorm(x)[:, 2:]
        d = x.shape[-1]
        x = x.reshape(n, self.freq, self.time, d).transpose(1, 2).reshape(n * self.time, self.freq, d)
        return self.freq_attn_agg(x).reshape(n, self.time, d)


# ---- the offset head -------------------------------------------------------------------------------

class _GptAttention(nn.Module):
    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.key = nn.Linear(dim, dim)
        self.query = nn.Linear(dim, dim)
        self.value = nn.Linear(dim, dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        b, length, dim = x.shape
        q, k, v = (lin(x).reshape(b, length, self.heads, -1).transpose(1, 2) for lin in (self.query, self.key, self.value))
        out = _attend(q / math.sqrt(dim // self.heads), k, v)
        return self.proj(out.transpose(1, 2).reshape(b, length, dim))


class GptBlock(nn.Module):
    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.ln1 = nn.LayerNorm(dim)
        self.ln2 = nn.LayerNorm(dim)
        self.attn = _GptAttention(dim, heads)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))

    def forward(self, x):
        x = x + self.attn(self.ln1(x))
        return x + self.mlp(self.ln2(x))


class _PosEmb(nn.Module):
    def __init__(self, length: int, dim: int):
        super().__init__()
        self.pos_emb = nn.Parameter(torch.zeros(1, length, dim))


class OffsetTransformer(nn.Module):
    """[OFF, video tokens, MOD, audio tokens] -> offset-class logits from the OFF token."""

    def __init__(self, dim: int, depth: int, heads: int, length: int, classes: int):
        super().__init__()
        self.vis_in_lnorm = nn.LayerNorm(dim)
        self.aud_in_lnorm = nn.LayerNorm(dim)
        self.OFF_tok = nn.Parameter(torch.zeros(1, 1, dim))
        self.MOD_tok = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_emb_cfg = _PosEmb(length, dim)
        self.blocks = nn.Sequential(*[GptBlock(dim, heads) for _ in range(depth)])
        self.ln_f = nn.LayerNorm(dim)
        self.off_head = nn.Linear(dim, classes)

    def forward(self, v: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        b = v.shape[0]
        x = torch.cat((self.OFF_tok.expand(b, -1, -1), self.vis_in_lnorm(v), self.MOD_tok.expand(b, -1, -1),
                       self.aud_in_lnorm(a)), dim=1)
        if x.shape[1] != self.pos_emb_cfg.pos_emb.shape[1]:
            raise ValueError(f"synchformer: the offset head takes {self.pos_emb_cfg.pos_emb.shape[1]} tokens, "
                             f"got {x.shape[1]}")
        x = self.ln_f(self.blocks(x + self.pos_emb_cfg.pos_emb))
        return self.off_head(x[:, 0])


class Synchformer(nn.Module):
    """The three parts under the checkpoint's names: `vfeat_extractor`, `afeat_extractor`, `vproj`, `aproj`,
    `transformer`."""

    def __init__(self, video_embed_dim=768, video_depth=12, video_heads=12, image_size=224, patch_size=16,
                 segment_frames=16, temporal_patch=2, audio_embed_dim=768, audio_depth=12, audio_heads=12,
                 audio_mlp_dim=3072, mel_bins=128, spec_frames=66, audio_patch=16, audio_stride=10,
                 sync_embed_dim=768, sync_depth=3, sync_heads=8, window_segments=14, offset_classes=21):
        super().__init__()
        self.vfeat_extractor = MotionFormer(video_embed_dim, video_depth, video_heads, image_size, patch_size,
                                            segment_frames, temporal_patch)
        self.afeat_extractor = AST(audio_embed_dim, audio_depth, audio_heads, audio_mlp_dim, mel_bins, spec_frames,
                                   audio_patch, audio_stride)
        self.vproj = nn.Linear(video_embed_dim, sync_embed_dim)
        self.aproj = nn.Linear(audio_embed_dim, sync_embed_dim)
        self.window_segments = window_segments
        length = 2 + window_segments * (self.vfeat_extractor.steps + self.afeat_extractor.time)
        self.transformer = OffsetTransformer(sync_embed_dim, sync_depth, sync_heads, length, offset_classes)

    def video_features(self, segments: torch.Tensor) -> torch.Tensor:
        """(B, S, T, C, H, W) normalised frames -> (B, S, steps, D)."""
        b, s = segments.shape[:2]
        x = segments.flatten(0, 1).permute(0, 2, 1, 3, 4)  # (B S, C, T, H, W)
        return self.vfeat_extractor(x).reshape(b, s, self.vfeat_extractor.steps, -1)

    def audio_features(self, specs: torch.Tensor) -> torch.Tensor:
        """(B, S, mel_bins, spec_frames) normalised log-mels -> (B, S, t, D)."""
        b, s = specs.shape[:2]
        return self.afeat_extractor(specs.flatten(0, 1)).reshape(b, s, self.afeat_extractor.time, -1)

    def offset_logits(self, video: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
        """(B, S, tv, Dv) and (B, S, ta, Da) features of `window_segments` segments -> (B, classes) logits."""
        v, a = self.vproj(video), self.aproj(audio)
        return self.transformer(v.flatten(1, 2), a.flatten(1, 2))


def init_synchformer_random_(model: Synchformer) -> Synchformer:
    """Truncated-normal (std 0.02) weights and tokens, zero biases: Synchformer's own init, except that its
    zero Conv3d patch embedding and zero-qkv / all-ones-proj divided attention are not copied (they exist to be
    overwritten by pretrained weights; with them a random model would ignore its video input)."""
    for m in model.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d, nn.Conv3d)):
            nn.init.trunc_normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.MultiheadAttention):
            nn.init.trunc_normal_(m.in_proj_weight, std=0.02)
            nn.init.zeros_(m.in_proj_bias)
    for name, p in model.named_parameters():
        if name.endswith(("cls_token", "distillation_token", "pos_embed", "temp_embed", "position_embeddings",
                          "pos_emb", "OFF_tok", "MOD_tok")):
            nn.init.trunc_normal_(p, std=0.02)
    return model


# ---- inputs, as av-benchmark builds them ---------------------------------------------------------

def segment_starts(length: int, size: int, step: int) -> list[int]:
    """Starts of the whole segments of `size` every `step` within `length` ((length - size) // step + 1 of them)."""
    return list(range(0, length - size + 1, step)) if length >= size else []


def video_segments(frames: np.ndarray, image_size: int = 224, segment_frames: int = 16,
                   step: int = 8) -> torch.Tensor:
    """(S, segment_frames, 3, image_size, image_size) from (T, H, W, 3) uint8 frames at 25 fps."""
    from torchvision.transforms import v2

    x = torch.as_tensor(np.asarray(frames)).permute(0, 3, 1, 2)  # (T, 3, H, W) uint8
    x = v2.CenterCrop(image_size)(v2.Resize(image_size, interpolation=v2.InterpolationMode.BICUBIC)(x))
    x = (x.float() / 255.0 - VIDEO_MEAN) / VIDEO_STD
    starts = segment_starts(x.shape[0], segment_frames, step)
    if not starts:
        raise ValueError(f"synchformer: {x.shape[0]} video frames; a segment needs {segment_frames}")
    return torch.stack([x[s:s + segment_frames] for s in starts])


def audio_segments(wave: np.ndarray, sample_rate: int = 16000, video_fps: float = 25.0, segment_frames: int = 16,
                   step_frames: int = 8, mel_bins: int = 128, spec_frames: int = 66) -> torch.Tensor:
    """(S, mel_bins, spec_frames) normalised log-mels of a mono waveform, one per video segment's span."""
    import torchaudio

    size = round(sample_rate * segment_frames / video_fps)   # 10240 at 16 kHz
    step = round(sample_rate * step_frames / video_fps)      # 5120
    w = torch.as_tensor(np.asarray(wave, dtype=np.float32)).reshape(-1)
    starts = segment_starts(w.shape[0], size, step)
    if not starts:
        raise ValueError(f"synchformer: {w.shape[0]} audio samples; a segment needs {size}")
    mel = torchaudio.transforms.MelSpectrogram(sample_rate=sample_rate, n_fft=MEL_N_FFT, win_length=MEL_WIN,
                                               hop_length=MEL_HOP, n_mels=mel_bins)
    spec = torch.log(mel(torch.stack([w[s:s + size] for s in starts])) + 1e-6)
    gap = spec_frames - spec.shape[-1]
    spec = F.pad(spec, (0, gap)) if gap > 0 else spec[..., :spec_frames]
    return (spec - AUDIO_MEAN) / (2 * AUDIO_STD)


def offset_grid(classes: int = 21, max_offset: float = 2.0) -> np.ndarray:
    """The offset (s) of each class: `classes` values evenly spaced over [-max_offset, max_offset]."""
    return np.linspace(-max_offset, max_offset, classes).astype(np.float32)


def window_logits(model: Synchformer, video: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
    """(B, 2, classes) offset logits of the first and the last `window_segments` segments of each item.

    video: (B, S, tv, D) and audio (B, S, ta, D) features of the same S segments."""
    w = model.window_segments
    if video.shape[1] != audio.shape[1]:
        raise ValueError(f"synchformer: {video.shape[1]} video segments but {audio.shape[1]} audio segments; "
                         "cut the video and the audio to the same length")
    if video.shape[1] < w:
        raise ValueError(f"synchformer: {video.shape[1]} segments; DeSync needs at least {w} (4.8 s at 25 fps)")
    windows = (slice(0, w), slice(video.shape[1] - w, video.shape[1]))
    return torch.stack([model.offset_logits(video[:, win], audio[:, win]) for win in windows], dim=1)


def desync(offsets: np.ndarray) -> float:
    """Mean |offset| over every window of every clip (seconds): av-benchmark's DeSync."""
    return float(np.mean(np.abs(np.asarray(offsets, dtype=np.float64))))


class SynchformerExtractor(Extractor):
    """`video_features(videos)`, `embed(waveforms)` (audio features), `offsets(...)` and `desync_per_clip(...)`."""

    name = NAME

    def __init__(self, model: Synchformer, model_id_: str, cfg: dict, device: str = "cpu", batch_size: int = 8):
        self.sample_rate = int(cfg["sample_rate"])
        self.cfg = cfg
        self.grid = offset_grid(cfg["offset_classes"], float(cfg["max_offset"]))
        super().__init__(model, model_id_, device, batch_size)

    def _chunked(self, fn, x: torch.Tensor) -> torch.Tensor:
        """fn over the segments of one item in groups of batch_size (a paper-size video segment is heavy)."""
        parts = [fn(x[:, i:i + self.batch_size].to(self.device)) for i in range(0, x.shape[1], self.batch_size)]
        return torch.cat(parts, dim=1)

    @torch.inference_mode()
    def video_features(self, videos) -> list[np.ndarray]:
        """(S, tv, D) per item of `videos`, each (T, H, W, 3) uint8 frames at `video_fps`."""
        c = self.cfg
        out = []
        for frames in videos:
            seg = video_segments(frames, c["image_size"], c["segment_frames"], c["segment_step_frames"])
            out.append(self._chunked(self.model.video_features, seg.unsqueeze(0))[0].float().cpu().numpy())
        return out

    @torch.inference_mode()
    def embed(self, waveforms, sample_rate: int | None = None) -> list[np.ndarray]:
        """(S, ta, D) audio features per waveform."""
        c = self.cfg
        out = []
        for w in self._inputs(waveforms, sample_rate):
            spec = audio_segments(w, self.sample_rate, float(c["video_fps"]), c["segment_frames"],
                                  c["segment_step_frames"], c["mel_bins"], c["spec_frames"])
            out.append(self._chunked(self.model.audio_features, spec.unsqueeze(0))[0].float().cpu().numpy())
        return out

    @torch.inference_mode()
    def window_logits(self, video_features, audio_features) -> np.ndarray:
        """(N, 2, classes) logits of the first and last window of each (video, audio) feature pair."""
        out = [window_logits(self.model, torch.as_tensor(v)[None].to(self.device),
                             torch.as_tensor(a)[None].to(self.device))[0].float().cpu().numpy()
               for v, a in zip(video_features, audio_features)]
        return np.stack(out) if out else np.zeros((0, 2, len(self.grid)), np.float32)

    def offsets(self, video_features, audio_features) -> np.ndarray:
        """(N, 2) offsets (s) of the first and last window of each (video, audio) feature pair."""
        return self.grid[self.window_logits(video_features, audio_features).argmax(axis=-1)]

    def desync_per_clip(self, videos, waveforms, sample_rate: int | None = None) -> np.ndarray:
        """Each pair's mean |offset| over its two windows (seconds); their mean is DeSync."""
        offs = self.offsets(self.video_features(videos), self.embed(waveforms, sample_rate))
        return np.abs(offs).mean(axis=1)


def load_synchformer_state(path, key: str) -> dict:
    return load_checkpoint(path, key)


def build(section: dict | None, device: str = "cpu", key: str = "synchformer") -> SynchformerExtractor:
    cfg = resolve_section(key, section, DEFAULTS)
    for field in ARCH_KEYS + ("sample_rate", "segment_step_frames"):
        if not isinstance(cfg[field], int) or cfg[field] <= 0:
            raise ExtractorConfigError(f"extractors.{key}.{field} = {cfg[field]!r}; must be a positive integer")
    for field in ("max_offset", "video_fps"):
        if not isinstance(cfg[field], (int, float)) or cfg[field] <= 0:
            raise ExtractorConfigError(f"extractors.{key}.{field} = {cfg[field]!r}; must be a positive number")
    for dim, heads in (("video_embed_dim", "video_heads"), ("audio_embed_dim", "audio_heads"),
                       ("sync_embed_dim", "sync_heads")):
        if cfg[dim] % cfg[heads]:
            raise ExtractorConfigError(f"extractors.{key}: {dim} {cfg[dim]} is not divisible by {heads} {cfg[heads]}")
    if cfg["segment_frames"] % cfg["temporal_patch"]:
        raise ExtractorConfigError(f"extractors.{key}: segment_frames {cfg['segment_frames']} is not a multiple of "
                                   f"temporal_patch {cfg['temporal_patch']}")
    ckpt = checkpoint_path(key, cfg, OFFICIAL_FILE, OFFICIAL_SOURCE)
    arch = {k: cfg[k] for k in ARCH_KEYS}
    if ckpt is None:
        model = build_seeded(lambda: Synchformer(**arch), cfg["seed"], init=init_synchformer_random_)
    else:
        model = Synchformer(**arch)
        load_weights(model, load_synchformer_state(ckpt, key), key, ckpt)
    return SynchformerExtractor(model, model_id(NAME, cfg, ARCH_KEYS, ckpt), cfg, device, cfg["batch_size"])
