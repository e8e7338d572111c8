"""``torch.load(weights_only=True)`` for checkpoints that also pickle objects, without running them.

A PyTorch-Lightning checkpoint (AudioLDM's original ``.ckpt`` files among them) may pickle more than
tensors next to its ``state_dict``: hyper-parameters (omegaconf containers), callback and loop
states, numpy scalars. ``torch.load(weights_only=True)`` refuses every global outside its allow-list.
``load_weights_only`` first tries exactly that; when it is refused, it lists the globals the file
names with ``torch.serialization.get_unsafe_globals_in_checkpoint`` (a static scan of the pickle
opcodes: nothing is executed) and allow-lists each *name* as an inert placeholder class of ours
(``torch.serialization.safe_globals([(placeholder, name)])``), never the named class or function
itself. The weights-only reader then rebuilds tensors as usual, and wherever the file would have
called or built one of those globals, a placeholder that ignores its arguments stands instead.
Modules torch blocks outright (``os``, ``sys``, ...) stay refused.
"""

from __future__ import annotations

import logging
import pickle
from pathlib import Path

import torch

log = logging.getLogger(__name__)


class Inert:
    """What a refused global becomes: built from the pickled arguments, it runs none of the named
    code and keeps nothing."""

    def __new__(cls, *args, **kwargs):
        return object.__new__(cls)

    def __init__(self, *args, **kwargs):
        pass

    def __setstate__(self, state):
        pass


def _inert_for(name: str) -> type:
    return type(f"Inert[{name}]", (Inert,), {"__module__": __name__, "__qualname__": f"Inert[{name}]"})


def _torch_load(path: Path):
    try:  # a zip-format file is memory-mapped: a 2.7 GB AudioLDM checkpoint is not copied into memory first
        return torch.load(str(path), map_location="cpu", weights_only=True, mmap=True)
    except RuntimeError as exc:
        if "mmap" not in str(exc):
            raise
        return torch.load(str(path), map_location="cpu", weights_only=True)


def _first_line(exc: BaseException) -> str:
    text = str(exc)
    return text.splitlines()[0] if text else exc.__class__.__name__


def load_weights_only(path: str | Path) -> tuple[object, list[str]]:
    """(the unpickled object, the globals read as placeholders). Raises RuntimeError, naming the file
    and the reason, when even that is refused."""
    path = Path(path)
    try:
        return _torch_load(path), []
    except pickle.UnpicklingError as exc:
        refusal = exc
    except Exception as exc:  # noqa: BLE001 - re-raised with the file's name
        raise RuntimeError(f"{path}: cannot be read as a PyTorch checkpoint ({exc.__class__.__name__}: "
                           f"{_first_line(exc)})") from exc
    advice = ("v2a never unpickles arbitrary objects; convert the checkpoint to .safetensors (or a plain tensor "
              "state dict) with a trusted script.")
    try:  # only torch.save's zip format can be scanned
        names = sorted(torch.serialization.get_unsafe_globals_in_checkpoint(str(path)))
    except Exception as exc:  # noqa: BLE001
        raise RuntimeError(f"{path}: cannot be read with torch.load(weights_only=True) ({_first_line(refusal)}). "
                           + advice) from exc
    if not names:
        raise RuntimeError(f"{path}: cannot be read with torch.load(weights_only=True) ({_first_line(refusal)}). "
                           + advice) from refusal
    log.info("%s: %d non-tensor globals read as inert placeholders: %s", path, len(names), ", ".join(names))
    try:
        with torch.serialization.safe_globals([(_inert_for(name), name) for name in names]):
            return _torch_load(path), names
    except Exception as exc:  # noqa: BLE001
        raise RuntimeError(f"{path}: cannot be read with torch.load(weights_only=True), even with the globals it "
                           f"names ({', '.join(names)}) read as inert placeholders ({_first_line(exc)}). "
                           + advice) from exc
