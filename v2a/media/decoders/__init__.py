"""Video decoding behind one interface: ``decode(uri, sampling, backend=...)``.

Backends: ``pyav`` (always installed; one pass over the file), ``decord`` and ``torchcodec``
(optional). All return the same frames (the frame played at each target time, turned upright by
the file's display matrix or ``rotate`` tag) and the same 16 kHz mono audio (``base.to_mono``), so
a backend is a speed choice, not a results choice. ``auto`` takes the first installed one of
``PREFERENCE`` (benchmarks/README.md, "Embedding stage", has the measurements behind the order).
"""

from __future__ import annotations

import importlib
from functools import lru_cache

from .base import CLAP_SECONDS, DecodedClip, MediaError, Sampling, Source, target_times

BACKENDS = ("pyav", "decord", "torchcodec")
# benchmarks/bench_embed.py on 10-s 640x360 25 fps clips: torchcodec fastest; PyAV and decord level
# within noise, and PyAV (one pass, always installed) is the reference the others are tested against.
# decord is never chosen by `auto`: it is no faster than PyAV and cannot decode AV1 or some small frame
# widths, and its rotated frames and 5.1 audio need the workarounds in decord_backend.py.
PREFERENCE = ("torchcodec", "pyav")

__all__ = ["BACKENDS", "CLAP_SECONDS", "PREFERENCE", "DecodedClip", "MediaError", "Sampling", "Source",
           "available_backends", "decode", "resolve_backend", "target_times"]


def _module(name: str):
    return importlib.import_module(f".{name}_backend", __name__)


@lru_cache(maxsize=None)
def _is_available(name: str) -> bool:
    mod = _module(name)
    return mod.available() if hasattr(mod, "available") else True


def available_backends() -> list[str]:
    return [b for b in BACKENDS if _is_available(b)]


def resolve_backend(name: str | None = "auto") -> str:
    """'auto' (or None) → the fastest installed backend; a named one must be installed."""
    if name in (None, "auto"):
        return next(b for b in PREFERENCE if _is_available(b))
    if name not in BACKENDS:
        raise ValueError(f"decoder {name!r} unknown; accepted: auto, {', '.join(BACKENDS)}")
    if not _is_available(name):
        raise ValueError(f"decoder {name!r} is not installed here; installed: {', '.join(available_backends())}")
    return name


def decode(uri: str, sampling: Sampling, backend: str | None = "auto") -> DecodedClip:
    """Decode one video file with the chosen backend. Unusable files raise MediaError."""
    return _module(resolve_backend(backend)).decode(Source(uri), sampling)
