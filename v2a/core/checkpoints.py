"""What names a mapper checkpoint: its two files and its id.

A checkpoint is a folder with `config.json` (architecture and training record) and `model.safetensors`.
Its id is the first 12 hex digits of the weights' sha256: the generations table records it, and the
evaluation and the listening report find the mapper of a run by it, so it is computed here only.
"""

from __future__ import annotations

from v2a.core import storage

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
ID_LENGTH = 12


def checkpoint_id(weights_uri) -> str:
    """The id of the weights file at `weights_uri` (a path or any fsspec URI)."""
    return storage.sha256_of(weights_uri)[:ID_LENGTH]
