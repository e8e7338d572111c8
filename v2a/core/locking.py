"""One writer per output location: a run takes an exclusive lock on its `out` before writing tables.

Two runs writing the same tables would each skip work the other has half done and interleave parts
of one generation set; instead the second run fails at once and says who holds the location.

Local folders use ``fcntl.flock`` on ``OUT/.v2a.lock``: the kernel drops the lock when its holder
exits, SIGKILL included, so a killed run never leaves the location locked. The file itself stays
(removing it would let a third run lock a fresh inode while the second still waits on the old one);
it holds the current holder's pid, host and start time for the message.

Remote locations (s3://, ...) have no such lock: a marker object ``OUT/.v2a.lock`` is written at
the start and removed at the end. It is best effort — two runs starting within the same moment can
both pass the check, and a run killed outright leaves the marker behind, to be deleted by hand once
no run is writing (the message says so).

The lock is re-entrant within a process: the pipeline flow holds it while its stage flows run.
"""

from __future__ import annotations

import json
import os
import socket
import threading
from contextlib import contextmanager
from datetime import datetime, timezone

from v2a.core import storage

LOCK_NAME = ".v2a.lock"

_held: dict[str, int] = {}          # lock path -> nesting depth, for this process
_held_guard = threading.Lock()


class RunLockedError(RuntimeError):
    """Another v2a run is writing to the output location."""


def _holder() -> dict:
    return {"pid": os.getpid(), "host": socket.gethostname(),
            "since": datetime.now(timezone.utc).isoformat(timespec="seconds")}


def _message(out: str, holder: dict, remote: bool) -> str:
    who = f"pid {holder.get('pid', '?')} on {holder.get('host', '?')} since {holder.get('since', '?')}"
    text = f"another v2a run ({who}) is writing to {out}; wait for it or use another --out"
    if remote:
        text += f" (if no such run is alive, delete {storage.join(out, LOCK_NAME)})"
    return text


def _read_holder(text: str) -> dict:
    try:
        holder = json.loads(text)
        return holder if isinstance(holder, dict) else {}
    except ValueError:
        return {}


@contextmanager
def run_lock(out: str):
    """Hold the output location ``out`` for this run; raise RunLockedError if another run holds it."""
    lock_uri = storage.join(str(out), LOCK_NAME)
    key = os.path.abspath(storage.local_path(lock_uri)) if storage.is_local(lock_uri) else lock_uri
    with _held_guard:
        if key in _held:
            _held[key] += 1
            nested = True
        else:
            nested = False
    if nested:
        try:
            yield
        finally:
            with _held_guard:
                _held[key] -= 1
        return
    release = _lock_local(str(out), key) if storage.is_local(lock_uri) else _lock_remote(str(out), lock_uri)
    with _held_guard:
        _held[key] = 1
    try:
        yield
    finally:
        with _held_guard:
            del _held[key]
        release()


def _lock_local(out: str, path: str):
    import fcntl

    os.makedirs(os.path.dirname(path), exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = _read_holder(os.pread(fd, 4096, 0).decode("utf-8", "replace"))
        os.close(fd)
        raise RunLockedError(_message(out, holder, remote=False)) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps(_holder()).encode(), 0)

    def release():
        try:
            os.ftruncate(fd, 0)
        finally:
            os.close(fd)  # closing the descriptor drops the flock
    return release


def _lock_remote(out: str, uri: str):
    fs, path = storage.filesystem(uri)
    if fs.exists(path):
        with fs.open(path, "rb") as handle:
            raise RunLockedError(_message(out, _read_holder(handle.read().decode("utf-8", "replace")), remote=True))
    with fs.open(path, "wb") as handle:
        handle.write(json.dumps(_holder()).encode())

    def release():
        if fs.exists(path):
            fs.rm(path)
    return release
