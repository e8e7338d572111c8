"""Fingerprints of the data at a location: cheap to take, and they change when a file there changes.

They key the pipeline's cache on the state of a stage's inputs and let a cached result be checked
against the outputs it claims, without reading the data itself: a file counts by its size and its
store's own change token (S3's ETag, a local file's modification time), so a large table of
embeddings is never hashed byte by byte.
"""

from __future__ import annotations

import hashlib
import json
import posixpath

from v2a.core import storage

ABSENT = "absent"
# Change tokens fsspec back-ends report, most specific first: content hashes before times.
_TOKENS = ("ETag", "etag", "md5", "checksum", "mtime", "LastModified", "last_modified", "updated", "created")


def change_token(fs, path: str, info: dict) -> str:
    """A file's change token: its store's own (S3's ETag, a local modification time) plus the inode."""
    # Writes here are atomic renames, so a rewritten local file also has a new inode: two writes in
    # one clock tick still differ.
    inode = f",ino={info['ino']}" if info.get("ino") is not None else ""
    for key in _TOKENS:
        if info.get(key) is not None:
            return f"{key}={info[key]}{inode}"
    return f"ukey={fs.ukey(path)}"


def short_digest(obj, n: int) -> str:
    """The first `n` hex digits of a sha256: of a string's UTF-8 bytes, of bytes as they are, of a running
    `hashlib` hash, or else of the object's JSON (keys sorted, anything JSON lacks as its str). Every run id,
    cache key and part name is one of these, so each keeps the bytes it always had."""
    if hasattr(obj, "hexdigest"):
        h = obj
    else:
        if not isinstance(obj, (str, bytes)):
            obj = json.dumps(obj, sort_keys=True, default=str)
        h = hashlib.sha256(obj.encode() if isinstance(obj, str) else obj)
    return h.hexdigest()[:n]


def fingerprint(uri: str | None) -> str:
    """One string for a file or a folder (every file below it, hidden and temporary files aside).

    A missing location gives "absent", so "not there yet" is a state of its own.
    """
    if not uri:
        return ABSENT
    fs, path = storage.filesystem(str(uri))
    if not fs.exists(path):
        return ABSENT
    if fs.isfile(path):
        entries = {posixpath.basename(path): (path, fs.info(path))}
    else:
        root = path.rstrip("/") + "/"
        entries = {}
        for full, info in fs.find(path, detail=True).items():
            rel = full[len(root):] if full.startswith(root) else full
            if not any(part.startswith(".") for part in rel.split("/")):
                entries[rel] = (full, info)
    items = sorted((rel, info.get("size"), change_token(fs, full, info)) for rel, (full, info) in entries.items())
    return short_digest(items, 24)


def fingerprints(uris) -> dict[str, str]:
    return {str(u): fingerprint(u) for u in uris}


def changed(recorded: dict[str, str]) -> list[str]:
    """The locations whose fingerprint differs from the recorded one (vanished ones included)."""
    return [u for u, fp in recorded.items() if fingerprint(u) != fp]
