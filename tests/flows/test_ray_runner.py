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
