"""PaSST-S (Koutini et al., 2022) at 32 kHz: av-benchmark's FD_PaSST embedding and KL_PaSST / IS logits.

The architecture is hear21passt 0.0.26's `get_basic_model(mode="all")` (github.com/kkoutini/passt_hear21,
`base.py`, `models/preprocess.py`, `models/passt.py`, arch `passt_s_swa_p16_128_ap476`), rewritten here:

- front end (`AugmentMelSTFT` in eval mode): pre-emphasis [-0.97, 1]; 1024-point STFT of an 800-sample
  symmetric Hann window, hop 320, centred (zero padding); power spectrum; 128 Kaldi mel bands from 0
  to 15 kHz (`sr // 2 - fmax_aug_range // 2`) with a zero column for the Nyquist bin; log(x + 1e-5);
  then (x + 4.5) / 5.
- a DeiT-style distilled ViT-B: 16 x 16 patches with stride 10 over the (128 mel, 998 frame) input
  (a 12 x 99 grid), separate frequency and time positional embeddings, class and distillation tokens,
  12 blocks of 12 heads, final LayerNorm (eps 1e-6).
- `features` = mean of the two tokens (768-d); `logits` = `head` (LayerNorm + Linear) on `features`
  (527 AudioSet classes, pre-sigmoid). `head_dist` is in the checkpoint but unused at inference.
  hear21passt's `mode="all"` concatenates [logits, features] (1295-d); av-benchmark splits them back.

Windowing as av-benchmark does it (hkchengrex/av-benchmark, `av_bench/extract.py`, "PassT, need 32K
sampling rate"): the clip is loaded at 32 kHz and cut to `audio_length` (8 s by default), then
    if (wav.size(-1) >= 320000): wav = wav[..., :320000]
    else: wav = torch.nn.functional.pad(wav, (0, 320000 - wav.size(-1)))
so every clip enters the model as exactly one zero-padded 10-s window (`window_samples`); nothing
longer than 10 s is seen (no sliding windows, unlike hear21passt's `get_scene_embeddings`).

Module names follow the released checkpoint (`passt-s-f128-p16-s10-ap.476-swa.pt`), so it loads with
a strict state-dict match.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from v2a.core.rates import PASST_SAMPLE_RATE
from v2a.metrics.extractors._common import (ClassifierExtractor, ExtractorConfigError, build_seeded,
                                            checkpoint_path, load_checkpoint, load_weights, model_id, resolve_section)

NAME = "passt-s-swa-32k"
OFFICIAL_FILE = "passt-s-f128-p16-s10-ap.476-swa.pt"
OFFICIAL_SOURCE = "https://github.com/kkoutini/PaSST/releases/tag/v0.0.1-audioset (PaSST, Koutini et al.)"



@dataclass(frozen=True)
class PaSSTConfig:
    """hear21passt's `passt_s_swa_p16_128_ap476` and av-benchmark's window; a profile's `extractors.passt`
    section overrides any field."""

    sample_rate: int = PASST_SAMPLE_RATE
    n_fft: int = 1024
    win_length: int = 800
    hop_size: int = 320
    mel_bins: int = 128
    fmin: float = 0.0
    fmax: float = 15000.0
    input_frames: int = 998       # the time size the positional embedding was trained for (10 s)
    patch_size: int = 16
    patch_stride: int = 10
    embed_dim: int = 768
    depth: int = 12
    num_heads: int = 12
    mlp_ratio: float = 4.0
    classes: int = 527
    window_samples: int = 10 * PASST_SAMPLE_RATE  # av-benchmark's fixed PaSST window: 10 s (not the network's)


DEFAULTS = asdict(PaSSTConfig())  # the section's fields (the model id hashes them as the section gives them)
ARCH_KEYS = tuple(k for k in DEFAULTS if k != "window_samples")


class MelFrontEnd(nn.Module):
    """hear21passt's AugmentMelSTFT in eval mode (no masking, no random band edges)."""

    def __init__(self, sample_rate: int, n_fft: int, win_length: int, hop_size: int, mel_bins: int, fmin: float,
                 fmax: float):
        super().__init__()
        import torchaudio

        self.n_fft, self.win_length, self.hop_size = n_fft, win_length, hop_size
        self.register_buffer("window", torch.hann_window(win_length, periodic=False), persistent=False)
        self.register_buffer("preemphasis", torch.tensor([[[-0.97, 1.0]]]), persistent=False)
        banks, _ = torchaudio.compliance.kaldi.get_mel_banks(mel_bins, n_fft, float(sample_rate), float(fmin),
                                                             float(fmax), 100.0, -500.0, 1.0)
        self.register_buffer("mel_basis", F.pad(banks, (0, 1)), persistent=False)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        x = F.conv1d(wave.unsqueeze(1), self.preemphasis).squeeze(1)
        spec = torch.stft(x, self.n_fft, hop_length=self.hop_size, win_length=self.win_length, center=True,
                          normalized=False, window=self.window, return_complex=True)
        power = spec.real ** 2 + spec.imag ** 2
        mel = torch.matmul(self.mel_basis.float(), power.float())
        return ((mel + 1e-5).log() + 4.5) / 5.0


class PatchEmbed(nn.Module):
    def __init__(self, patch_size: int, stride: int, embed_dim: int):
        super().__init__()
        self.proj = nn.Conv2d(1, embed_dim, kernel_size=patch_size, stride=stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x)


class Attention(nn.Module):
    def __init__(self, dim: int, num_heads: int):
        super().__init__()
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.num_heads, c // self.num_heads).permute(2, 0, 3, 1, 4)
        attn = ((q @ k.transpose(-2, -1)) * (c // self.num_heads) ** -0.5).softmax(dim=-1)
        return self.proj((attn @ v).transpose(1, 2).reshape(b, n, c))


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


class Block(nn.Module):
    def __init__(self, dim: int, num_heads: int, mlp_ratio: float):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, num_heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class PaSST(nn.Module):
    """(B, samples) at 32 kHz -> (logits (B, classes), features (B, embed_dim))."""

    def __init__(self, config: PaSSTConfig = PaSSTConfig()):
        super().__init__()
        c = config
        patch_size, patch_stride, embed_dim, num_heads, classes = (c.patch_size, c.patch_stride, c.embed_dim,
                                                                    c.num_heads, c.classes)
        self.mel = MelFrontEnd(c.sample_rate, c.n_fft, c.win_length, c.hop_size, c.mel_bins, c.fmin, c.fmax)
        self.patch_embed = PatchEmbed(patch_size, patch_stride, embed_dim)
        # The conv's own output grid; hear21passt's `size // stride` equals it at the released sizes (12 x 99).
        grid_f, grid_t = ((n - patch_size) // patch_stride + 1 for n in (c.mel_bins, c.input_frames))
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.dist_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.new_pos_embed = nn.Parameter(torch.zeros(1, 2, embed_dim))
        self.freq_new_pos_embed = nn.Parameter(torch.zeros(1, embed_dim, grid_f, 1))
        self.time_new_pos_embed = nn.Parameter(torch.zeros(1, embed_dim, 1, grid_t))
        self.blocks = nn.Sequential(*[Block(embed_dim, num_heads, c.mlp_ratio) for _ in range(c.depth)])
        self.norm = nn.LayerNorm(embed_dim, eps=1e-6)
        self.head = nn.Sequential(nn.LayerNorm(embed_dim), nn.Linear(embed_dim, classes))
        self.head_dist = nn.Linear(embed_dim, classes)

    def forward(self, wave: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.patch_embed(self.mel(wave).unsqueeze(1))  # (B, E, F, T)
        if x.shape[-1] > self.time_new_pos_embed.shape[-1]:
            raise ValueError(f"PaSST input of {x.shape[-1]} time patches exceeds the model's "
                             f"{self.time_new_pos_embed.shape[-1]} (10 s); cut the audio to its window first")
        # Shorter inputs use the first time positions, as hear21passt does.
        x = x + self.time_new_pos_embed[..., :x.shape[-1]] + self.freq_new_pos_embed
        x = x.flatten(2).transpose(1, 2)
        b = x.shape[0]
        cls = self.cls_token.expand(b, -1, -1) + self.new_pos_embed[:, :1]
        dist = self.dist_token.expand(b, -1, -1) + self.new_pos_embed[:, 1:]
        x = self.norm(self.blocks(torch.cat((cls, dist, x), dim=1)))
        features = (x[:, 0] + x[:, 1]) / 2
        return self.head(features), features


def init_passt_random_(model: PaSST) -> PaSST:
    """timm's ViT init (truncated normal 0.02 on linears and tokens), so random features do not collapse."""
    for m in model.modules():
        if isinstance(m, nn.Linear):
            nn.init.trunc_normal_(m.weight, std=0.02)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
    for p in (model.cls_token, model.dist_token, model.new_pos_embed, model.freq_new_pos_embed,
              model.time_new_pos_embed):
        nn.init.trunc_normal_(p, std=0.02)
    return model


def fit_window(wave: torch.Tensor, window: int) -> torch.Tensor:
    """av-benchmark's PaSST window: cut to `window` samples, or zero-pad at the end to it."""
    if wave.shape[-1] >= window:
        return wave[..., :window]
    return F.pad(wave, (0, window - wave.shape[-1]))


class PaSSTExtractor(ClassifierExtractor):
    """`embed_and_logits` -> ((N, 768) scene features, (N, 527) pre-sigmoid logits), one 10-s window per clip."""

    name = NAME

    def __init__(self, model: PaSST, model_id_: str, sample_rate: int, window_samples: int, device: str = "cpu",
                 batch_size: int = 8):
        self.sample_rate = int(sample_rate)
        self.window_samples = int(window_samples)
        super().__init__(model, model_id_, device, batch_size)

    @property
    def embedding_dim(self) -> int:
        return self.model.norm.normalized_shape[0]

    @property
    def num_classes(self) -> int:
        return self.model.head[1].out_features

    def _fit(self, waves: list[np.ndarray]) -> list[np.ndarray]:
        return [fit_window(torch.from_numpy(w), self.window_samples).numpy() for w in waves]

    def _forward(self, batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits, features = self.model(batch)
        return features, logits


def build(section: dict | None, device: str = "cpu", key: str = "passt") -> PaSSTExtractor:
    cfg = resolve_section(key, section, DEFAULTS)
    for field in ("sample_rate", "n_fft", "win_length", "hop_size", "mel_bins", "input_frames", "patch_size",
                  "patch_stride", "embed_dim", "depth", "num_heads", "classes", "window_samples"):
        if not isinstance(cfg[field], int) or cfg[field] <= 0:
            raise ExtractorConfigError(f"extractors.{key}.{field} = {cfg[field]!r}; must be a positive integer")
    if cfg["embed_dim"] % cfg["num_heads"]:
        raise ExtractorConfigError(f"extractors.{key}: embed_dim {cfg['embed_dim']} is not divisible by "
                                   f"num_heads {cfg['num_heads']}")
    if not 0 <= cfg["fmin"] < cfg["fmax"] <= cfg["sample_rate"] / 2:
        raise ExtractorConfigError(f"extractors.{key}: need 0 <= fmin < fmax <= sample_rate / 2")
    frames = cfg["window_samples"] // cfg["hop_size"] + 1
    if (frames - cfg["patch_size"]) // cfg["patch_stride"] > (cfg["input_frames"] - cfg["patch_size"]) // cfg["patch_stride"]:
        raise ExtractorConfigError(
            f"extractors.{key}: window_samples {cfg['window_samples']} gives more time patches than input_frames "
            f"{cfg['input_frames']} has positions for")
    ckpt = checkpoint_path(key, cfg, OFFICIAL_FILE, OFFICIAL_SOURCE)
    arch = PaSSTConfig(**{k: cfg[k] for k in DEFAULTS})
    if ckpt is None:
        model = build_seeded(lambda: PaSST(arch), cfg["seed"], init=init_passt_random_)
    else:
        model = PaSST(arch)
        state = load_checkpoint(ckpt, key)
        if isinstance(state, dict) and isinstance(state.get("model"), dict):
            state = state["model"]
        load_weights(model, state, key, ckpt)
    return PaSSTExtractor(model, model_id(NAME, cfg, ARCH_KEYS, ckpt), cfg["sample_rate"], cfg["window_samples"],
                          device, cfg["batch_size"])
