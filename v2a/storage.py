"""Every location is a URI (local path, file://, s3://, ...); these helpers hide fsspec and write atomically."""

from __future__ import annotations

import posixpath
import uuid
from contextlib import contextmanager

import fsspec


def filesystem(uri: str):
    fs, path = fsspec.core.url_to_fs(str(uri))
    return fs, path


def join(base: str, *parts: str) -> str:
    base = str(base)
    return posixpath.join(base, *parts) if "://" in base else str(__import__("pathlib").Path(base, *parts))


def exists(uri: str) -> bool:
    fs, path = filesystem(uri)
    return fs.exists(path)


def makedirs(uri: str) -> None:
    fs, path = filesystem(uri)
    fs.makedirs(path, exist_ok=True)


@contextmanager
def atomic_write(uri: str, mode: str = "wb"):
    """Write to a temporary sibling, then rename: readers never see a half-written file."""
    fs, path = filesystem(uri)
    parent = posixpath.dirname(path)
    if parent:
        fs.makedirs(parent, exist_ok=True)
    tmp = posixpath.join(parent, f".{posixpath.basename(path)}.tmp-{uuid.uuid4().hex[:8]}")
    try:
        with fs.open(tmp, mode) as handle:
            yield handle
        fs.mv(tmp, path)
    except BaseException:
        if fs.exists(tmp):
            fs.rm(tmp)
        raise


def list_files(uri: str, suffix: str) -> list[str]:
    """Files under a folder ending in suffix (temporary files skipped), as URIs in sorted order."""
    fs, path = filesystem(uri)
    if not fs.exists(path):
        return []
    if fs.isfile(path):
        return [str(uri)]
    protocol = fs.protocol[0] if isinstance(fs.protocol, (tuple, list)) else fs.protocol
    found = sorted(p for p in fs.find(path) if p.endswith(suffix) and not posixpath.basename(p).startswith("."))
    if "://" in str(uri):
        return [f"{protocol}://{p}" if not p.startswith(f"{protocol}://") else p for p in found]
    return found
