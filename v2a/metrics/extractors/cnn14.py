"""PANNs Cnn14 at 16 kHz (Kong et al., 2020): the FD extractor and the KL / IS classifier.

Front end as in the official 16 kHz model: 512-sample Hann STFT (center, reflect), hop 160,
64 mel bins from 50 to 8000 Hz, power in dB (ref 1, amin 1e-10, no top_db), BatchNorm over mel
bins. Then six conv blocks (two 3x3 conv + BN + ReLU each, 2x2 average pooling after the first
five), mean over frequency, max + mean over time, `fc1` + ReLU = the 2048-d `embedding`, and
`fc_audioset` on that = the 527 AudioSet `logits` (pre-sigmoid). Module names follow the
official checkpoint so `Cnn14_16k_mAP=0.438.pth` loads with a strict state-dict match.
Inference only: dropout, SpecAugment and mixup are training-time and left out.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torchlibrosa.stft import LogmelFilterBank, Spectrogram

from v2a.core.rates import PANNS_SAMPLE_RATE
from v2a.metrics.extractors._common import (ClassifierExtractor, ExtractorConfigError, build_seeded, checkpoint_path,
                                            int_list, load_checkpoint, load_weights, model_id, resolve_section)

NAME = "panns-cnn14-16k"
OFFICIAL_FILE = "Cnn14_16k_mAP=0.438.pth"
OFFICIAL_SOURCE = "https://zenodo.org/records/3987831 (PANNs, Kong et al.)"



@dataclass(frozen=True)
class Cnn14Config:
    """PANNs' Cnn14_16k as released; a profile's `extractors.panns` section overrides any field."""

    sample_rate: int = PANNS_SAMPLE_RATE
    window_size: int = 512
    hop_size: int = 160
    mel_bins: int = 64
    fmin: float = 50
    fmax: float = 8000
    channels: tuple[int, ...] = (64, 128, 256, 512, 1024, 2048)
    embedding_dim: int = 2048
    classes: int = 527


DEFAULTS = asdict(Cnn14Config())  # the section's fields (the model id hashes them as the section gives them)
ARCH_KEYS = tuple(DEFAULTS)


class ConvBlock(nn.Module):
    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.bn2 = nn.BatchNorm2d(out_channels)

    def forward(self, x: torch.Tensor, pool: tuple[int, int]) -> torch.Tensor:
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.relu(self.bn2(self.conv2(x)))
        return F.avg_pool2d(x, kernel_size=pool)


class Cnn14(nn.Module):
    def __init__(self, config: Cnn14Config = Cnn14Config()):
        super().__init__()
        c = config
        if len(c.channels) != 6:
            raise ValueError(f"Cnn14 has six conv blocks; got {len(c.channels)} channel widths")
        self.spectrogram_extractor = Spectrogram(n_fft=c.window_size, hop_length=c.hop_size, win_length=c.window_size,
                                                 window="hann", center=True, pad_mode="reflect",
                                                 freeze_parameters=True)
        self.logmel_extractor = LogmelFilterBank(sr=c.sample_rate, n_fft=c.window_size, n_mels=c.mel_bins,
                                                 fmin=c.fmin, fmax=c.fmax, ref=1.0, amin=1e-10, top_db=None,
                                                 freeze_parameters=True)
        self.bn0 = nn.BatchNorm2d(c.mel_bins)
        widths = [1, *c.channels]
        for i in range(6):
            setattr(self, f"conv_block{i + 1}", ConvBlock(widths[i], widths[i + 1]))
        self.fc1 = nn.Linear(c.channels[-1], c.embedding_dim)
        self.fc_audioset = nn.Linear(c.embedding_dim, c.classes)

    def forward(self, waveform: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, samples) -> (embedding (B, embedding_dim), logits (B, classes))."""
        x = self.logmel_extractor(self.spectrogram_extractor(waveform))  # (B, 1, frames, mels)
        x = self.bn0(x.transpose(1, 3)).transpose(1, 3)  # normalise per mel bin
        for i in range(6):
            block = getattr(self, f"conv_block{i + 1}")
            x = block(x, pool=(2, 2) if i < 5 else (1, 1))
        x = x.mean(dim=3)
        x = x.max(dim=2).values + x.mean(dim=2)
        embedding = F.relu(self.fc1(x))
        return embedding, self.fc_audioset(embedding)


class Cnn14Extractor(ClassifierExtractor):
    """`embed` -> (N, embedding_dim) PANNs embeddings; `logits` -> (N, 527) pre-sigmoid class logits."""

    name = NAME

    def __init__(self, model: Cnn14, model_id_: str, sample_rate: int, device: str = "cpu", batch_size: int = 8):
        self.sample_rate = int(sample_rate)
        super().__init__(model, model_id_, device, batch_size)

    @property
    def embedding_dim(self) -> int:
        return self.model.fc1.out_features

    @property
    def num_classes(self) -> int:
        return self.model.fc_audioset.out_features

    def _forward(self, batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.model(batch)  # (embedding, logits)


def build(section: dict | None, device: str = "cpu", key: str = "panns") -> Cnn14Extractor:
    cfg = resolve_section(key, section, DEFAULTS)
    channels = int_list(key, "channels", cfg["channels"], length=6)
    for field in ("sample_rate", "window_size", "hop_size", "mel_bins", "embedding_dim", "classes"):
        if not isinstance(cfg[field], int) or cfg[field] <= 0:
            raise ExtractorConfigError(f"extractors.{key}.{field} = {cfg[field]!r}; must be a positive integer")
    if not 0 <= cfg["fmin"] < cfg["fmax"] <= cfg["sample_rate"] / 2:
        raise ExtractorConfigError(
            f"extractors.{key}: need 0 <= fmin < fmax <= sample_rate / 2, got fmin={cfg['fmin']}, "
            f"fmax={cfg['fmax']}, sample_rate={cfg['sample_rate']}")
    ckpt = checkpoint_path(key, cfg, OFFICIAL_FILE, OFFICIAL_SOURCE)

    arch = Cnn14Config(**{**{k: cfg[k] for k in ARCH_KEYS}, "channels": tuple(channels)})
    model = build_seeded(lambda: Cnn14(arch), cfg["seed"])
    if ckpt is not None:
        state = load_checkpoint(ckpt, key)
        # The official file is a training checkpoint: {'model': state_dict, 'iteration': ..., ...}.
        if isinstance(state, dict) and isinstance(state.get("model"), dict):
            state = state["model"]
        load_weights(model, state, key, ckpt)
    return Cnn14Extractor(model, model_id(NAME, cfg, ARCH_KEYS, ckpt), cfg["sample_rate"], device, cfg["batch_size"])
