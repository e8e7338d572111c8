"""The weights registry: every checkpoint a profile can name, as data (``registry.yaml``).

An entry says where a checkpoint comes from (a Hugging Face repo, a Zenodo record or a plain
URL), what it is stored as, the publisher's size and checksum where there is one, its licence and
the profile field it fills. Profiles refer to entries by name; ``v2a.weights.cache`` says where an
entry lives on disk and ``v2a.weights.fetch`` brings it there. No torch here: reading the table
stays cheap.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import yaml

REGISTRY_FILE = Path(__file__).resolve().parent / "registry.yaml"
SOURCE_KINDS = ("hf", "zenodo", "url")


class RegistryError(ValueError):
    """An unknown entry name or a malformed registry entry."""


@dataclass(frozen=True)
class Entry:
    name: str
    description: str
    source: dict
    fills: tuple[str, ...]
    licence: str
    file: str | None = None          # single-file entries: the name it is stored under
    size: int | None = None          # bytes, where the publisher states it
    sha256: str | None = None
    sha256_prefix: str | None = None
    md5: str | None = None
    reference: str = ""
    note: str = ""
    aliases: tuple[str, ...] = field(default_factory=tuple)  # older ways of naming it (hub ids, open_clip tags)

    @property
    def kind(self) -> str:
        return next(k for k in SOURCE_KINDS if k in self.source)

    @property
    def is_snapshot(self) -> bool:
        """A folder (a hub repo's files) rather than one file."""
        return self.kind == "hf" and "path" not in self.source

    @property
    def where(self) -> str:
        """The source in words, for listings and errors."""
        src = self.source
        if self.kind == "hf":
            return f"huggingface.co/{src['hf']}" + (f"/{src['path']}" if "path" in src else "")
        if self.kind == "zenodo":
            return f"zenodo.org/records/{src['zenodo']} ({src['key']})"
        return src["url"]

    @property
    def stored_name(self) -> str:
        """The file (or folder) name inside the entry's cache folder."""
        if self.is_snapshot:
            return ""
        if self.file:
            return self.file
        if self.kind == "hf":
            return Path(self.source["path"]).name
        if self.kind == "zenodo":
            return self.source["key"]
        return Path(self.source["url"].split("?")[0]).name


_FIELDS = {"description", "source", "fills", "licence", "file", "size", "sha256", "sha256_prefix", "md5",
           "reference", "note", "aliases"}


def make_entry(name: str, raw: dict) -> Entry:
    """One entry from its registry-table form (checked)."""
    if not isinstance(raw, dict):
        raise RegistryError(f"registry entry {name!r}: expected a mapping")
    unknown = sorted(set(raw) - _FIELDS)
    if unknown:
        raise RegistryError(f"registry entry {name!r}: unknown field(s) {unknown}")
    source = raw.get("source") or {}
    kinds = [k for k in SOURCE_KINDS if k in source]
    if len(kinds) != 1:
        raise RegistryError(f"registry entry {name!r}: source needs exactly one of {list(SOURCE_KINDS)}")
    if kinds[0] == "zenodo" and "key" not in source:
        raise RegistryError(f"registry entry {name!r}: a zenodo source needs `key` (the file in the record)")
    if kinds[0] == "hf" and "path" in source and "include" in source:
        raise RegistryError(f"registry entry {name!r}: an hf source has `path` (one file) or `include`, not both")
    if "/" in name or not name:
        raise RegistryError(f"registry entry {name!r}: names have no '/' (they would read as hub ids)")
    return Entry(name=name, description=raw.get("description", ""), source=dict(source),
                 fills=tuple(raw.get("fills") or ()), licence=raw.get("licence", "unknown"),
                 file=raw.get("file"), size=raw.get("size"), sha256=raw.get("sha256"),
                 sha256_prefix=raw.get("sha256_prefix"), md5=raw.get("md5"), reference=raw.get("reference", ""),
                 note=raw.get("note", ""), aliases=tuple(raw.get("aliases") or ()))


def load_registry(path: str | Path | None = None) -> dict[str, Entry]:
    """All entries, by name. ``path`` reads another table (tests)."""
    if path is None:
        return dict(_default_registry())
    with open(path, encoding="utf-8") as fh:
        raw = yaml.safe_load(fh) or {}
    return {name: make_entry(name, value) for name, value in raw.items()}


@lru_cache(maxsize=1)
def _default_registry() -> tuple:
    return tuple(load_registry(REGISTRY_FILE).items())


_OVERRIDE: dict[str, Entry] | None = None


def registry() -> dict[str, Entry]:
    """The registry in use: the shipped table, unless ``use_registry`` set another (tests)."""
    return dict(_OVERRIDE) if _OVERRIDE is not None else load_registry()


def use_registry(entries: dict[str, Entry] | None) -> None:
    """Replace the registry for this process (None: back to the shipped table)."""
    global _OVERRIDE
    _OVERRIDE = dict(entries) if entries is not None else None


def get_entry(name: str) -> Entry:
    entries = registry()
    if name not in entries:
        raise RegistryError(f"no weights entry {name!r}; known: {sorted(entries)}")
    return entries[name]


def find_entry(ref: str) -> Entry | None:
    """The entry a reference names: its own name, or one of its aliases (a hub id, an open_clip tag)."""
    entries = registry()
    if ref in entries:
        return entries[ref]
    return next((e for e in entries.values() if ref in e.aliases), None)
