"""VGGish (Hershey et al., 2017): the FAD extractor, one 128-d vector per 0.96 s of audio.

Front end as in the reference `vggish_input` / `mel_features`: 16 kHz mono, 25 ms (400-sample)
periodic-Hann frames every 10 ms, |FFT| over 512 points, 64 mel bands from 125 to 7500 Hz on
the HTK mel scale (triangles built in the mel domain, DC bin dropped, no area normalisation),
log(mel + 0.01), cut into non-overlapping 96 x 64 patches (no padding of the STFT or of the
last partial patch). Network: VGG-style convs 64 / 128 / 256-256 / 512-512 with 2x2 max
pooling, flatten in TensorFlow's (H, W, C) order so ported weights line up, then
fc 12288 -> 4096 -> 4096 -> 128. FAD uses the raw 128-d output: no PCA / quantisation
post-processing and no ReLU after the last layer.

Module names follow the widely used PyTorch port (`features.*`, `embeddings.*`, e.g.
`vggish-10086976.pth`), so its state dict loads strictly (its `pproc.*` PCA entries are ignored).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn

from v2a.core.rates import VGGISH_SAMPLE_RATE
from v2a.metrics.extractors._common import (Extractor, ExtractorConfigError, build_seeded, checkpoint_path,
                                            int_list, load_checkpoint, load_weights, model_id, resolve_section)

NAME = "vggish"
OFFICIAL_FILE = "vggish-10086976.pth"
OFFICIAL_SOURCE = ("https://github.com/harritaylor/torchvggish/releases (PyTorch port of the TF VGGish "
                   "checkpoint; the PCA file is not needed)")



@dataclass(frozen=True)
class VGGishConfig:
    """VGGish as released (its log-mel front end and network); a profile's `extractors.vggish` section overrides
    any field."""

    sample_rate: int = VGGISH_SAMPLE_RATE
    window_seconds: float = 0.025
    hop_seconds: float = 0.010
    mel_bins: int = 64
    fmin: float = 125.0
    fmax: float = 7500.0
    log_offset: float = 0.01
    patch_frames: int = 96
    channels: tuple[int, ...] = (64, 128, 256, 256, 512, 512)
    fc_dims: tuple[int, ...] = (4096, 4096)
    embedding_dim: int = 128


DEFAULTS = asdict(VGGishConfig())  # the section's fields (the model id hashes them as the section gives them)
ARCH_KEYS = tuple(DEFAULTS)


def _hz_to_mel_htk(hz: np.ndarray) -> np.ndarray:
    return 1127.0 * np.log1p(np.asarray(hz, dtype=np.float64) / 700.0)


def vggish_mel_matrix(sample_rate: int, fft_bins: int, mel_bins: int, fmin: float, fmax: float) -> np.ndarray:
    """(fft_bins, mel_bins) weights: triangles over linearly spaced HTK-mel band edges."""
    bin_mel = _hz_to_mel_htk(np.linspace(0.0, sample_rate / 2.0, fft_bins))
    edges = np.linspace(_hz_to_mel_htk(fmin), _hz_to_mel_htk(fmax), mel_bins + 2)
    lower, center, upper = edges[:-2], edges[1:-1], edges[2:]
    rising = (bin_mel[:, None] - lower) / (center - lower)
    falling = (upper - bin_mel[:, None]) / (upper - center)
    weights = np.maximum(0.0, np.minimum(rising, falling))
    weights[0, :] = 0.0  # the DC bin carries no band energy in VGGish's front end
    return weights


class VGGishLogMel(nn.Module):
    """Waveform (samples,) -> (patches, patch_frames, mel_bins) log-mel patches."""

    def __init__(self, config: VGGishConfig = VGGishConfig()):
        super().__init__()
        sample_rate, window_seconds, hop_seconds = config.sample_rate, config.window_seconds, config.hop_seconds
        mel_bins, fmin, fmax, log_offset, patch_frames = (config.mel_bins, config.fmin, config.fmax,
                                                          config.log_offset, config.patch_frames)
        self.win = int(round(sample_rate * window_seconds))
        self.hop = int(round(sample_rate * hop_seconds))
        self.n_fft = 1 << int(np.ceil(np.log2(self.win)))
        self.patch_frames = patch_frames
        self.mel_bins = mel_bins
        self.log_offset = log_offset
        # Not part of the state dict: derived from the config, and absent from the ported weights.
        self.register_buffer("window", torch.hann_window(self.win, periodic=True, dtype=torch.float64),
                             persistent=False)
        mel = vggish_mel_matrix(sample_rate, self.n_fft // 2 + 1, mel_bins, fmin, fmax)
        self.register_buffer("mel", torch.from_numpy(mel), persistent=False)

    @property
    def min_samples(self) -> int:
        """Shortest input that still yields one patch."""
        return self.win + (self.patch_frames - 1) * self.hop

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        wave = wave.to(torch.float64)
        frames = wave.unfold(0, self.win, self.hop)  # (frames, win); a trailing partial frame is dropped
        spec = torch.fft.rfft(frames * self.window, n=self.n_fft).abs()
        log_mel = torch.log(spec @ self.mel + self.log_offset)
        n_patches = (log_mel.shape[0] - self.patch_frames) // self.patch_frames + 1
        patches = log_mel[: n_patches * self.patch_frames].reshape(n_patches, self.patch_frames, self.mel_bins)
        return patches.to(torch.float32)


class VGGish(nn.Module):
    """(P, patch_frames, mel_bins) log-mel patches -> (P, embedding_dim)."""

    def __init__(self, config: VGGishConfig = VGGishConfig()):
        super().__init__()
        channels, fc_dims, embedding_dim = config.channels, config.fc_dims, config.embedding_dim
        patch_frames, mel_bins = config.patch_frames, config.mel_bins
        if len(channels) != 6 or len(fc_dims) != 2:
            raise ValueError("VGGish has six conv layers and two hidden fc layers")
        c = list(channels)
        conv = lambda cin, cout: nn.Conv2d(cin, cout, 3, padding=1)  # noqa: E731
        pool = lambda: nn.MaxPool2d(2, 2)  # noqa: E731
        relu = lambda: nn.ReLU(inplace=True)  # noqa: E731
        self.features = nn.Sequential(
            conv(1, c[0]), relu(), pool(),
            conv(c[0], c[1]), relu(), pool(),
            conv(c[1], c[2]), relu(), conv(c[2], c[3]), relu(), pool(),
            conv(c[3], c[4]), relu(), conv(c[4], c[5]), relu(), pool(),
        )
        flat = c[5] * (patch_frames // 16) * (mel_bins // 16)
        self.embeddings = nn.Sequential(
            nn.Linear(flat, fc_dims[0]), nn.ReLU(inplace=True),
            nn.Linear(fc_dims[0], fc_dims[1]), nn.ReLU(inplace=True),
            nn.Linear(fc_dims[1], embedding_dim),
        )

    def forward(self, patches: torch.Tensor) -> torch.Tensor:
        x = self.features(patches.unsqueeze(1))  # (P, C, H, W)
        x = x.permute(0, 2, 3, 1).flatten(1)  # TF flattens NHWC; the ported fc weights expect that order
        return self.embeddings(x)


class VGGishExtractor(Extractor):
    """`embed` -> one (frames, embedding_dim) array per clip, a frame per 0.96 s."""

    name = NAME

    def __init__(self, model: VGGish, frontend: VGGishLogMel, model_id_: str, sample_rate: int,
                 device: str = "cpu", batch_size: int = 8):
        self.sample_rate = int(sample_rate)
        super().__init__(model, model_id_, device, batch_size)
        self.frontend = frontend.to(self.device)

    @property
    def embedding_dim(self) -> int:
        return self.model.embeddings[-1].out_features

    @torch.inference_mode()
    def log_mel_patches(self, wave: np.ndarray) -> torch.Tensor:
        # A clip under 0.975 s would give no patch at all; zero-pad it to one so every clip counts.
        if len(wave) < self.frontend.min_samples:
            wave = np.pad(wave, (0, self.frontend.min_samples - len(wave)))
        return self.frontend(torch.from_numpy(wave).to(self.device))

    @torch.inference_mode()
    def embed(self, waveforms, sample_rate: int | None = None) -> list[np.ndarray]:
        waves = self._inputs(waveforms, sample_rate)
        out: list[np.ndarray] = []
        for group in self._batches(waves):
            patches = [self.log_mel_patches(w) for w in group]
            emb = self.model(torch.cat(patches)).float().cpu().numpy()
            bounds = np.cumsum([0] + [len(p) for p in patches])
            out.extend(emb[a:b] for a, b in zip(bounds[:-1], bounds[1:]))
        return out


def build(section: dict | None, device: str = "cpu", key: str = "vggish") -> VGGishExtractor:
    cfg = resolve_section(key, section, DEFAULTS)
    channels = int_list(key, "channels", cfg["channels"], length=6)
    fc_dims = int_list(key, "fc_dims", cfg["fc_dims"], length=2)
    for field in ("sample_rate", "mel_bins", "patch_frames", "embedding_dim"):
        if not isinstance(cfg[field], int) or cfg[field] <= 0:
            raise ExtractorConfigError(f"extractors.{key}.{field} = {cfg[field]!r}; must be a positive integer")
    if cfg["patch_frames"] % 16 or cfg["mel_bins"] % 16:
        raise ExtractorConfigError(
            f"extractors.{key}: patch_frames ({cfg['patch_frames']}) and mel_bins ({cfg['mel_bins']}) must be "
            "multiples of 16 (four 2x2 poolings)")
    if not 0 <= cfg["fmin"] < cfg["fmax"] <= cfg["sample_rate"] / 2:
        raise ExtractorConfigError(f"extractors.{key}: need 0 <= fmin < fmax <= sample_rate / 2")
    ckpt = checkpoint_path(key, cfg, OFFICIAL_FILE, OFFICIAL_SOURCE)
    arch = VGGishConfig(**{**{k: cfg[k] for k in ARCH_KEYS}, "channels": tuple(channels), "fc_dims": tuple(fc_dims)})
    model = build_seeded(lambda: VGGish(arch), cfg["seed"])
    if ckpt is not None:
        state = load_checkpoint(ckpt, key)
        state = {k: v for k, v in state.items() if not k.startswith("pproc.")}
        load_weights(model, state, key, ckpt)
    frontend = VGGishLogMel(arch)
    return VGGishExtractor(model, frontend, model_id(NAME, cfg, ARCH_KEYS, ckpt), cfg["sample_rate"], device,
                           cfg["batch_size"])
