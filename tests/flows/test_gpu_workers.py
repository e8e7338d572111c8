"""Spreading model work over GPUs, tested without one: which GPU each worker gets, which device a task's
rows name, one `gpu` slot per device, and the `runner.gpus` section refused in one line when wrong."""

import os
import threading
import uuid

import pytest

from v2a.config import ConfigError, RunnerConfig, config_from_dict
from v2a.core import devices


@pytest.mark.parametrize("spec, visible, wanted", [
    ("auto", ["0", "1", "2", "3"], ["0", "1", "2", "3"]),
    (2, ["0", "1", "2", "3"], ["0", "1"]),
    ([3, 1], ["0", "1", "2", "3"], ["3", "1"]),
    ([1], ["4", "6"], ["6"]),                      # indices into CUDA_VISIBLE_DEVICES="4,6", as torch counts
    ("auto", ["GPU-aa", "GPU-bb"], ["GPU-aa", "GPU-bb"]),
])
def test_each_worker_is_given_one_gpu_of_this_node(spec, visible, wanted):
    assert devices.resolve_gpus(spec, visible) == wanted


@pytest.mark.parametrize("spec, visible, words", [
    ("auto", [], "no CUDA device is visible"),
    (3, ["0", "1"], "only 2 CUDA device(s) visible (0, 1)"),
    ([0, 2], ["0", "1"], "no CUDA device 2 here"),
])
def test_gpus_this_node_lacks_are_refused_naming_the_field(spec, visible, words):
    with pytest.raises(devices.DeviceError) as err:
        devices.resolve_gpus(spec, visible)
    assert str(err.value).startswith("runner.gpus = ") and words in str(err.value) and "\n" not in str(err.value)


def test_visible_gpus_are_named_as_cuda_visible_devices_names_them(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "4, 6")
    assert devices.visible_gpus(count=2) == ["4", "6"]
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    assert devices.visible_gpus(count=3) == ["0", "1", "2"]


@pytest.mark.parametrize("visible, device, physical", [
    (None, "cuda", "cuda:0"), (None, "cuda:2", "cuda:2"), (None, "cpu", "cpu"), ("3", "cpu", "cpu"),
    ("3", "cuda", "cuda:3"),             # a worker pinned to GPU 3: its cuda is GPU 3
    ("3", "cuda:0", "cuda:3"),
    ("1,2,3,0", "cuda", "cuda:1"),       # a dask-cuda worker: the list rotated, its own GPU first
    ("GPU-aa", "cuda", "cuda:GPU-aa"),
])
def test_rows_name_the_physical_device_whatever_the_worker_calls_it(monkeypatch, visible, device, physical):
    if visible is None:
        monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    else:
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", visible)
    assert devices.physical_device(device) == physical
    assert devices.provenance(device) == {"host": devices.host(), "device": physical}


def test_a_worker_pinned_to_a_gpu_starts_with_only_that_gpu_visible():
    assert devices.worker_env("3") == {"CUDA_VISIBLE_DEVICES": "3"}


def test_the_gpu_slot_is_per_device_and_per_host(monkeypatch):
    from tasks.operations import gpu_slot

    monkeypatch.setattr(devices, "host", lambda: "node1")
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    assert gpu_slot("cuda:0") == "gpu:node1:cuda:0" and gpu_slot("cuda:1") == "gpu:node1:cuda:1"
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1")   # the worker pinned to GPU 1 calls it cuda
    assert gpu_slot("cuda") == "gpu:node1:cuda:1"
    monkeypatch.setattr(devices, "host", lambda: "node2")
    assert gpu_slot("cuda") == "gpu:node2:cuda:1"


def _config(**runner) -> dict:
    return {"out": "/tmp/unused", "profile": "tiny", "data": {"csv": "x.csv", "videos": "videos"}, "runner": runner}


@pytest.mark.parametrize("runner, words", [
    ({"kind": "dask", "gpus": 0}, "runner.gpus = 0"),
    ({"kind": "dask", "gpus": -2}, "runner.gpus = -2"),
    ({"kind": "dask", "gpus": "all"}, "runner.gpus = 'all'"),
    ({"kind": "dask", "gpus": "2"}, "runner.gpus = '2'"),
    ({"kind": "dask", "gpus": True}, "runner.gpus = True"),
    ({"kind": "dask", "gpus": 1.5}, "runner.gpus = 1.5"),
    ({"kind": "dask", "gpus": []}, "runner.gpus = []"),
    ({"kind": "dask", "gpus": [0, 0]}, "runner.gpus = [0, 0]: a GPU listed twice"),
    ({"kind": "dask", "gpus": [0, -1]}, "runner.gpus = [0, -1]"),
    ({"kind": "dask", "gpus": {"a": 1}}, "runner.gpus = {'a': 1}"),
    ({"kind": "thread", "gpus": 2}, "runner.gpus applies to kind 'dask', not 'thread'"),
    ({"kind": "ray", "gpus": 2}, "runner.gpus applies to kind 'dask', not 'ray'"),
    ({"kind": "dask", "gpus": 2, "address": "tcp://10.0.0.1:8786"}, "runner.gpus starts workers on this node"),
    ({"kind": "dask", "gpus": 2, "cluster_kwargs": {"n_workers": 4}}, "runner.cluster_kwargs: ['n_workers']"),
])
def test_a_bad_gpus_value_is_refused_in_one_line_naming_the_field(runner, words):
    with pytest.raises(ConfigError) as err:
        config_from_dict(_config(**runner))
    assert words in str(err.value) and "\n" not in str(err.value)


def test_gpus_more_than_the_node_has_are_refused_before_anything_starts(monkeypatch):
    monkeypatch.setattr(devices, "visible_gpus", lambda count=None: ["0", "1"])
    with pytest.raises(ConfigError, match=r"runner.gpus = 4: only 2 CUDA device\(s\) visible"):
        config_from_dict(_config(kind="dask", gpus=4))
    assert config_from_dict(_config(kind="dask", gpus="auto")).runner.gpu_ids() == ["0", "1"]


def test_a_stage_device_other_than_the_workers_own_gpu_is_refused():
    with pytest.raises(ConfigError, match=r"generate.device = 'cuda:1': with runner.gpus each worker sees only"):
        config_from_dict({**_config(kind="dask", gpus=[0, 1]), "generate": {"device": "cuda:1"}})


def test_n_gpus_run_n_model_tasks_at_once_and_one_gpu_one(prefect_harness, monkeypatch):
    """With a limit of 1 per device on the server, tasks on two GPUs hold their slots together, and a
    second task on a busy GPU waits for it."""
    from prefect import get_client
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate

    from tasks.operations import gpu_slot, model_slot

    node = f"node-{uuid.uuid4().hex[:8]}"
    monkeypatch.setattr(devices, "host", lambda: node)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    with get_client(sync_client=True) as client:
        for device in ("cuda:0", "cuda:1"):
            client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=gpu_slot(device), limit=1))

    release = threading.Event()
    entered = {name: threading.Event() for name in ("first on 0", "on 1", "second on 0")}

    def hold(name, device):
        with model_slot(device):
            entered[name].set()
            release.wait(60)

    threads = [threading.Thread(target=hold, args=("first on 0", "cuda:0"), daemon=True)]
    threads[0].start()
    assert entered["first on 0"].wait(30)
    for name, device in (("on 1", "cuda:1"), ("second on 0", "cuda:0")):
        threads.append(threading.Thread(target=hold, args=(name, device), daemon=True))
        threads[-1].start()
    assert entered["on 1"].wait(30)                    # the other GPU's slot is free
    assert not entered["second on 0"].wait(3)          # this GPU's is taken
    release.set()
    assert entered["second on 0"].wait(60)
    for t in threads:
        t.join(30)


def _where_am_i(item: int) -> dict:
    import time

    from tasks.operations import gpu_slot

    import multiprocessing

    time.sleep(0.2)  # long enough that both workers get tasks
    return {"item": item, "pid": os.getpid(), "visible": os.environ.get("CUDA_VISIBLE_DEVICES"),
            "may_start_processes": not multiprocessing.current_process().daemon,
            **devices.provenance("cuda"), "slot": gpu_slot("cuda")}


def test_a_two_worker_gpu_cluster_runs_each_task_on_its_own_workers_device(prefect_harness, monkeypatch):
    """On CPU, as if the node had two GPUs: one worker process per GPU, each task sees its worker's GPU
    as `cuda` and records that GPU's physical id and slot."""
    from prefect import flow, task

    from flows.runners import make_task_runner

    monkeypatch.setattr(devices, "visible_gpus", lambda count=None: ["0", "1"])
    runner = make_task_runner(RunnerConfig(kind="dask", gpus="auto"))
    probe = task(_where_am_i)

    @flow(task_runner=runner)
    def spread():
        return [f.result() for f in probe.map(list(range(12)))]

    seen = spread()
    by_worker = {}
    for r in seen:
        by_worker.setdefault(r["pid"], set()).add((r["visible"], r["device"], r["slot"]))
    assert len(by_worker) == 2 and os.getpid() not in by_worker       # two worker processes, not this one
    assert all(r["may_start_processes"] for r in seen)                # the embed stage's decode pool can start
    assert all(len(v) == 1 for v in by_worker.values())               # a worker's tasks: always its own GPU
    assert sorted(next(iter(v))[:2] for v in by_worker.values()) == [("0", "cuda:0"), ("1", "cuda:1")]
    assert len({next(iter(v))[2] for v in by_worker.values()}) == 2   # and a slot of its own
