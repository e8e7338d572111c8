"""An optional trace of what each process did: `V2A_TRACE_DIR=DIR` appends one line per model build, per
import of the model libraries and per start and end of a shard task to `DIR/<pid>.log`.

It is how a test or an operator checks a run of any shape, across thread, Dask and Ray workers: that each
process built each model once, imported the model libraries before its first build, and how many tasks of
a stage ran at once. Unset (the default), nothing is written.
"""

from __future__ import annotations

import os
import threading
import time
from contextlib import contextmanager

ENV = "V2A_TRACE_DIR"
_LOCK = threading.Lock()


def enabled() -> bool:
    return bool(os.environ.get(ENV))


def record(event: str, key: str) -> None:
    folder = os.environ.get(ENV)
    if not folder:
        return
    os.makedirs(folder, exist_ok=True)
    line = f"{time.time():.6f}\t{event}\t{key}\t{threading.current_thread().name}\n"
    with _LOCK, open(os.path.join(folder, f"{os.getpid()}.log"), "a", encoding="utf-8") as f:
        f.write(line)


@contextmanager
def span(stage: str, item) -> None:
    """`start` and `end` lines around one task's work (`stage:item`)."""
    record("start", f"{stage}:{item}")
    try:
        yield
    finally:
        record("end", f"{stage}:{item}")


def read(folder: str) -> dict[int, list[tuple[float, str, str]]]:
    """pid -> [(time, event, key)] in the order written."""
    out: dict[int, list[tuple[float, str, str]]] = {}
    for name in sorted(os.listdir(folder)) if os.path.isdir(folder) else []:
        if name.endswith(".log"):
            with open(os.path.join(folder, name), encoding="utf-8") as f:
                out[int(name[:-4])] = [(float(t), e, k) for t, e, k, *_ in (ln.rstrip("\n").split("\t") for ln in f)]
    return out


def peak_concurrency(events: dict[int, list[tuple[float, str, str]]], stage: str) -> int:
    """The most tasks of `stage` running at the same moment, over every process of the trace."""
    edges = sorted((t, 1 if e == "start" else -1) for lines in events.values() for t, e, k in lines
                   if e in ("start", "end") and k.startswith(stage + ":"))
    now = peak = 0
    for _, step in edges:  # an end sorts before a start at the same instant: no false overlap
        now += step
        peak = max(peak, now)
    return peak
