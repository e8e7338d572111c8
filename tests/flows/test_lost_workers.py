"""A Dask worker process killed in the middle of a stage costs its task, nothing else: Dask runs the
task again on a remaining worker, the run completes, no row is lost or written twice, and the
generated audio is byte for byte that of an uninterrupted run. One two-worker cluster for the module."""

import os
import signal
import threading
import time

import numpy as np
import pandas as pd
import pytest

from v2a.config import EmbedConfig, GenerateConfig, RunnerConfig

EMBED = EmbedConfig(num_frames=2, max_seconds=2.0, shard_size=2, shards_per_task=1, batch_size=8, workers=1)
GENERATE = GenerateConfig(split="train", conditioning="no-mapper", samples=2, seconds=1.0, steps=2, batch_size=2,
                          seed=5)


@pytest.fixture(scope="module")
def cluster():
    from distributed import Client, LocalCluster

    from flows.runners import local_cluster_kwargs

    kwargs = local_cluster_kwargs(RunnerConfig(kind="dask", cluster_kwargs={
        "n_workers": 2, "threads_per_worker": 1, "processes": True}))
    with LocalCluster(**kwargs) as c, Client(c) as client:
        yield c, client


def _slow_down(module: str, name: str, seconds: float) -> None:
    """On a worker: the named library function pauses after it returns, so a kill lands mid-stage."""
    import importlib

    mod = importlib.import_module(module)
    real = getattr(mod, name)
    if getattr(real, "slowed", False):
        return

    def slow(*args, **kwargs):
        out = real(*args, **kwargs)
        time.sleep(seconds)
        return out

    slow.slowed = True
    setattr(mod, name, slow)


def _kill_a_busy_worker_when(address: str, appeared, killed: list, timeout: float = 600) -> None:
    """Once `appeared()` holds, SIGKILL the process of a worker that is running a task (the stage's: no
    other work is on the cluster then)."""
    from distributed import Client

    deadline = time.monotonic() + timeout
    with Client(address) as client:
        pids = client.run(os.getpid)
        while time.monotonic() < deadline:
            if appeared():
                busy = [w for w, keys in client.processing().items() if keys]
                if busy:
                    os.kill(pids[busy[0]], signal.SIGKILL)
                    killed.append(busy[0])
                    return
            time.sleep(0.05)


def _run_while_killing(address: str, stage, appeared):
    killed: list = []
    watcher = threading.Thread(target=_kill_a_busy_worker_when, args=(address, appeared, killed), daemon=True)
    watcher.start()
    result = stage()
    watcher.join(5)
    assert killed, "no worker was busy with the stage when its first output appeared"
    return result


def _ingest(out, synth_dir):
    from v2a.stages.ingest import ingest

    ingest(str(out / "clips.parquet"), csv=str(synth_dir / "vggsound.csv"), videos=str(synth_dir / "videos"),
           dataset="synthetic")


def test_a_worker_killed_mid_embed_loses_no_shard_and_writes_none_twice(cluster, synth_dir, tmp_path,
                                                                         prefect_harness):
    from prefect_dask import DaskTaskRunner

    from flows.embed import embed_flow

    c, client = cluster
    client.run(_slow_down, "v2a.stages.embed", "embed_clips", 1.0)
    out = tmp_path / "run"
    _ingest(out, synth_dir)
    emb = out / "embeddings"
    runner = DaskTaskRunner(address=c.scheduler_address)
    summary = _run_while_killing(
        c.scheduler_address, lambda: embed_flow.with_options(task_runner=runner, result_storage=tmp_path / "cache")(
            str(out), profile="tiny", embed=EMBED),
        lambda: any(emb.glob("shard-*.parquet")))

    assert summary["shards"] == 6
    rows = pd.read_parquet(emb)  # hidden temporaries a killed worker left are no part of the table
    assert len(list(emb.glob("shard-*.parquet"))) == 6 and len(rows) == 12 and not rows["clip_id"].duplicated().any()
    again = embed_flow.with_options(task_runner=runner, result_storage=tmp_path / "cache")(
        str(out), profile="tiny", embed=EMBED)
    assert again["skipped"] == 6 and again["rows"] == 0  # nothing left to do, nothing done twice


def _generations(gen_dir):
    from storage_schemas import generations as schema
    from v2a.io import parquet

    return parquet.read_table(str(gen_dir / "table"), schema.SCHEMA).to_pandas()


def test_a_worker_killed_mid_generate_loses_no_sample_and_the_audio_is_identical(cluster, synth_dir, tmp_path,
                                                                                 prefect_harness):
    from prefect_dask import DaskTaskRunner

    from flows.embed import embed_flow
    from flows.generate import generate_flow

    c, client = cluster
    out = tmp_path / "run"
    _ingest(out, synth_dir)
    embed_flow.with_options(result_storage=tmp_path / "cache")(str(out), profile="tiny", embed=EMBED)
    runner = DaskTaskRunner(address=c.scheduler_address)

    def generate(run_id):
        return generate_flow.with_options(task_runner=runner, result_storage=tmp_path / "cache")(
            str(out / "embeddings"), str(out), run_id, profile="tiny", generate=GENERATE.model_copy(update={"shard_size": 3}))

    generate("straight")  # uninterrupted, on the same kind of workers
    client.run(_slow_down, "v2a.io.generations", "write_batch", 1.0)
    killed_dir = out / "generations" / "killed"
    summary = _run_while_killing(c.scheduler_address, lambda: generate("killed"),
                                 lambda: any((killed_dir / "table").glob("batch-*.parquet")))

    straight, killed = _generations(out / "generations" / "straight"), _generations(killed_dir)
    assert summary["generated"] + summary["skipped"] == len(straight) and len(straight) >= 12
    assert not killed.duplicated(["clip_id", "sample"]).any()                      # none written twice
    assert sorted(zip(killed["clip_id"], killed["sample"])) == sorted(zip(straight["clip_id"], straight["sample"]))
    assert not list((killed_dir / "table").glob("batch-*.parquet"))                # every shard merged
    for clip_id, sample in zip(straight["clip_id"], straight["sample"]):
        name = f"{clip_id}__s{sample}.wav"
        a = (out / "generations" / "straight" / "audio" / name).read_bytes()
        assert (killed_dir / "audio" / name).read_bytes() == a, name              # same seed, same bytes
    assert np.all(killed["host"].notna()) and set(killed["device"]) == {"cpu"}
