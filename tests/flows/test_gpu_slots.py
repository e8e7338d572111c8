"""The `gpu` concurrency slot is taken inside the task body: never by a cached task, never on CPU."""

from contextlib import contextmanager

from v2a.stages import ingest
from v2a.config import EmbedConfig


def _counting(taken: list):
    @contextmanager
    def concurrency(names, occupy=1, **kwargs):
        taken.append(names)
        yield

    return concurrency


def test_only_tasks_that_run_models_on_a_gpu_take_a_slot(synth_dir, tmp_path, prefect_harness, monkeypatch):
    import prefect.concurrency.sync

    import tasks.operations
    from flows.embed import embed_flow

    out = tmp_path / "run"
    ingest.ingest(str(out / "clips.parquet"), csv=str(synth_dir / "vggsound.csv"), videos=str(synth_dir / "videos"))
    taken: list = []
    monkeypatch.setattr(prefect.concurrency.sync, "concurrency", _counting(taken))
    settings = EmbedConfig(num_frames=2, max_seconds=2.0, shard_size=6)

    # On CPU: no slot at all, even for work that runs.
    cpu_out = tmp_path / "cpu"
    ingest.ingest(str(cpu_out / "clips.parquet"), csv=str(synth_dir / "vggsound.csv"),
                  videos=str(synth_dir / "videos"))
    embed_flow(str(cpu_out), profile="tiny", embed=settings)
    assert taken == []

    # As if the device were CUDA: the planning task and the task embedding the 2 shards (shards_per_task: 8)
    # hold a slot of the device's limit (gpu:HOST:DEVICE) while they run...
    monkeypatch.setattr(tasks.operations, "uses_gpu", lambda device: True)
    first = embed_flow(str(out), profile="tiny", embed=settings)
    assert first["shards"] == 2 and taken == [tasks.operations.gpu_slot(settings.device)] * 2
    # ...and a cached re-run never asks for one.
    taken.clear()
    again = embed_flow(str(out), profile="tiny", embed=settings)
    assert again["skipped"] == 2 and taken == []
