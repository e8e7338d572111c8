"""Small helpers shared by the model builders: device/dtype resolution, seeded init, safe loading."""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path

import torch

from v2a.core.seeds import seeded_global_rng

from .profile import CheckpointNotFoundError, hub_offline, looks_like_path

log = logging.getLogger(__name__)

_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def resolve_device(arg, section_device) -> torch.device:
    """The caller's device wins; else the profile's; else CPU."""
    return torch.device(arg if arg is not None else (section_device or "cpu"))


def resolve_dtype(name: str | None, device: torch.device, auto_cuda: torch.dtype = torch.float16) -> torch.dtype:
    """'auto' → ``auto_cuda`` on CUDA, float32 elsewhere; half precision on CPU falls back to float32."""
    if isinstance(name, torch.dtype):
        dtype = name
    elif name in (None, "auto"):
        dtype = auto_cuda if device.type == "cuda" else torch.float32
    else:
        dtype = _DTYPES[name]
    if device.type == "cpu" and dtype != torch.float32:
        log.warning("dtype %s requested on CPU; using float32", dtype)
        dtype = torch.float32
    return dtype


@contextlib.contextmanager
def seeded(seed: int):
    """Seed torch for a random init without disturbing the caller's global RNG state (nor another thread's)."""
    with seeded_global_rng(seed):
        yield


def local_path(ref: str) -> Path:
    return Path(os.path.expanduser(ref))


def require_file(ref: str, field: str) -> Path:
    """A local checkpoint that must exist; fails at once, naming the profile field."""
    path = local_path(ref)
    if not path.exists():
        raise CheckpointNotFoundError(field, ref, f"no such file or directory: {path}")
    return path


def hub_cached(repo_id: str, filename: str) -> str | None:
    """Path of a file of a hub repo in the local HF cache, or None. Never touches the network."""
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:  # pragma: no cover - huggingface_hub ships with transformers/diffusers
        return None
    found = try_to_load_from_cache(repo_id, filename)
    return found if isinstance(found, str) else None


def require_hub_or_fail(repo_id: str, filename: str, field: str) -> None:
    """Offline, a hub reference must already be in the local cache; fail now, not after retries."""
    if hub_offline() and hub_cached(repo_id, filename) is None:
        raise CheckpointNotFoundError(
            field, repo_id, f"HF_HUB_OFFLINE is set and {repo_id}/{filename} is not in the local hub cache")


def load_state_dict_file(path: Path) -> dict:
    """Read tensors from a checkpoint without unpickling arbitrary objects.

    ``.safetensors`` via safetensors; anything else through ``torch.load(weights_only=True)``, with
    non-tensor objects read as inert placeholders (``safe_load``).
    Lightning-style ``{"state_dict": ...}`` and ``{"model": ...}`` wrappers are unwrapped.
    """
    path = Path(path)
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file
        sd = load_file(str(path), device="cpu")
    else:
        from .safe_load import load_weights_only

        sd, _ = load_weights_only(path)  # objects beside the tensors become inert placeholders
    for key in ("state_dict", "model"):
        if isinstance(sd, dict) and key in sd and isinstance(sd[key], dict):
            sd = sd[key]
    if not isinstance(sd, dict):
        raise RuntimeError(f"{path}: expected a state dict, found {type(sd).__name__}")
    return sd


def provenance_id(model_id: str, weights: str | None, seed: int) -> str:
    """The id recorded with every embedding / waveform: architecture plus where its weights came from."""
    if weights is None:
        return f"{model_id}@random-seed{seed}"
    if looks_like_path(weights):
        from v2a.weights.cache import entry_for_path

        entry = entry_for_path(weights)  # a file from the weights cache: its registry name, the same on every machine
        ref = entry.name if entry is not None else Path(weights).name  # a local file: its name, not the path
    else:
        ref = weights
    return model_id if ref == model_id else f"{model_id}@{ref}"


def count_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
