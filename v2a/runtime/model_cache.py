"""One instance of each model per process: stages and tasks ask for them here instead of rebuilding.

"One per process" holds whatever the concurrency. Shard tasks run in threads (the thread runner, a Dask
worker with several threads), and at the start of a run several of them miss the cache at once. A plain
`functools.lru_cache` lets each of them build the model: two copies of AudioLDM on one GPU, and two
threads racing through the libraries' lazy imports (a fresh process failed with
`cannot import name 'AutoencoderKL' from 'diffusers'`). So each cached function here builds a key
exactly once, under a lock of that key: the other threads wait for that build and share its result,
and different keys still build in parallel. The model libraries are imported before any build
(v2a.runtime.imports).
"""

from __future__ import annotations

import functools
import inspect
import threading
from collections import OrderedDict, namedtuple

from v2a.runtime import trace
from v2a.runtime.imports import import_model_libraries, imported

_LOCKS: dict[tuple, threading.Lock] = {}
_GUARD = threading.Lock()

CacheInfo = namedtuple("CacheInfo", "hits misses maxsize currsize")


def built_once(maxsize: int):
    """Like `functools.lru_cache(maxsize)`, but a key is built by one thread only while others wait for it."""

    def wrap(build):
        values: OrderedDict = OrderedDict()
        key_locks: dict = {}
        guard = threading.Lock()
        counts = {"hits": 0, "misses": 0}
        signature = inspect.signature(build)

        @functools.wraps(build)
        def cached(*args, **kwargs):
            # Keyed on the bound arguments: get_model(p, "clip") and get_model(p, "clip", device="cpu") are one model.
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            key = tuple(bound.arguments.items())
            with guard:
                if key in values:
                    values.move_to_end(key)
                    counts["hits"] += 1
                    return values[key]
                lock = key_locks.setdefault(key, threading.Lock())
            with lock:  # the first thread builds; the others wait here, then find the value
                with guard:
                    if key in values:
                        counts["hits"] += 1
                        return values[key]
                value = build(*args, **kwargs)
                with guard:
                    counts["misses"] += 1
                    values[key] = value
                    while len(values) > maxsize:
                        evicted, _ = values.popitem(last=False)
                        key_locks.pop(evicted, None)
                return value

        def cache_clear() -> None:
            with guard:
                values.clear()
                key_locks.clear()
                counts.update(hits=0, misses=0)

        def cache_info() -> CacheInfo:
            with guard:
                return CacheInfo(counts["hits"], counts["misses"], maxsize, len(values))

        cached.cache_clear, cached.cache_info = cache_clear, cache_info
        return cached

    return wrap


def _before_build(what: str) -> None:
    if not imported():
        # A flow imports the libraries before its tasks start; a build that finds them missing comes from
        # library code used directly (or a flow that forgot): still safe, since the import takes a lock.
        trace.record("late-import", what)
        import_model_libraries()
    trace.record("build", what)


@built_once(maxsize=16)
def get_model(profile: str, component: str, device: str = "cpu"):
    from v2a.models.profile import load_profile
    from v2a.models.profile_weights import ensure_weights

    prof = load_profile(profile)
    # registry weights this component needs: fetched now when online; offline, a one-line error naming
    # the field, before the model libraries are even imported
    ensure_weights(prof, [component.replace("extractor:", "extractors.")], profile_name=profile)
    _before_build(f"{profile}/{component}/{device}")
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


@built_once(maxsize=4)
def _load_mapper(checkpoint_dir: str, device: str, weights_fingerprint: str):
    from v2a.mapper.checkpoint import load_mapper

    trace.record("build", f"mapper/{checkpoint_dir}/{device}")
    return load_mapper(checkpoint_dir, device=device)


@built_once(maxsize=4)
def empty_text_embedding(profile: str, device: str = "cpu"):
    """AudioLDM's unconditional embedding: the CLAP text embedding of the empty string."""
    trace.record("build", f"{profile}/empty-text/{device}")
    return get_model(profile, "generator", device).encode_text([""])[0]
