"""Stopping when told: one process-wide flag, set when the `v2a` command receives SIGTERM or SIGINT.

A thread cannot be killed, so the loops that do model work (embedding batches, training steps,
sampling steps, generation and extraction batches) ask `raise_if_stopped()` between one unit of
work and the next. Everything already written stays (files are renamed into place whole), so the
same command run again resumes.

`Stopped` is a BaseException, like KeyboardInterrupt: the `except Exception` handlers that turn a
bad clip into an errors row, or that retry a task, must not catch it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

_STOP = threading.Event()
_SIGNAL: list[int] = []
_HOOKS: list[Callable[[], None]] = []
_HOOKS_LOCK = threading.Lock()

log = logging.getLogger(__name__)


class Stopped(BaseException):
    """The run was told to stop (SIGTERM or SIGINT) and abandoned the work in progress."""


def request_stop(signum: int | None = None) -> None:
    if signum is not None and not _SIGNAL:
        _SIGNAL.append(signum)
    with _HOOKS_LOCK:
        first = not _STOP.is_set()
        _STOP.set()
        hooks = list(_HOOKS) if first else []
    if hooks:
        # In a thread of their own: this may run inside a signal handler, on a thread that holds
        # a lock a hook needs.
        threading.Thread(target=_run_hooks, args=(hooks,), name="v2a-stop-hooks", daemon=True).start()


def on_stop(hook: Callable[[], None]) -> None:
    """Run `hook` once, on the first stop request (at once if one came already): for what cannot ask
    the flag itself, such as worker processes that must be ended rather than told."""
    with _HOOKS_LOCK:
        if not _STOP.is_set():
            if hook not in _HOOKS:
                _HOOKS.append(hook)
            return
    _run_hooks([hook])


_RAN: set = set()
_RUN_LOCK = threading.Lock()


def _run_hooks(hooks, timeout: float = -1) -> None:
    # Each hook once, whichever thread gets here first; the others wait for it (at most `timeout`).
    if not _RUN_LOCK.acquire(timeout=timeout):
        return
    try:
        for hook in hooks:
            if hook in _RAN:
                continue
            _RAN.add(hook)
            try:
                hook()
            except Exception as err:  # noqa: BLE001 - the stop goes on; the watchdog bounds it anyway
                log.debug("stop hook %r failed: %s", hook, err)
    finally:
        _RUN_LOCK.release()


def run_stop_hooks(timeout: float = 3.0) -> None:
    """Run now, and wait for (at most `timeout` s), the hooks a stop has not finished running: before
    a process that is stopping leaves with os._exit, which would cut their thread short."""
    if _STOP.is_set():
        with _HOOKS_LOCK:
            hooks = list(_HOOKS)
        _run_hooks(hooks, timeout)


def stop_requested() -> bool:
    return _STOP.is_set()


def stop_signal() -> int | None:
    """The signal that asked for the stop, if one did."""
    return _SIGNAL[0] if _SIGNAL else None


def raise_if_stopped() -> None:
    """Call between units of work: raises Stopped once a stop was requested."""
    if _STOP.is_set():
        raise Stopped("stopped on request")


def reset() -> None:
    """For tests that run several commands in one process."""
    _STOP.clear()
    _SIGNAL.clear()
    _RAN.clear()
