"""How a `v2a` command stops when told: SIGTERM (a scheduler, `timeout`, `kill`) or SIGINT (Ctrl-C).

On the first signal:
1. the stop flag (v2a.core.stopping) is set, so model work in every thread gives up at its next
   batch, step or shard, and the main thread is interrupted (KeyboardInterrupt for SIGINT, Prefect's
   own TerminationSignal or `Terminated` for SIGTERM); Prefect, unwinding, marks the flow and task
   runs Crashed while its API server is still up (the temporary one lives in a session of its own,
   flows/server.py, so the signal sent to v2a's process group does not reach it);
2. the command prints one line, saying how to resume, stops the temporary server and exits with
   128 + the signal's number: 130 for SIGINT, 143 for SIGTERM.
If the process is not gone `GRACE_SECONDS` after the signal (a model call that cannot be
interrupted, a server that does not answer), a watchdog thread does step 2 itself, without waiting
for anything. A second Ctrl-C does it at once.

The watchdog learns of the signal through `signal.set_wakeup_fd`, which the interpreter writes to
whichever Python handler is installed: Prefect replaces the SIGTERM handler while a flow runs.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import sys
import threading
import time

from v2a.core import stopping

GRACE_SECONDS = 10.0
EXIT_CODES = {signal.SIGINT: 130, signal.SIGTERM: 143}
RESUME = "run the same command again to resume (finished shards, epochs and generated files are kept)"

_state = {"command": None, "printed": False}
# Re-entrant: a signal handler may run in the main thread while it holds one of them.
_print_lock = threading.RLock()
_stop_lock = threading.RLock()


class Terminated(BaseException):
    """SIGTERM arrived while no flow was running (Prefect raises its own TerminationSignal then)."""


def exit_code() -> int:
    return EXIT_CODES.get(stopping.stop_signal(), 143)


def stop_line(command: str | None = None) -> str:
    name = signal.Signals(stopping.stop_signal() or signal.SIGTERM).name
    return f"v2a {command or _state['command']}: stopped by {name}; {RESUME}"


def print_stop_line() -> None:
    with _print_lock:
        if _state["printed"]:
            return
        _state["printed"] = True
        try:
            sys.stdout.flush()
        except (OSError, ValueError):
            pass
        os.write(2, (stop_line() + "\n").encode())  # straight to the descriptor: no buffer in a dying process


def exit_now() -> None:
    """Print the line, stop the temporary server and leave without waiting for any thread."""
    from flows.server import stop_temporary_server

    print_stop_line()
    try:
        stopping.run_stop_hooks()  # worker processes still importing do not watch their parent yet
        stop_temporary_server(hard=True)
    finally:
        os._exit(exit_code())


def finish_stop() -> None:
    """The orderly end of a stop: the run's state is reported; the server is stopped, then exit."""
    from flows.server import stop_temporary_server

    print_stop_line()
    try:
        stopping.run_stop_hooks()  # decode worker processes end before this one (os._exit runs nothing)
        stop_temporary_server()
    finally:
        os._exit(exit_code())  # worker threads still inside a model call are not waited for


def _silence_logs() -> None:
    # Prefect logs a "Crash detected" traceback per flow and task run; the one line says it all.
    for name in ("prefect", "v2a"):
        logging.getLogger(name).setLevel(logging.CRITICAL)


# What Prefect's crash message says of a run ended by a signal (prefect.states.exception_to_crashed_state).
_SIGNAL_CRASHES = ("aborted by an interrupt signal", "aborted by a termination signal")


class _QuietStop(logging.Filter):
    """Drops what Prefect prints about a stop: the one line says it. Needed besides `_silence_logs`:
    while a flow runs, Prefect's own SIGTERM handler raises in the main thread at once, and its
    "Crash detected!" can be printed before this module's thread has heard of the signal."""

    def filter(self, record: logging.LogRecord) -> bool:
        if stopping.stop_requested():
            return False
        message = record.getMessage()
        return not (message.startswith("Crash detected!") and any(s in message for s in _SIGNAL_CRASHES))


_QUIET = _QuietStop()


def quiet_stop_logs() -> None:
    """Filter every console handler of the loggers Prefect configured (call once Prefect is imported)."""
    loggers = [logging.getLogger()] + [logging.getLogger(name) for name in list(logging.root.manager.loggerDict)
                                       if name.split(".")[0] in ("prefect", "uvicorn", "v2a")]
    for logger in loggers:
        for handler in getattr(logger, "handlers", []):
            if isinstance(handler, logging.StreamHandler) and _QUIET not in handler.filters:
                handler.addFilter(_QUIET)


def _quiet_unraisable(previous):
    """sys.unraisablehook: a stop's exception, raised by a signal handler while the main thread was
    inside a C callback (a ctypes callback cannot pass it on), is dropped, not printed as
    "Exception ignored on calling ctypes callback". The stop goes on through the flag, and the
    watchdog bounds it."""

    def hook(unraisable) -> None:
        exc_type = unraisable.exc_type
        if exc_type is not None and issubclass(exc_type, (KeyboardInterrupt, Terminated, stopping.Stopped)):
            return
        if exc_type is not None and exc_type.__name__ == "TerminationSignal":  # Prefect's, raised for SIGTERM
            _begin_stop(signal.SIGTERM)  # Prefect's handler ran instead of ours: the stop must still begin
            return
        previous(unraisable)
    hook.v2a_quiet_stop = True
    return hook


def _begin_stop(signum: int) -> None:
    """Once per process, from whichever hears of the first signal first (the watchdog or the handler)."""
    with _stop_lock:
        if _state.get("stopping"):
            return
        _state["stopping"] = True
    stopping.request_stop(signum)
    _silence_logs()
    threading.Thread(target=_deadline, name="v2a-stop-deadline", daemon=True).start()


def _on_signal(signum, frame) -> None:
    # The watchdog may have begun the stop already (it hears of the signal first): whether this
    # handler has raised is its own record.
    _begin_stop(signum)
    if _state.get("raised"):
        return  # already unwinding: a second exception would only break the clean-up
    _state["raised"] = True
    if signum == signal.SIGINT:
        raise KeyboardInterrupt
    raise Terminated(signum)


def _watch(reader: socket.socket) -> None:
    first_at = None
    while True:
        try:
            data = reader.recv(64)
        except OSError:
            return
        for signum in data:
            if signum not in EXIT_CODES:
                continue
            if first_at is None:
                first_at = time.monotonic()
                _begin_stop(signum)
            elif signum == signal.SIGINT and time.monotonic() - first_at > 0.5:
                exit_now()  # a second Ctrl-C: leave now


def _deadline() -> None:
    time.sleep(GRACE_SECONDS)
    if _state.get("debug"):  # --debug: where each thread was when the grace ran out
        import faulthandler

        faulthandler.dump_traceback(all_threads=True)
    exit_now()


def install(command: str, debug: bool = False) -> bool:
    """Arm SIGTERM and SIGINT for this `v2a` command; False where signals cannot be handled here
    (not the main thread, e.g. `main()` called from a test's thread)."""
    if threading.current_thread() is not threading.main_thread():
        return False
    _state["command"], _state["debug"] = command, debug
    reader, writer = socket.socketpair()
    writer.setblocking(False)
    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)
    signal.set_wakeup_fd(writer.fileno(), warn_on_full_buffer=False)
    if not getattr(sys.unraisablehook, "v2a_quiet_stop", False):
        sys.unraisablehook = _quiet_unraisable(sys.unraisablehook)
    threading.Thread(target=_watch, args=(reader,), name="v2a-signals", daemon=True).start()
    _state["sockets"] = (reader, writer)  # kept open for the life of the process
    return True
