"""A profile's checkpoints in the weights registry: which entries it names, and making sure they are in the
cache (fetched online, or a one-line error naming the field and the fetch command offline) before a model
is built."""

from __future__ import annotations

import logging

from v2a.models.profile import CheckpointNotFoundError, load_profile, weight_fields
from v2a.weights.cache import entry_for_path, status
from v2a.weights.fetch import USABLE, fetch_command, fetch_entry, offline
from v2a.weights.registry import Entry, registry

log = logging.getLogger(__name__)


def profile_refs(profile: str) -> list[tuple[str, str, Entry | None]]:
    """``(field, value, entry)`` for every checkpoint field of a profile, before resolution."""
    entries = registry()
    return [(f, v, entries.get(v)) for f, v in weight_fields(load_profile(profile, resolve_weights=False))]


def profile_entries(profile: str) -> list[Entry]:
    seen = {}
    for _, _, entry in profile_refs(profile):
        if entry is not None:
            seen.setdefault(entry.name, entry)
    return list(seen.values())


def ensure_weights(profile: dict, components=None, profile_name: str | None = None, progress: bool = True) -> None:
    """Before building: each registry file the named components use is in the cache, else it is
    fetched now (online) or the call fails at once naming the field and the fetch command (offline).

    ``components``: "clip", "clap", "generator", "extractors" or "extractors.NAME" (None: all).
    """
    name = profile_name or profile.get("name")
    for field, value in weight_fields(profile):
        if components is not None and not any(field == c or field.startswith(c.replace(":", ".") + ".")
                                              for c in components):
            continue
        entry = entry_for_path(value)
        if entry is None:
            continue
        st = status(entry)
        if st.state in USABLE:
            continue
        if offline():
            raise CheckpointNotFoundError(
                field, entry.name, f"{st.state} in the weights cache ({st.path}{'; ' + st.detail if st.detail else ''})"
                " and offline mode is on", fetch=fetch_command(profile=name) if name else fetch_command([entry.name]))
        log.warning("%s (profile field %s) is %s in the weights cache: fetching it now from %s", entry.name, field,
                    st.state, entry.where)
        fetch_entry(entry, progress=progress)


__all__ = ["ensure_weights", "profile_entries", "profile_refs"]
