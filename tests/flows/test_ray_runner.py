"""Ray as a second engine: embedding on a local Ray instance gives the rows of the thread pool, and model
tasks on CUDA ask Ray for a GPU each. One small Ray instance for the module (starting one takes ~20 s)."""

import numpy as np
import pytest

from v2a.config import RunnerConfig
from v2a.core import devices


@pytest.fixture(scope="module")
def ray_instance():
    import ray

    # Two CPUs, and two GPUs declared on a machine without any: Ray hands them out (CUDA_VISIBLE_DEVICES)
    # to tasks that ask, which is all a test of the asking needs.
    ray.init(num_cpus=2, num_gpus=2, include_dashboard=False, namespace="prefect", log_to_driver=False)
    yield ray
    ray.shutdown()


def test_embedding_on_a_local_ray_instance_gives_the_rows_of_the_thread_pool(ray_instance, synth_dir, tmp_path,
                                                                            prefect_harness):
    from flows.runners import make_task_runner
    from tests.flows.test_runners import _embed

    threads = _embed(tmp_path / "threads", make_task_runner(RunnerConfig()), synth_dir, tmp_path / "cache")
    on_ray = _embed(tmp_path / "ray", make_task_runner(RunnerConfig(kind="ray")), synth_dir, tmp_path / "cache")
    assert len(threads) == 12 and len(list((tmp_path / "ray" / "embeddings").glob("shard-*.parquet"))) == 3
    columns = ["clip_id", "kind", "clip_model_id", "clap_model_id", "host", "device"]
    assert on_ray[columns].equals(threads[columns])
    assert set(on_ray["device"]) == {"cpu"} and on_ray["host"].notna().all()  # where each row was made
    for column in ("image_frames", "audio_emb"):
        for a, b in zip(on_ray[column], threads[column]):
            # Ray's worker processes may use other BLAS thread counts: equal up to float reduction order.
            np.testing.assert_allclose(np.stack(a).astype(np.float32), np.stack(b).astype(np.float32), atol=1e-5)


def _where_am_i(item: int) -> dict:
    import ray

    return {"item": item, "gpus": list(ray.get_runtime_context().get_accelerator_ids()["GPU"]),
            "device": devices.physical_device("cuda")}


def test_model_tasks_on_cuda_ask_ray_for_a_gpu_each_and_cpu_tasks_for_none(ray_instance, prefect_harness):
    from prefect import flow, task

    from flows.runners import make_task_runner, model_resources

    probe = task(_where_am_i)

    @flow(task_runner=make_task_runner(RunnerConfig(kind="ray")))
    def spread(device: str):
        with model_resources(device):
            return [f.result() for f in probe.map([0, 1])]

    on_gpus = spread("cuda")
    # Ray gave each one GPU of its own (through CUDA_VISIBLE_DEVICES), and the rows name that GPU.
    assert [len(r["gpus"]) for r in on_gpus] == [1, 1]
    assert all(r["device"] == f"cuda:{r['gpus'][0]}" for r in on_gpus)
    assert [r["gpus"] for r in spread("cpu")] == [[], []]


def test_a_pipeline_run_starts_ray_once_and_every_stage_uses_it(ray_instance):
    from flows.runners import task_runners

    with task_runners(RunnerConfig(kind="ray")) as new_runner:
        first, second = new_runner(), new_runner()
        assert first is not second and ray_instance.is_initialized()
    assert ray_instance.is_initialized()  # the module's instance was there before: left running


def _busy_ray_workers() -> list[int]:
    """Pids of Ray worker processes running a task now: Ray titles a worker `ray::<task>` while it runs
    one and `ray::IDLE` between tasks."""
    from pathlib import Path

    busy = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            title = (entry / "cmdline").read_bytes().split(b"\0")[0].decode(errors="replace")
        except OSError:
            continue
        if title.startswith("ray::") and title not in ("ray::IDLE", "ray::DashboardAgent", "ray::RuntimeEnvAgent"):
            busy.append(int(entry.name))
    return busy


def test_a_ray_worker_killed_mid_embed_loses_no_shard_and_writes_none_twice(ray_instance, synth_dir, tmp_path,
                                                                             prefect_harness):
    import os
    import signal
    import threading
    import time

    import pandas as pd

    from flows.runners import make_task_runner
    from tests.flows.test_runners import _embed

    emb = tmp_path / "ray" / "embeddings"
    killed: list = []

    def kill_a_busy_worker_once_a_shard_is_written():
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            if any(emb.glob("shard-*.parquet")):
                busy = _busy_ray_workers()
                if busy:
                    os.kill(busy[0], signal.SIGKILL)
                    killed.append(busy[0])
                    return
            time.sleep(0.02)

    watcher = threading.Thread(target=kill_a_busy_worker_once_a_shard_is_written, daemon=True)
    watcher.start()
    rows = _embed(tmp_path / "ray", make_task_runner(RunnerConfig(kind="ray")), synth_dir, tmp_path / "cache",
                  shard_size=2)
    watcher.join(5)
    assert killed, "no Ray worker was running a task when the first shard appeared"
    # Ray ran the lost task again on another worker: every shard once, every clip once
    assert len(list(emb.glob("shard-*.parquet"))) == 6 and len(rows) == 12 and not rows["clip_id"].duplicated().any()
    assert pd.read_parquet(emb)["clip_id"].is_unique
