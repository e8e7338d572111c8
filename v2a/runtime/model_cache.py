"""One instance of each model per process: stages and tasks ask for them here instead of rebuilding."""

from __future__ import annotations

import threading
from functools import lru_cache

_LOCKS: dict[tuple, threading.Lock] = {}
_GUARD = threading.Lock()


@lru_cache(maxsize=16)
def get_model(profile: str, component: str, device: str = "cpu"):
    from v2a.models.profile import load_profile
    from v2a.models.profile_weights import ensure_weights

    prof = load_profile(profile)
    # registry weights this component needs: fetched now when online; offline, a one-line error naming
    # the field, before the model libraries are even imported
    ensure_weights(prof, [component.replace("extractor:", "extractors.")], profile_name=profile)
    from v2a.models import build_clap, build_clip, build_generator

    builders = {"clip": build_clip, "clap": build_clap, "generator": build_generator}
    if component in builders:
        return builders[component](prof[component], device=device)
    if component.startswith("extractor:"):
        from v2a.metrics.extractors import build_extractor

        name = component.split(":", 1)[1]
        return build_extractor(name, prof["extractors"][name], device=device)
    raise ValueError(f"unknown model component {component!r}")


def model_lock(profile: str, component: str, device: str = "cpu") -> threading.Lock:
    """Threads of one process share a model; this lock lets one use it at a time (and bounds GPU memory)."""
    key = (profile, component, device)
    with _GUARD:
        return _LOCKS.setdefault(key, threading.Lock())


def get_mapper(checkpoint_dir: str, device: str = "cpu"):
    from v2a.core import storage
    from v2a.core.fingerprint import fingerprint
    from v2a.mapper.checkpoint import WEIGHTS_NAME

    # Keyed on the weights file's state too: a folder retrained in place must not serve the old mapper.
    return _load_mapper(checkpoint_dir, device, fingerprint(storage.join(str(checkpoint_dir), WEIGHTS_NAME)))


@lru_cache(maxsize=4)
def _load_mapper(checkpoint_dir: str, device: str, weights_fingerprint: str):
    from v2a.mapper.checkpoint import load_mapper

    return load_mapper(checkpoint_dir, device=device)


@lru_cache(maxsize=4)
def empty_text_embedding(profile: str, device: str = "cpu"):
    """AudioLDM's unconditional embedding: the CLAP text embedding of the empty string."""
    return get_model(profile, "generator", device).encode_text([""])[0]
