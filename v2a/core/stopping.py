"""Stopping when told: one process-wide flag, set when the `v2a` command receives SIGTERM or SIGINT.

A thread cannot be killed, so the loops that do model work (embedding batches, training steps,
sampling steps, generation and extraction batches) ask `raise_if_stopped()` between one unit of
work and the next. Everything already written stays (files are renamed into place whole), so the
same command run again resumes.

`Stopped` is a BaseException, like KeyboardInterrupt: the `except Exception` handlers that turn a
bad clip into an errors row, or that retry a task, must not catch it.
"""

from __future__ import annotations

import threading

_STOP = threading.Event()
_SIGNAL: list[int] = []


class Stopped(BaseException):
    """The run was told to stop (SIGTERM or SIGINT) and abandoned the work in progress."""


def request_stop(signum: int | None = None) -> None:
    if signum is not None and not _SIGNAL:
        _SIGNAL.append(signum)
    _STOP.set()


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
