"""How the stage tasks run under Prefect: GPU slots, retries, timeouts, result serialisation.

GPU work holds a slot of its device's global concurrency limit, `gpu:HOST:cuda:K` (K: the GPU's id
on that host; `prefect gcl create gpu:HOST:cuda:K --limit 1`), only while a model runs: N GPUs run N
model tasks at once, and two runs never crowd one GPU. The slot is taken inside the task body, after
Prefect's cache lookup, so a cached task never waits for one, and only on a CUDA device (CPU work
takes none). Without such a limit on the server the slot is free (Prefect's non-strict mode).
"""

from __future__ import annotations

import re
from contextlib import contextmanager, nullcontext

GPU_LIMIT = "gpu"  # the prefix of every device's limit

# Storage and model loads fail transiently (a dropped S3 connection, a busy NFS): retried with backoff.
RETRIES = {"retries": 2, "retry_delay_seconds": [10, 60], "retry_jitter_factor": 0.5}
# No task timeouts: the stage tasks run on worker threads, where Prefect cannot interrupt a blocking
# call (it warns once per task run instead); a stuck run is cancelled from the UI or by the worker.
# Cached task results are JSON, never pickle: a shared, writable cache must not run code on a worker.
RESULTS = {"persist_result": True, "result_serializer": "json"}


def jsonable(value):
    """A task result as plain JSON values: numpy scalars as Python numbers, timestamps as ISO strings."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if hasattr(value, "item") and callable(value.item) and getattr(value, "ndim", 0) == 0:
        return value.item()
    return value


def uses_gpu(device: str | None) -> bool:
    return str(device or "").startswith("cuda")


def gpu_slot(device: str) -> str:
    """The limit a model task on `device` holds a slot of: its GPU's, named by host and physical id (a
    worker pinned to GPU 3 runs on its `cuda:0`, which is `gpu:HOST:cuda:3`)."""
    from v2a.core.devices import host, physical_device

    return f"{GPU_LIMIT}:{host()}:{physical_device(device)}"


@contextmanager
def model_slot(device: str | None):
    """Hold one slot of the device's `gpu:HOST:cuda:K` limit while the body runs on CUDA; nothing on CPU."""
    if not uses_gpu(device):
        with nullcontext():
            yield
        return
    from prefect.concurrency.sync import concurrency

    with concurrency(gpu_slot(device), occupy=1, strict=False):
        yield


def slug(text: str) -> str:
    """Lowercase letters, digits and dashes: what Prefect accepts in an artifact key."""
    return re.sub(r"-{2,}", "-", re.sub(r"[^a-z0-9-]+", "-", str(text).lower())).strip("-")


def run_name(stage: str, run_id: str | None) -> str:
    """`embed-run-1a2b3c4d5e`; without a run id, the stage and a timestamp."""
    if run_id:
        return f"{stage}-{run_id}"
    import time

    return f"{stage}-{time.strftime('%Y%m%d-%H%M%S')}"


def artifact_key(stage: str, run_id: str | None = None) -> str:
    """A key per stage and run, so the artifacts of one run do not become versions of another's.
    Without a run id, the flow run's id."""
    if not run_id:
        from prefect.runtime import flow_run

        run_id = flow_run.id or "local"
    return slug(f"{stage}-{run_id}")[:255]
