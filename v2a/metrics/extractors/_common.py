"""What the three metric extractors share: section checking, seeded random weights, checkpoint files."""

from __future__ import annotations

import logging
import pickle
import re
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import torch
from torch import nn

from v2a.core.checkpoints import checkpoint_id
from v2a.core.seeds import seeded_global_rng
from v2a.core.fingerprint import short_digest
from v2a.metrics import audio

log = logging.getLogger(__name__)

# Keys every extractor section accepts besides its architecture sizes.
COMMON_KEYS = ("pretrained", "checkpoint", "seed", "batch_size")


class ExtractorConfigError(ValueError):
    """A profile's `extractors.<name>` section has an unknown field or a bad value."""


class MissingCheckpointError(FileNotFoundError):
    """A pretrained extractor's checkpoint is not set or not on disk."""


class CheckpointFormatError(RuntimeError):
    """A checkpoint cannot be read safely or does not fit the architecture."""


def resolve_section(name: str, section: dict | None, defaults: dict[str, Any]) -> dict[str, Any]:
    """The section merged over the extractor's defaults, with unknown fields rejected by name."""
    section = dict(section or {})
    accepted = set(defaults) | set(COMMON_KEYS)
    unknown = sorted(set(section) - accepted)
    if unknown:
        raise ExtractorConfigError(
            f"extractors.{name}: unknown field(s) {unknown}; accepted: {sorted(accepted)}")
    merged = {"pretrained": False, "checkpoint": None, "seed": 0, "batch_size": 8, **defaults, **section}
    if not isinstance(merged["batch_size"], int) or merged["batch_size"] <= 0:
        raise ExtractorConfigError(f"extractors.{name}.batch_size = {merged['batch_size']!r}; must be a positive integer")
    return merged


def int_list(name: str, field: str, value, length: int | None = None) -> list[int]:
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, int) and v > 0 for v in value):
        raise ExtractorConfigError(f"extractors.{name}.{field} = {value!r}; must be a list of positive integers")
    if length is not None and len(value) != length:
        raise ExtractorConfigError(f"extractors.{name}.{field} = {value!r}; must have {length} entries")
    return [int(v) for v in value]


def checkpoint_path(name: str, cfg: dict, official_file: str, where: str) -> Path | None:
    """The checkpoint to load, None for random weights; raises at once when a pretrained one is missing."""
    raw = cfg.get("checkpoint")
    if not cfg.get("pretrained") and not raw:
        return None
    if not raw:
        raise MissingCheckpointError(
            f"extractors.{name}.checkpoint is not set: this profile uses the official weights "
            f"({official_file}, from {where}). Download the file and set extractors.{name}.checkpoint "
            "to its local path in the profile.")
    path = Path(str(raw)).expanduser()
    if not path.is_file():
        raise MissingCheckpointError(
            f"extractors.{name}.checkpoint = {str(raw)!r}: no such file. Expected the official weights "
            f"{official_file} (from {where}); fix the path in the profile's extractors.{name}.checkpoint.")
    return path


def model_id(name: str, cfg: dict, arch_keys: Sequence[str], checkpoint: Path | None) -> str:
    """Names the exact weights, so cached reference statistics never mix two models."""
    if checkpoint is not None:
        return f"{name}@{checkpoint.name}:{checkpoint_id(checkpoint)}"
    arch = {k: cfg[k] for k in sorted(arch_keys)}
    return f"{name}@random-seed{cfg['seed']}:{short_digest({'arch': arch, 'seed': cfg['seed']}, 10)}"


def init_random_(module: nn.Module) -> nn.Module:
    """He-normal (fan-in, ReLU gain) weights, zero biases, unit BatchNorm.

    Only used for random-weight profiles. Variance-preserving init keeps features of a deep,
    untrained net spread out (with PyTorch's default or Xavier init they shrink layer by layer
    until every clip embeds to nearly the same vector and FD is ~0 whatever the audio). Conv1d is
    left alone on purpose: the PANNs front end's STFT is a Conv1d holding the fixed DFT basis.
    """
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
    return module


def build_seeded(builder, seed: int, init=None) -> nn.Module:
    """Build and randomly initialise a module from a fixed seed, leaving the global RNG state alone.
    `init`: the architecture's own random initialisation (default: `init_random_`)."""
    with seeded_global_rng(seed):
        return (init or init_random_)(builder())


# Objects found in training checkpoints beside the weights (e.g. PANNs' sampler state holds numpy
# arrays and a RandomState tuple). Allowing numpy's array reconstruction keeps torch's restricted
# `weights_only` unpickler in charge; nothing outside this list can be instantiated.
def _numpy_safe_globals() -> list:
    import numpy.dtypes as np_dtypes

    try:
        from numpy._core.multiarray import _reconstruct, scalar
    except ImportError:  # numpy < 2
        from numpy.core.multiarray import _reconstruct, scalar
    items: list = [np.ndarray, np.dtype, _reconstruct, scalar,
                   (_reconstruct, "numpy.core.multiarray._reconstruct"),
                   (scalar, "numpy.core.multiarray.scalar")]
    for dtype_name in ("Float64DType", "Float32DType", "Int64DType", "Int32DType", "UInt32DType",
                       "UInt8DType", "BoolDType"):
        if hasattr(np_dtypes, dtype_name):
            items.append(getattr(np_dtypes, dtype_name))
    return items


def load_checkpoint(path: Path, name: str) -> dict:
    """Read a checkpoint without ever running the general unpickler.

    `.safetensors` files are read with safetensors; anything else with
    `torch.load(weights_only=True)`, retried with numpy arrays allowed.
    """
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return dict(load_file(str(path), device="cpu"))
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        pass
    try:
        with torch.serialization.safe_globals(_numpy_safe_globals()):
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        # Quote only torch's diagnosis, not its advice to switch to weights_only=False.
        found = re.search(r"WeightsUnpickler error: ([^\n]*)", str(err))
        detail = found.group(1).strip() if found else "unsupported object"
        raise CheckpointFormatError(
            f"extractors.{name}.checkpoint = {str(path)!r} holds objects that torch.load(weights_only=True) "
            f"refuses ({detail}). v2a never unpickles arbitrary objects; in an environment you trust, save the "
            "checkpoint's state_dict to a .safetensors file and point the profile at that.") from err


def load_weights(module: nn.Module, state: dict[str, torch.Tensor], name: str, path: Path) -> None:
    """Strict load with an error that lists what did not line up."""
    own = module.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    bad_shape = sorted(k for k in set(own) & set(state) if tuple(own[k].shape) != tuple(state[k].shape))
    if missing or unexpected or bad_shape:
        raise CheckpointFormatError(
            f"extractors.{name}.checkpoint = {str(path)!r} does not fit the architecture in the profile: "
            f"missing {missing[:8]}{'...' if len(missing) > 8 else ''}, "
            f"unexpected {unexpected[:8]}{'...' if len(unexpected) > 8 else ''}, "
            f"wrong shape {bad_shape[:8]}{'...' if len(bad_shape) > 8 else ''}")
    module.load_state_dict(state, strict=True)


class Extractor:
    """Base for the metric extractors: a frozen network behind `embed(waveforms)`.

    Waveforms are mono arrays at `sample_rate`; pass `sample_rate=` to `embed` for audio at
    another rate and it is resampled by `v2a.metrics.audio.resample`.
    """

    name: str
    sample_rate: int
    model_id: str
    model: nn.Module

    def __init__(self, model: nn.Module, model_id: str, device: str, batch_size: int):
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.model_id = model_id
        self.batch_size = batch_size

    @property
    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.model.parameters())

    def _inputs(self, waveforms, sample_rate: int | None) -> list[np.ndarray]:
        sr = self.sample_rate if sample_rate is None else sample_rate
        return [audio.prepare(w, sr, self.sample_rate, None) for w in waveforms]

    def _batches(self, waves: list[np.ndarray]) -> Iterator[list[np.ndarray]]:
        """Consecutive groups of at most batch_size equal-length clips (stacking needs one length)."""
        group: list[np.ndarray] = []
        for w in waves:
            if group and (len(group) == self.batch_size or len(w) != len(group[0])):
                yield group
                group = []
            group.append(w)
        if group:
            yield group

    def _tensor(self, group: list[np.ndarray]) -> torch.Tensor:
        return torch.from_numpy(np.stack(group)).to(self.device)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.model_id}, {self.sample_rate} Hz)"


class ClassifierExtractor(Extractor):
    """An extractor whose network gives a clip embedding and AudioSet logits in one pass (Cnn14, PaSST).

    A subclass says how its waves become the network's input (`_fit`) and which output is which (`_forward`)."""

    embedding_dim: int
    num_classes: int

    def _fit(self, waves: list[np.ndarray]) -> list[np.ndarray]:
        return waves

    def _forward(self, batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(embeddings, logits) of one batch."""
        raise NotImplementedError

    @torch.inference_mode()
    def embed_and_logits(self, waveforms, sample_rate: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        feats, logits = [], []
        for group in self._batches(self._fit(self._inputs(waveforms, sample_rate))):
            f, lg = self._forward(self._tensor(group))
            feats.append(f.float().cpu().numpy())
            logits.append(lg.float().cpu().numpy())
        if not feats:
            return (np.zeros((0, self.embedding_dim), np.float32), np.zeros((0, self.num_classes), np.float32))
        return np.concatenate(feats), np.concatenate(logits)

    def embed(self, waveforms, sample_rate: int | None = None) -> np.ndarray:
        return self.embed_and_logits(waveforms, sample_rate)[0]

    def logits(self, waveforms, sample_rate: int | None = None) -> np.ndarray:
        return self.embed_and_logits(waveforms, sample_rate)[1]
