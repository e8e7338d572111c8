"""Progress of a long stage in the Prefect UI: a progress artifact that moves while its tasks run.

The stage flow opens one per run (`stage_progress`), counting units of work (an embed task's
shards and clips, a generation shard's samples and clips, training's epochs). A task in the
flow's own process reports into it through a plain callback handed to the library (`v2a/` has no
Prefect imports); the flow marks a unit whole when its task ends, a cached one at once, so with a
runner in other processes (dask, ray) the bar still moves task by task. The server hears of it at
most once every UPDATE_EVERY_S seconds, and once at the end.
"""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from typing import Hashable

UPDATE_EVERY_S = 5.0
# The share of the bar a stage's closing step holds (embed's domain-gap plot, drawn after every shard):
# the bar reaches 100 only when that is done too, and says what it waits for meanwhile.
CLOSING_SHARE = 5.0

# The stage progress of each flow run in this process, by flow run id, for its tasks to find.
_ACTIVE: dict[str, "StageProgress"] = {}
_ACTIVE_LOCK = threading.Lock()


def _count(n: float) -> str:
    return f"{int(n):,}"  # a generation shard counts a clip's samples as fractions of the clip


class StageProgress:
    """Counts per unit of work ({unit: {"clips": 16, "shards": 2}}); the first count drives the bar.
    closing: what the stage still does once every unit is done (`closing_done()` marks it done)."""

    def __init__(self, key: str, title: str, units: dict[Hashable, dict[str, int]],
                 every: float | None = None, publish: bool = True, closing: str | None = None):
        self.key, self.title = key, title
        self.closing, self.closed = closing, closing is None
        self.every = UPDATE_EVERY_S if every is None else every
        self.totals = {u: dict(c) for u, c in units.items()}
        self.done = {u: {name: 0 for name in c} for u, c in units.items()}
        self.names = list(next(iter(units.values()), {}))
        self.note = ""
        self._lock = threading.Lock()
        self._last = 0.0
        self.updates = 0
        self.artifact_id = None
        if publish:
            from prefect.artifacts import create_progress_artifact

            self.artifact_id = create_progress_artifact(0.0, key=key, description=self.describe())
            self._last = time.monotonic()

    def add(self, unit: Hashable, note: str | None = None, **counts: int) -> None:
        """Count work done in a unit (increments)."""
        with self._lock:
            for name, n in counts.items():
                self.done[unit][name] = min(self.done[unit][name] + n, self.totals[unit][name])
            self.note = note if note is not None else self.note
        self._publish()

    def set(self, unit: Hashable, note: str | None = None, **counts: int) -> None:
        """Set a unit's counts (a resumed run starts past zero)."""
        with self._lock:
            for name, n in counts.items():
                self.done[unit][name] = min(n, self.totals[unit][name])
            self.note = note if note is not None else self.note
        self._publish()

    def finish(self, unit: Hashable, note: str | None = None) -> None:
        """The unit's task ended: all its work is done (or was, by an earlier run)."""
        with self._lock:
            self.done[unit] = dict(self.totals[unit])
            self.note = note if note is not None else self.note
        self._publish(force=all(self.done[u] == self.totals[u] for u in self.totals))

    def closing_done(self) -> None:
        """The closing step ended: the bar reaches 100."""
        with self._lock:
            self.closed = True
        self._publish(force=True)

    def total(self, name: str) -> tuple[int, int]:
        return sum(d[name] for d in self.done.values()), sum(t[name] for t in self.totals.values())

    def percent(self) -> float:
        done, total = self.total(self.names[0]) if self.names else (1, 1)
        units = 100.0 * done / total if total else 100.0
        if self.closing is None:
            return units
        return units * (100.0 - CLOSING_SHARE) / 100.0 + (CLOSING_SHARE if self.closed else 0.0)

    def describe(self) -> str:
        parts = [f"{_count(d)} of {_count(t)} {name}" for name in self.names for d, t in [self.total(name)]]
        note = self.note
        if not self.closed and all(self.done[u] == self.totals[u] for u in self.totals):
            note = self.closing
        return f"{self.title}: " + ", ".join(parts) + (f"; {note}" if note else "")

    def _publish(self, force: bool = False) -> None:
        now = time.monotonic()
        with self._lock:
            if self.artifact_id is None or (not force and now - self._last < self.every):
                return
            self._last = now
            percent, text = self.percent(), self.describe()
        from prefect.artifacts import update_progress_artifact

        update_progress_artifact(self.artifact_id, percent, description=text)
        self.updates += 1

    def close(self) -> None:
        self._publish(force=True)


@contextmanager
def stage_progress(key: str, title: str, units: dict[Hashable, dict[str, int]], every: float | None = None,
                   closing: str | None = None):
    """A StageProgress for the current flow run, findable by its tasks (`reporter`); published once
    more on the way out, finished or not, so the bar shows where a failed run stopped."""
    from prefect.runtime import flow_run

    progress = StageProgress(key, title, units, every=every, closing=closing)
    run = str(flow_run.id)
    with _ACTIVE_LOCK:
        _ACTIVE[run] = progress
    try:
        yield progress
    finally:
        with _ACTIVE_LOCK:
            _ACTIVE.pop(run, None)
        progress.close()


class UnitReport:
    """What a task reports about its own unit; does nothing where no stage progress is open in this process."""

    def __init__(self, progress: StageProgress | None, unit: Hashable):
        self.progress, self.unit = progress, unit

    def add(self, note: str | None = None, **counts: int) -> None:
        if self.progress is not None:
            self.progress.add(self.unit, note, **counts)

    def set(self, note: str | None = None, **counts: int) -> None:
        if self.progress is not None:
            self.progress.set(self.unit, note, **counts)


def reporter(unit: Hashable) -> UnitReport:
    """The report of a unit of the stage progress of the flow run this task belongs to."""
    from prefect.runtime import flow_run

    with _ACTIVE_LOCK:
        progress = _ACTIVE.get(str(flow_run.id))
    return UnitReport(progress if progress is not None and unit in progress.totals else None, unit)
