"""Where fetched weights live, what was recorded about them, and whether they are intact.

The cache folder is, first that is set: ``V2A_WEIGHTS_DIR``; ``$V2A_HOME/weights``;
``$HF_HOME/v2a-weights`` (beside the Hugging Face cache a user has already put on a big disk);
``$XDG_CACHE_HOME/v2a/weights``; ``~/.cache/v2a/weights``. Each entry has a folder of its own
named after it, holding the file (or the repo's files) and ``.v2a-weights.json``, the manifest
written when a fetch completes: every file's size and sha256 and what they were checked against.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from v2a.core import storage
from v2a.weights.registry import Entry, registry

MANIFEST = ".v2a-weights.json"
PART_SUFFIX = ".part"


def cache_dir() -> Path:
    env = os.environ
    if env.get("V2A_WEIGHTS_DIR"):
        return Path(env["V2A_WEIGHTS_DIR"]).expanduser()
    if env.get("V2A_HOME"):
        return Path(env["V2A_HOME"]).expanduser() / "weights"
    if env.get("HF_HOME"):
        return Path(env["HF_HOME"]).expanduser() / "v2a-weights"
    base = Path(env["XDG_CACHE_HOME"]).expanduser() if env.get("XDG_CACHE_HOME") else Path.home() / ".cache"
    return base / "v2a" / "weights"


def entry_dir(entry: Entry, root: Path | None = None) -> Path:
    return (root or cache_dir()) / entry.name


def entry_path(entry: Entry, root: Path | None = None) -> Path:
    """What a profile field naming the entry resolves to: the file, or the snapshot folder."""
    folder = entry_dir(entry, root)
    return folder / entry.stored_name if entry.stored_name else folder


def entry_for_path(path: str | os.PathLike) -> Entry | None:
    """The entry whose cache folder holds ``path`` (None for any other path)."""
    try:
        rel = Path(os.path.abspath(os.path.expanduser(str(path)))).relative_to(os.path.abspath(cache_dir()))
    except ValueError:
        return None
    return registry().get(rel.parts[0]) if rel.parts else None


def read_manifest(entry: Entry, root: Path | None = None) -> dict | None:
    path = entry_dir(entry, root) / MANIFEST
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, json.JSONDecodeError):
        return {"files": {}, "unreadable": True}


def write_manifest(entry: Entry, manifest: dict, root: Path | None = None) -> None:
    folder = entry_dir(entry, root)
    folder.mkdir(parents=True, exist_ok=True)
    with storage.atomic_write(str(folder / MANIFEST)) as handle:
        handle.write(json.dumps(manifest, indent=1, sort_keys=True).encode("utf-8"))


@dataclass
class Status:
    """One entry's state on disk. ``state``: present | missing | partial | corrupt | unverified."""

    entry: Entry
    state: str
    size: int | None          # bytes on disk (all files of a snapshot)
    expected: int | None      # bytes the manifest or the publisher says
    detail: str = ""
    path: Path | None = None


def _files_size(folder: Path, names) -> int:
    return sum((folder / n).stat().st_size for n in names if (folder / n).is_file())


def status(entry: Entry, root: Path | None = None) -> Status:
    """Cheap: sizes only. ``v2a.weights.fetch.verify`` reads every byte."""
    folder, target = entry_dir(entry, root), entry_path(entry, root)
    manifest = read_manifest(entry, root)
    parts = sorted(p for p in folder.rglob("*" + PART_SUFFIX) if p.name != MANIFEST + PART_SUFFIX) \
        if folder.is_dir() else []
    partial = f"; {sum(p.stat().st_size for p in parts)} bytes of an interrupted download (fetch resumes it)" \
        if parts else ""
    if manifest and manifest.get("unreadable"):
        return Status(entry, "corrupt", None, None, f"{MANIFEST} is unreadable; fetch again", target)
    if manifest:
        files = manifest.get("files", {})
        expected = sum(int(f["size"]) for f in files.values())
        missing = [n for n in files if not (folder / n).is_file()]
        wrong = [n for n in files if (folder / n).is_file() and (folder / n).stat().st_size != int(files[n]["size"])]
        size = _files_size(folder, files)
        flagged = [n for n in files if files[n].get("corrupt")]
        if wrong:
            return Status(entry, "corrupt", size, expected, f"wrong size: {', '.join(wrong)}", target)
        if flagged:
            return Status(entry, "corrupt", size, expected, f"checksum mismatch at the last verify: "
                                                            f"{', '.join(flagged)}", target)
        if missing:
            return Status(entry, "missing", size, expected,
                          f"{len(missing)} of {len(files)} file(s) gone: {', '.join(missing[:3])}{partial}", target)
        return Status(entry, "present", size, expected, "", target)
    if target.is_file():  # put there by hand: no record of a check yet
        size = target.stat().st_size
        if entry.size is not None and size != entry.size:
            return Status(entry, "corrupt", size, entry.size, "size differs from the publisher's", target)
        return Status(entry, "unverified", size, entry.size, "no fetch record; `v2a weights verify` checks it", target)
    return Status(entry, "partial" if parts else "missing", None, entry.size, partial.lstrip("; "), target)
