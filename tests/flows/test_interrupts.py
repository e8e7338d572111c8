"""A stop prints the one line and nothing else: no "Exception ignored on calling ctypes callback" from a
C callback the signal interrupted, no "Crash detected!" from Prefect."""

import logging
import os
import subprocess
import sys
from pathlib import Path

from flows import interrupts
from v2a.core import stopping

ROOT = Path(__file__).resolve().parents[2]

# The signal lands while the main thread is inside a ctypes callback (qsort's comparison, called by
# libc), where the handler's exception cannot propagate.
_CALLBACK = """
import ctypes, os, signal, threading, time
from flows import interrupts
from v2a.core import stopping

interrupts.install("test")
compare = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p)(lambda a, b: time.sleep(0.02) or 0)
values = (ctypes.c_int * 60)()
threading.Timer(0.3, os.kill, (os.getpid(), signal.SIG)).start()
ctypes.CDLL(None).qsort(values, 60, ctypes.sizeof(ctypes.c_int), compare)
print("stop requested" if stopping.stop_requested() else "no stop", flush=True)
"""


def _run_callback(sig: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", _CALLBACK.replace("signal.SIG)", f"signal.{sig})")],
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=120)


def test_a_signal_inside_a_ctypes_callback_prints_no_traceback_and_still_stops():
    for sig in ("SIGINT", "SIGTERM"):
        done = _run_callback(sig)
        assert "Exception ignored" not in done.stderr and "Traceback" not in done.stderr, (sig, done.stderr)
        assert done.stdout.strip() == "stop requested", (sig, done.stdout, done.stderr)


def _record(message: str) -> logging.LogRecord:
    return logging.LogRecord("prefect.flow_runs", logging.ERROR, __file__, 1, message, None, None)


def test_prefects_crash_line_for_a_signal_is_dropped_before_the_stop_flag_is_set():
    quiet = interrupts._QuietStop()
    assert not stopping.stop_requested()
    assert not quiet.filter(_record("Crash detected! Execution was aborted by a termination signal."))
    assert not quiet.filter(_record("Crash detected! Execution was aborted by an interrupt signal."))
    assert quiet.filter(_record("Crash detected! Execution was interrupted by an unexpected exception: OSError"))
    assert quiet.filter(_record("Finished in state Completed()"))
    stopping.request_stop()
    try:
        assert not quiet.filter(_record("Finished in state Completed()"))  # a stop: the one line says it
    finally:
        stopping.reset()


_CRASH_LOG = """
import logging
import flows.ingest  # imports Prefect, which configures its console handler
from flows import interrupts

interrupts.quiet_stop_logs()
logger = logging.getLogger("prefect.flow_runs")
logger.error("Crash detected! Execution was aborted by a termination signal.")
logger.error("a failure that is not a stop")
"""


def test_prefects_own_console_handler_drops_the_crash_line_of_a_signal():
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW": "ignore"}
    done = subprocess.run([sys.executable, "-c", _CRASH_LOG], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "a failure that is not a stop" in done.stderr and "Crash detected" not in done.stderr, done.stderr
