"""Wav2CLIP (Wu et al., ICASSP 2022): audio into CLIP's image-embedding space, for the CLIP-Score.

Audio encoder as in the released model: 16 kHz audio, power STFT (n_fft 512, hop 353,
Hann, centred), log(x + 1e-7), standardised by its own mean and std, then a ResNet-18 on the
one-channel spectrogram (7x7/2 stem + 3x3/2 max pool, four stages of two basic blocks, widths
64-128-256-512, global average pool) -> 512-d, and the `transform` MLP (512 -> 512, ReLU,
dropout, -> 512) that was trained to land in CLIP ViT-B/32's image space.

The released encoder standardises with the statistics of the whole input batch; we standardise
each clip on its own, which is what the reference usage (one clip at a time) computes and keeps
an embedding from depending on its batch-mates. The encoder's classification head (`fc`, 309
VGGSound classes in pre-training) never feeds the embedding, so it is not built and its
checkpoint entries are dropped; everything else loads strictly.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F
import torchaudio
from torch import nn

from v2a.core.rates import WAV2CLIP_SAMPLE_RATE
from v2a.metrics.extractors._common import (Extractor, ExtractorConfigError, build_seeded, checkpoint_path,
                                            int_list, load_checkpoint, load_weights, model_id, resolve_section)

NAME = "wav2clip"
OFFICIAL_FILE = "ResNet_CX.ckpt"
OFFICIAL_SOURCE = ("the Wav2CLIP release, github.com/descriptinc/lyrebird-wav2clip (saved as safetensors if "
                   "torch.load(weights_only=True) refuses the Lightning checkpoint)")



@dataclass(frozen=True)
class Wav2CLIPConfig:
    """The released Wav2CLIP audio encoder; a profile's `extractors.wav2clip` section overrides any field."""

    sample_rate: int = WAV2CLIP_SAMPLE_RATE
    n_fft: int = 512
    hop_length: int = 353
    widths: tuple[int, ...] = (64, 128, 256, 512)
    blocks: tuple[int, ...] = (2, 2, 2, 2)
    transform_hidden: int = 512
    embed_dim: int = 512


DEFAULTS = asdict(Wav2CLIPConfig())  # the section's fields (the model id hashes them as the section gives them)
ARCH_KEYS = tuple(DEFAULTS)


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + (x if self.downsample is None else self.downsample(x)))


class AudioResNet(nn.Module):
    """(B, samples) -> (B, widths[-1]) pooled spectrogram features."""

    def __init__(self, n_fft: int, hop_length: int, widths, blocks):
        super().__init__()
        self.spectrogram = torchaudio.transforms.Spectrogram(n_fft=n_fft, hop_length=hop_length)
        self.conv1 = nn.Conv2d(1, widths[0], 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        cin = widths[0]
        for i, (width, n) in enumerate(zip(widths, blocks)):
            stride = 1 if i == 0 else 2
            stage = [BasicBlock(cin, width, stride)] + [BasicBlock(width, width, 1) for _ in range(n - 1)]
            setattr(self, f"layer{i + 1}", nn.Sequential(*stage))
            cin = width
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        x = torch.log(self.spectrogram(wave.unsqueeze(1)) + 1e-7)  # (B, 1, freq, frames)
        flat = x.flatten(1)
        x = (x - flat.mean(1).view(-1, 1, 1, 1)) / (flat.std(1).view(-1, 1, 1, 1) + 1e-9)
        x = self.maxpool(F.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.avgpool(x).flatten(1)


class ProjectionMLP(nn.Module):
    """Linear -> ReLU -> Dropout -> ... -> Linear (no activation after the last layer)."""

    def __init__(self, units, dropout: float = 0.1):
        super().__init__()
        layers: list[nn.Module] = []
        for u0, u1 in zip(units[:-1], units[1:]):
            layers += [nn.Linear(u0, u1), nn.ReLU(), nn.Dropout(dropout)]
        self.sequential = nn.Sequential(*layers[:-2])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.sequential(x)


class Wav2CLIP(nn.Module):
    def __init__(self, config: Wav2CLIPConfig = Wav2CLIPConfig()):
        super().__init__()
        c = config
        self.encoder = AudioResNet(c.n_fft, c.hop_length, c.widths, c.blocks)
        self.transform = ProjectionMLP([c.widths[-1], c.transform_hidden, c.embed_dim])

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        return self.transform(self.encoder(wave))


class Wav2CLIPExtractor(Extractor):
    """`embed` -> (N, embed_dim) audio embeddings in the CLIP image space (not normalised)."""

    name = NAME

    def __init__(self, model: Wav2CLIP, model_id_: str, sample_rate: int, device: str = "cpu", batch_size: int = 8):
        self.sample_rate = int(sample_rate)
        super().__init__(model, model_id_, device, batch_size)

    @property
    def embedding_dim(self) -> int:
        return self.model.transform.sequential[-1].out_features

    @torch.inference_mode()
    def embed(self, waveforms, sample_rate: int | None = None) -> np.ndarray:
        waves = self._inputs(waveforms, sample_rate)
        out = [self.model(self._tensor(group)).float().cpu().numpy() for group in self._batches(waves)]
        return np.concatenate(out) if out else np.zeros((0, self.embedding_dim), np.float32)


def _state_from_checkpoint(raw: dict) -> dict:
    """Map the release's Lightning keys (audio_encoder.*, audio_transform.*) onto this module's.

    Image-side modules and the encoder's unused classification head are dropped.
    """
    state = raw.get("state_dict", raw) if isinstance(raw, dict) else raw
    renamed = {}
    for k, v in state.items():
        if k.startswith(("audio_encoder.fc.", "encoder.fc.")):
            continue
        if k.startswith("audio_encoder."):
            renamed["encoder." + k[len("audio_encoder."):]] = v
        elif k.startswith("audio_transform."):
            renamed["transform." + k[len("audio_transform."):]] = v
        elif k.startswith(("encoder.", "transform.")):
            renamed[k] = v
    return renamed


def build(section: dict | None, device: str = "cpu", key: str = "wav2clip") -> Wav2CLIPExtractor:
    cfg = resolve_section(key, section, DEFAULTS)
    widths = int_list(key, "widths", cfg["widths"], length=4)
    blocks = int_list(key, "blocks", cfg["blocks"], length=4)
    for field in ("sample_rate", "n_fft", "hop_length", "transform_hidden", "embed_dim"):
        if not isinstance(cfg[field], int) or cfg[field] <= 0:
            raise ExtractorConfigError(f"extractors.{key}.{field} = {cfg[field]!r}; must be a positive integer")
    ckpt = checkpoint_path(key, cfg, OFFICIAL_FILE, OFFICIAL_SOURCE)

    arch = Wav2CLIPConfig(**{**{k: cfg[k] for k in ARCH_KEYS}, "widths": tuple(widths), "blocks": tuple(blocks)})
    model = build_seeded(lambda: Wav2CLIP(arch), cfg["seed"])
    if ckpt is not None:
        load_weights(model, _state_from_checkpoint(load_checkpoint(ckpt, key)), key, ckpt)
    return Wav2CLIPExtractor(model, model_id(NAME, cfg, ARCH_KEYS, ckpt), cfg["sample_rate"], device,
                             cfg["batch_size"])
