"""The `runner:` section: validated once, and a Dask cluster embeds the same rows as the default thread pool."""

import numpy as np
import pandas as pd
import pytest

from v2a.config import ConfigError, EmbedConfig, RunnerConfig, config_from_dict


def _config(**runner) -> dict:
    return {"out": "/tmp/unused", "data": {"csv": "x.csv", "videos": "videos"}, "runner": runner}


def test_the_default_runner_is_a_thread_pool():
    from prefect.task_runners import ThreadPoolTaskRunner

    from flows.runners import make_task_runner

    cfg = config_from_dict(_config())
    assert cfg.runner.kind == "thread"
    runner = make_task_runner(RunnerConfig(max_workers=3))
    assert isinstance(runner, ThreadPoolTaskRunner) and runner._max_workers == 3


@pytest.mark.parametrize("runner, field", [
    ({"kind": "spark"}, "runner.kind"),
    ({"kind": "thread", "cluster_kwargs": {"n_workers": 2}}, "runner.cluster_kwargs"),
    ({"kind": "dask", "address": "tcp://10.0.0.1:8786", "cluster_kwargs": {"n_workers": 2}}, "runner"),
    ({"kind": "dask", "max_workers": 4}, "runner.max_workers"),
    ({"kind": "thread", "address": "tcp://10.0.0.1:8786"}, "runner.address"),
    ({"kind": "dask", "unknown": 1}, "runner: unknown field"),
])
def test_a_bad_runner_section_is_refused_naming_the_field(runner, field):
    with pytest.raises(ConfigError, match=field):
        config_from_dict(_config(**runner))


def test_a_dask_address_connects_to_an_existing_cluster():
    from prefect_dask import DaskTaskRunner

    from flows.runners import make_task_runner

    runner = make_task_runner(RunnerConfig(kind="dask", address="tcp://10.0.0.1:8786"))
    assert isinstance(runner, DaskTaskRunner) and runner.address == "tcp://10.0.0.1:8786"


def test_ray_without_prefect_ray_is_a_clear_error(monkeypatch):
    import builtins

    from flows.runners import make_task_runner

    real_import = builtins.__import__

    def no_ray(name, *args, **kwargs):
        if name.startswith("prefect_ray"):
            raise ImportError("No module named 'prefect_ray'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_ray)
    with pytest.raises(ConfigError, match="prefect-ray"):
        make_task_runner(RunnerConfig(kind="ray"))


def _embed(out, runner, synth_dir, cache, shard_size=4):
    from flows.embed import embed_flow
    from v2a.stages.ingest import ingest

    ingest(str(out / "clips.parquet"), csv=str(synth_dir / "vggsound.csv"), videos=str(synth_dir / "videos"),
           dataset="synthetic")
    embed_flow.with_options(task_runner=runner, result_storage=cache)(
        str(out), profile="tiny", embed=EmbedConfig(num_frames=3, max_seconds=2.0, shard_size=shard_size, batch_size=8))
    return pd.read_parquet(out / "embeddings").sort_values("clip_id").reset_index(drop=True)


def test_embedding_on_a_two_worker_dask_cluster_gives_the_rows_of_the_thread_pool(synth_dir, tmp_path,
                                                                                  prefect_harness):
    from flows.runners import make_task_runner

    cluster = {"n_workers": 2, "threads_per_worker": 1, "processes": True, "dashboard_address": None}
    threads = _embed(tmp_path / "threads", make_task_runner(RunnerConfig()), synth_dir, tmp_path / "cache")
    dask = _embed(tmp_path / "dask", make_task_runner(RunnerConfig(kind="dask", cluster_kwargs=cluster)),
                  synth_dir, tmp_path / "cache")
    assert len(threads) == 12 and len(list((tmp_path / "dask" / "embeddings").glob("shard-*.parquet"))) == 3
    assert dask[["clip_id", "kind", "clip_model_id", "clap_model_id"]].equals(
        threads[["clip_id", "kind", "clip_model_id", "clap_model_id"]])
    for column in ("image_frames", "audio_emb"):
        for a, b in zip(dask[column], threads[column]):
            # Worker processes may use other BLAS thread counts: equal up to float reduction order.
            np.testing.assert_allclose(np.stack(a).astype(np.float32), np.stack(b).astype(np.float32), atol=1e-5)


def test_the_thread_runner_is_bounded_by_default():
    from flows.embed import embed_flow
    from flows.generate import generate_flow
    from flows.runners import make_task_runner
    from v2a.config import DEFAULT_THREAD_WORKERS

    assert make_task_runner(RunnerConfig())._max_workers == DEFAULT_THREAD_WORKERS
    for f in (embed_flow, generate_flow):
        assert f.task_runner._max_workers == DEFAULT_THREAD_WORKERS


def _worker_threads() -> tuple[str, int]:
    import os

    from v2a.core.threads import machine_threads

    return os.environ.get("OMP_NUM_THREADS", ""), machine_threads()


def test_dask_workers_run_model_work_on_the_thread_count_of_the_process_that_started_them(monkeypatch):
    from distributed import Client, LocalCluster

    from flows.runners import local_cluster_kwargs
    from v2a.core import threads

    # This process as if started with 3 threads; its workers are started with OMP_NUM_THREADS=1 by Dask.
    monkeypatch.setattr(threads, "_STARTED_WITH", "3")
    monkeypatch.delenv(threads.WORKER_THREADS_ENV, raising=False)
    kwargs = local_cluster_kwargs(RunnerConfig(kind="dask", cluster_kwargs={
        "n_workers": 1, "threads_per_worker": 1, "processes": True}))
    with LocalCluster(**kwargs) as cluster, Client(cluster) as client:
        [(omp, count)] = client.run(_worker_threads).values()
    assert omp == "1"  # what Dask gives its workers: a shard generated there on 1 thread had other bits
    assert count == 3
