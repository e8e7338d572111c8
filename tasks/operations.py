"""How the stage tasks run under Prefect: GPU slots, retries, timeouts, result serialisation, names.

GPU work holds a slot of its device's global concurrency limit, `gpu:HOST:cuda:K` (K: the GPU's id
on that host; `prefect gcl create gpu:HOST:cuda:K --limit 1`), only while a model runs: N GPUs run N
model tasks at once, and two runs never crowd one GPU. The slot is taken inside the task body, after
Prefect's cache lookup, so a cached task never waits for one, and only on a CUDA device (CPU work
takes none). Without such a limit on the server the slot is free (Prefect's non-strict mode).
"""

from __future__ import annotations

import errno
import re
from contextlib import contextmanager, nullcontext

GPU_LIMIT = "gpu"  # the prefix of every device's limit

# Network and remote-store errors and timeouts can succeed on a second try: those, and only those, are
# retried, 30 s apart on average (jitter spreads runs that failed together); a missing file, a bad value, a
# full disk or a permission error never can. One number, not a list of backoffs: the Prefect UI shows a
# list as NaN.
RETRY_DELAY_S = 30
RETRIES = {"retries": 2, "retry_delay_seconds": RETRY_DELAY_S, "retry_jitter_factor": 0.5,
           "retry_condition_fn": lambda task, task_run, state: retryable(state)}

# OS error numbers of a network that failed on the way, not of a request that can never succeed.
_NETWORK_ERRNOS = {errno.ECONNRESET, errno.ECONNREFUSED, errno.ECONNABORTED, errno.ETIMEDOUT, errno.EHOSTUNREACH,
                   errno.ENETUNREACH, errno.ENETDOWN, errno.ENETRESET, errno.EPIPE, errno.EAGAIN}
# Exception names of the HTTP and object-store clients (httpx, aiohttp, requests, urllib3, botocore) for a
# connection that dropped or timed out; matched by name so that none of them has to be imported here.
_NETWORK_NAMES = re.compile(r"Timeout|Connect|Disconnect|ConnectionClosed|RemoteProtocolError|ProtocolError|"
                            r"IncompleteRead|ServerDisconnected|ClientOSError|EndpointConnection|ReadError")
# S3-style error codes that mean "try again".
_RETRY_CODES = {"SlowDown", "Throttling", "ThrottlingException", "RequestTimeout", "RequestTimeTooSkewed",
                "InternalError", "ServiceUnavailable", "503", "500", "502", "504"}
_NETWORK_MODULES = ("httpx", "httpcore", "aiohttp", "requests", "urllib3", "botocore", "aiobotocore", "s3fs",
                    "gcsfs", "adlfs", "fsspec", "huggingface_hub", "ssl", "socket")


def retryable(state) -> bool:
    """Prefect's retry_condition_fn: retry a failed task only when its error can succeed on retry."""
    try:
        err = state.result(raise_on_failure=False)
    except BaseException:  # the result itself cannot be read: nothing says a retry would help
        return False
    return isinstance(err, BaseException) and is_transient(err)


def is_transient(err: BaseException) -> bool:
    """A network or remote-store error or a timeout, here or anywhere down its chain of causes."""
    seen = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        if isinstance(err, (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError)):
            return False
        if isinstance(err, (TimeoutError, ConnectionError)):
            return True
        if isinstance(err, OSError) and err.errno in _NETWORK_ERRNOS:
            return True
        code = (getattr(err, "response", None) or {}).get("Error", {}).get("Code") \
            if isinstance(getattr(err, "response", None), dict) else None
        if code is not None:
            return str(code) in _RETRY_CODES
        module = type(err).__module__.split(".")[0]
        if module in _NETWORK_MODULES and _NETWORK_NAMES.search(type(err).__name__):
            return True
        err = err.__cause__ or err.__context__
    return False
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


def location_digest(location: str) -> str:
    """Six hex digits of an output location's full form (absolute path or URI): two outputs never share them."""
    from v2a.core.fingerprint import short_digest
    from v2a.core.storage import canonical

    return short_digest(canonical(location), 6)


def run_key(out: str, run_id: str | None = None) -> str:
    """What names a run of `out` in Prefect (flow run names, artifact keys, event resources): the run id,
    or the location's last part, followed by the location's digest (once: a default run id carries it)."""
    digest = location_digest(out)
    base = slug(run_id or str(out).rstrip("/").rsplit("/", 1)[-1] or "out")
    return base if base.endswith(digest) else f"{base}-{digest}"


def run_name(stage: str, key: str | None) -> str:
    """`embed-run-1a2b3c4d-5e6f7a`; without a key, the stage and a timestamp."""
    if key:
        return f"{stage}-{key}"
    import time

    return f"{stage}-{time.strftime('%Y%m%d-%H%M%S')}"


def artifact_key(stage: str, key: str) -> str:
    """A key per stage and run (`run_key`): the artifacts of one run or output never become versions of another's."""
    return slug(f"{stage}-{key}")[:255]


def made_by() -> dict:
    """The flow run executing the current task: recorded in a cached result, so that a later run served
    from the cache can say which run made what it shows."""
    from prefect.runtime import flow_run

    return {"flow_run_id": str(flow_run.id) if flow_run.id else None, "flow_run_name": flow_run.name}
