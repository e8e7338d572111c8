"""One CPU thread count for model work, whatever ran before it in the process.

A float32 matrix product on the CPU is summed in an order that depends on how many threads share it:
the same mapper trained with 1 and with 2 intra-op threads ends with different bits. And the count a
stage gets is history: `torch.set_num_threads` is process-wide, while each thread keeps the count it
had when it first ran a parallel op. The embed stage's decode threads set 1 for themselves (so 16
decoders do not each start 16 threads); two shard tasks whose decode pools overlap leave the process
at 1 thread, and a stage run after them in the same process trains or generates on 1 thread, where a
resumed or standalone run (no embedding before it) gets every core. `pinned_threads` sets the count
from the machine alone, for the calling thread and the process, and (on the CPU) asks torch for
deterministic algorithms; the previous settings come back when the last pinned block ends.
"""

from __future__ import annotations

import functools
import inspect
import os
import threading
from contextlib import contextmanager
from typing import Callable

_LOCK = threading.Lock()
_ACTIVE = 0
_SAVED: tuple[int, bool, bool] | None = None


# OMP_NUM_THREADS as this process started (v2a/__init__.py imports this module first): starting a Dask
# LocalCluster sets it to 1 in the starting process too (distributed's pre-spawn environment), and a flow on
# the dask runner then trained its mapper on 1 thread where the thread runner used every core: other bits.
_STARTED_WITH = os.environ.get("OMP_NUM_THREADS", "")
# Set by v2a in the worker processes it starts (flows/runners.py: local Dask and Ray workers) to the count of
# the process that started them: Dask and Ray start their workers with OMP_NUM_THREADS=1, and a shard
# generated there would otherwise differ in its last bits from the same shard on the thread runner. A user may
# set it too: it is read first.
WORKER_THREADS_ENV = "V2A_CPU_THREADS"


def machine_threads(omp: str | None = None) -> int:
    """The intra-op thread count model work runs with: in a worker v2a started, its starter's count; else
    OMP_NUM_THREADS as the process started with it (`omp`: that value instead), else the CPUs this process may
    run on. Nothing later in the process changes it."""
    given = os.environ.get(WORKER_THREADS_ENV, "").strip()
    if omp is None and given.isdigit() and int(given) > 0:
        return int(given)
    env = (_STARTED_WITH if omp is None else omp).strip()
    if env.isdigit() and int(env) > 0:
        return int(env)
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # no affinity call (macOS)
        return max(1, os.cpu_count() or 1)


@contextmanager
def pinned_threads(device: str = "cpu"):
    """Run the block with machine_threads() intra-op threads (this thread and the process default)
    and, when `device` is the CPU, deterministic algorithms (warn-only: never an error mid-run).

    Blocks may nest and may run in several threads at once: each entering thread sets its own count;
    the first saves the previous settings and the last restores them."""
    import torch

    global _ACTIVE, _SAVED
    threads = machine_threads()
    with _LOCK:
        if _ACTIVE == 0:
            _SAVED = (torch.get_num_threads(), torch.are_deterministic_algorithms_enabled(),
                      torch.is_deterministic_algorithms_warn_only_enabled())
        _ACTIVE += 1
        torch.set_num_threads(threads)
        if str(device).startswith("cpu"):
            # On a GPU, cuBLAS needs CUBLAS_WORKSPACE_CONFIG set before it starts to be deterministic, and
            # some kernels have no deterministic form: GPU runs are not promised bit-identical (README).
            torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield threads
    finally:
        with _LOCK:
            _ACTIVE -= 1
            if _ACTIVE == 0 and _SAVED is not None:
                count, deterministic, warn_only = _SAVED
                torch.set_num_threads(count)
                torch.use_deterministic_algorithms(deterministic, warn_only=warn_only)
                _SAVED = None


def pins_threads(device_of: Callable[[dict], str]):
    """Decorator: the function runs inside pinned_threads(device_of(its arguments by name))."""

    def wrap(fn):
        signature = inspect.signature(fn)

        @functools.wraps(fn)
        def pinned(*args, **kwargs):
            with pinned_threads(device_of(signature.bind(*args, **kwargs).arguments)):
                return fn(*args, **kwargs)

        return pinned

    return wrap


def device_of(name: str) -> Callable[[dict], str]:
    """For pins_threads: the `.device` of the argument `name` (a model wrapper), the CPU when it has none."""
    return lambda arguments: str(getattr(arguments.get(name), "device", "cpu"))
