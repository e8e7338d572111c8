"""Which GPUs a node's workers get, and which physical device a task's rows were made on.

One worker process per GPU, each started with `CUDA_VISIBLE_DEVICES` naming its own GPU first
(`worker_env`; dask-cuda's workers are started the same way, with the list
rotated), so inside a worker `cuda` is that worker's GPU and a task never chooses one itself.
The physical device a row records is read back from the same variable. Nothing here imports
Dask, Ray or Prefect, and nothing needs a GPU: the logic is tested on any machine.
"""

from __future__ import annotations

import os
import socket
from typing import Union

GpuSpec = Union[str, int, list]
VISIBLE = "CUDA_VISIBLE_DEVICES"


class DeviceError(ValueError):
    """A `runner.gpus` value this machine cannot satisfy."""


def visible_gpus(count: int | None = None) -> list[str]:
    """The GPUs this process may use, as their ids outside it: CUDA_VISIBLE_DEVICES' entries (indices
    or UUIDs) when set, else 0..count-1 (count: torch's device count, asked only when not given)."""
    if count is None:
        import torch

        count = torch.cuda.device_count()
    listed = os.environ.get(VISIBLE)
    if listed is not None:
        ids = [x.strip() for x in listed.split(",") if x.strip()]
        return ids[:count]
    return [str(i) for i in range(count)]


def resolve_gpus(spec: GpuSpec, visible: list[str]) -> list[str]:
    """The GPU ids the workers of this node get, one worker each.

    spec: "auto" (every visible GPU), N (the first N) or a list of indices into the visible GPUs
    (what `nvidia-smi` and torch's `cuda:K` number in this process)."""
    shown = ", ".join(visible) if visible else "none"
    if spec == "auto":
        if not visible:
            raise DeviceError("runner.gpus = 'auto': no CUDA device is visible on this machine; "
                              "leave runner.gpus out to run the workers on CPU")
        return list(visible)
    if isinstance(spec, int):
        if spec > len(visible):
            raise DeviceError(f"runner.gpus = {spec}: only {len(visible)} CUDA device(s) visible ({shown})")
        return list(visible[:spec])
    wrong = [i for i in spec if i >= len(visible)]
    if wrong:
        raise DeviceError(f"runner.gpus = {list(spec)}: no CUDA device {wrong[0]} here; visible: "
                          f"{len(visible)} ({shown})")
    return [visible[i] for i in spec]


def worker_env(gpu: str) -> dict[str, str]:
    """The environment of the worker process pinned to `gpu`: it sees that GPU only, as `cuda`/`cuda:0`."""
    return {VISIBLE: str(gpu)}


def physical_device(device: str | None) -> str:
    """The device a task's rows were made on, named as outside the process: `cuda:K` with K the GPU's
    id on the machine (its entry in CUDA_VISIBLE_DEVICES when that is set), `cpu` and others unchanged."""
    device = str(device or "cpu")
    if not device.startswith("cuda"):
        return device
    index = int(device.split(":", 1)[1]) if ":" in device else 0
    listed = os.environ.get(VISIBLE)
    if listed is not None:
        ids = [x.strip() for x in listed.split(",") if x.strip()]
        if index < len(ids):
            return f"cuda:{ids[index]}"
    return f"cuda:{index}"


def host() -> str:
    return socket.gethostname()


def provenance(device: str | None) -> dict[str, str]:
    """The `host` and `device` columns of the rows a task writes on this process."""
    return {"host": host(), "device": physical_device(device)}
