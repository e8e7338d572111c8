"""Caching of the stage tasks: keyed on their real inputs, checked against their outputs on a hit.

A task's key hashes its name and source, the v2a version, its parameters (URIs, shard ids,
settings), the resolved model profile it names, and the fingerprints of the locations it reads.
Tensors and models never enter a key: tasks build those themselves, and only when they run.

A cache hit is trusted only while the outputs it recorded are still there unchanged. Each cached
task returns `outputs` ({uri: fingerprint}); `call` and `map_calls` run a hit whose outputs have
since vanished or been overwritten (by a run with another configuration, say) again, with
`refresh_cache`, which also replaces the stale record.

Where the records live is the flow's `result_storage` (the pipeline sets it from `cache.location`);
`PREFECT_TASKS_REFRESH_CACHE=true` makes every task run again and rewrite its record.
"""

from __future__ import annotations

import dataclasses
import sys
from functools import lru_cache
from pathlib import Path

from prefect.cache_policies import TASK_SOURCE, CachePolicy

from v2a import __version__
from v2a.core import storage
from v2a.core.fingerprint import changed, fingerprint, short_digest


def profile_digest(profile: str) -> str:
    """The resolved profile's content: the same name can point at other weights after an edit.

    Computed once per state of the files and settings it depends on (every shard task asks)."""
    return _profile_digest(profile, _profile_state(profile))


def _profile_state(profile: str) -> tuple:
    import os

    from v2a.models.profile import PROFILE_DIR

    files = [*PROFILE_DIR.glob("*.yaml"), Path(str(profile).split(":", 1)[0]).expanduser()]
    stamps = tuple((str(f), f.stat().st_mtime_ns) for f in files if f.is_file())
    settings = tuple(os.environ.get(k) for k in ("V2A_WEIGHTS_DIR", "V2A_HOME", "HF_HOME", "XDG_CACHE_HOME"))
    return stamps + settings


@lru_cache(maxsize=64)
def _profile_digest(profile: str, state: tuple) -> str:
    from v2a.models import load_profile

    return short_digest(load_profile(profile), 16)


def _plain(value):
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if hasattr(value, "model_dump"):  # a configuration section (pydantic)
        return value.model_dump(mode="json")
    return value


def _location(params: dict, read: str) -> str | None:
    name, _, below = read.partition("/")
    if not params.get(name):
        return None
    return storage.join(params[name], below) if below else params[name]


def stage_cache(reads: tuple[str, ...] = (), profile: str | None = None) -> CachePolicy:
    """Cache policy of a stage task. `reads` names the locations the task reads: a parameter
    ("clips_uri") or a path below one ("out/embeddings"); `profile` the parameter naming a model profile."""

    def key(ctx, params: dict) -> str:
        payload = {
            "task": ctx.task.name, "v2a": __version__,
            "params": {k: _plain(v) for k, v in params.items()},
            "reads": {r: fingerprint(_location(params, r)) for r in reads},
            "profile": profile_digest(params[profile]) if profile and params.get(profile) else None,
        }
        return short_digest(payload, 64)

    return TASK_SOURCE + CachePolicy.from_cache_key_fn(key)


def stage_policy() -> CachePolicy:
    """Cache policy of the stage tasks (tasks/stage.py): their parameters (the stage's name, its items, its
    section, the run), the fingerprints of the locations the stage says it reads, the run's resolved profile."""

    def key(ctx, params: dict) -> str:
        from v2a.stages import shape, stage as stage_named

        run = params["run"] if isinstance(params["run"], shape.StageRun) else shape.StageRun(**params["run"])
        reads = stage_named(params["stage"]).reads(params["section"], run)
        payload = {
            "task": ctx.task.name, "v2a": __version__,
            "params": {k: _plain(v) for k, v in params.items()},
            "reads": {r: fingerprint(r) for r in reads if r},
            "profile": profile_digest(run.profile) if run.profile else None,
        }
        return short_digest(payload, 64)

    return TASK_SOURCE + CachePolicy.from_cache_key_fn(key)


def _stale(result) -> bool:
    return isinstance(result, dict) and bool(changed(result.get("outputs") or {}))


def _mark(result, cached: bool):
    """A cached dict result says so (`cached: True`), so that a stage's log line counts only new work."""
    if isinstance(result, dict):
        return {**result, "cached": cached}
    return result


def call(task, *args, **kwargs):
    """Run a cached task; a hit whose recorded outputs changed since runs again."""
    state = task(*args, return_state=True, **kwargs)
    result = state.result()
    cached = state.name == "Cached"
    if cached and _stale(result):
        result, cached = task.with_options(refresh_cache=True)(*args, **kwargs), False
    return _mark(result, cached)


def map_calls(task, items: list, desc: str | None = None, on_done=None, **kwargs) -> list:
    """`task.map(items, **kwargs)` with the same check per item, and a progress bar as they finish.
    on_done(i) is called as the task of items[i] completes (the stage's progress artifact, tasks/progress.py)."""
    from prefect import unmapped
    from prefect.futures import as_completed
    from tqdm.auto import tqdm

    # Only `items` is mapped over: a keyword value that happens to be iterable (a configuration section,
    # a list) goes to every call whole.
    futures = task.map(items, **{k: unmapped(v) for k, v in kwargs.items()})
    position = {id(f): i for i, f in enumerate(futures)}
    # A bar only on a terminal: in a worker's log every redraw would be a line.
    with tqdm(total=len(futures), desc=desc or task.name, unit="task", disable=not sys.stderr.isatty(),
              leave=False) as bar:
        for f in as_completed(futures):
            f.wait()
            bar.update(1)
            if on_done is not None and f.state.is_completed():
                on_done(position[id(f)])
    results = [_mark(f.result(), f.state.name == "Cached") for f in futures]
    stale = [i for i, f in enumerate(futures) if f.state.name == "Cached" and _stale(results[i])]
    if stale:
        again = task.with_options(refresh_cache=True)
        redo = {i: again.submit(items[i], **kwargs) for i in stale}
        for i, f in redo.items():
            results[i] = _mark(f.result(), False)
    return results


def result_storage(location: str):
    """Prefect's result storage for a location: a Path for a local one (what Prefect takes as is),
    else an fsspec-backed RemoteFileSystem block, saved under a name derived from the location."""
    location = str(location)
    if "://" not in location or location.startswith("file://"):
        return Path(location.removeprefix("file://")).expanduser().resolve()
    from prefect.filesystems import RemoteFileSystem

    name = "v2a-results-" + short_digest(location, 12)
    RemoteFileSystem(basepath=location.rstrip("/")).save(name, overwrite=True)
    return f"remote-file-system/{name}"
