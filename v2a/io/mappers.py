"""Mapper checkpoints under a run's OUT: which folder a run's generations were made with."""

from __future__ import annotations

import json
import posixpath

from v2a.io.layout import RunLayout
from v2a.core import storage
from v2a.core.checkpoints import CONFIG_NAME, WEIGHTS_NAME, checkpoint_id


def find_mapper(runs_root: str, wanted_id: str | None, kind: str | None) -> tuple[str | None, dict | None, bool]:
    """(folder, config.json, exact) of the mapper a run used.

    The generations table names the checkpoint by the hash of its weights; a folder with the run's
    mapper name but other weights (trained again since) is still returned, flagged as not exact.
    """
    root = RunLayout(runs_root).mappers
    fs, root_path = storage.filesystem(root)
    if not fs.exists(root_path):
        return None, None, True
    # Folders are named from `root` as given (relative or a URI), not as the filesystem lists them.
    names = sorted(posixpath.basename(p.rstrip("/")) for p in fs.ls(root_path, detail=False) if fs.isdir(p))
    folders = [storage.join(root, n) for n in names if storage.exists(storage.join(root, n, CONFIG_NAME))]
    by_name = None
    for folder in folders:
        weights = storage.join(folder, WEIGHTS_NAME)
        if wanted_id and storage.exists(weights) and checkpoint_id(weights) == wanted_id:
            return folder, _read_json(storage.join(folder, CONFIG_NAME)), True
        if kind and posixpath.basename(folder) == kind:
            by_name = folder
    if by_name is not None:
        return by_name, _read_json(storage.join(by_name, CONFIG_NAME)), False
    return None, None, True


def _read_json(uri: str) -> dict:
    fs, path = storage.filesystem(uri)
    with fs.open(path, "r") as handle:
        return json.load(handle)
