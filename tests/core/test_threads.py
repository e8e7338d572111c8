"""Model work runs with a thread count set by the machine, not by what ran before it in the process:
otherwise a resumed (or standalone) stage computes different bits from the uninterrupted pipeline."""

import hashlib
import threading
import time

import numpy as np
import pytest
import torch

from v2a.core.threads import machine_threads, pinned_threads

needs_two = pytest.mark.skipif(machine_threads() < 2, reason="one CPU: every thread count is the same")


@pytest.fixture
def restore_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_overlapping_decode_pools_leave_the_process_on_one_thread_and_a_pinned_block_does_not_care(restore_threads):
    # The history the pipeline makes: two embed tasks whose decode thread pools overlap (each decode
    # thread sets torch to 1 thread). A thread started afterwards gets 1 thread; pinned, it gets the machine's.
    from v2a.stages.embed import ordered_map

    def slow(x):
        time.sleep(0.1)
        return x

    def embed_task(delay):
        time.sleep(delay)
        list(ordered_map(slow, range(6), 2, "thread"))

    tasks = [threading.Thread(target=embed_task, args=(d,)) for d in (0, 0.15)]
    for t in tasks:
        t.start()
    for t in tasks:
        t.join()
    seen = {}

    def later_stage():
        seen["unpinned"] = torch.get_num_threads()
        with pinned_threads() as n:
            seen["pinned"], seen["n"] = torch.get_num_threads(), n
            seen["deterministic"] = torch.are_deterministic_algorithms_enabled()
        seen["after"] = torch.get_num_threads()

    t = threading.Thread(target=later_stage)
    t.start()
    t.join()
    assert seen["pinned"] == seen["n"] == machine_threads()
    assert seen["deterministic"] and not torch.are_deterministic_algorithms_enabled()
    assert seen["after"] == seen["unpinned"]  # the previous count comes back


def test_machine_threads_follows_omp_num_threads_as_the_process_started(monkeypatch):
    assert machine_threads(omp="3") == 3 and machine_threads(omp="") >= 1
    before = machine_threads()
    # What starting a Dask LocalCluster does to the process that starts it: the count model work runs with
    # stays the process's own (else a dask-runner flow trains its mapper on 1 thread, the thread runner on all).
    monkeypatch.setenv("OMP_NUM_THREADS", "1" if before != 1 else "2")
    assert machine_threads() == before


def _train(out, prior_threads: int) -> bytes:
    from tests.mapper.conftest import ClassPairs
    from v2a.mapper import TrainConfig, train_mapper

    torch.set_num_threads(prior_threads)  # what an earlier stage left the process with
    data = ClassPairs(classes=4, dim=32, seed=2)
    (tc, ta, _, _), (vc, va, _, _) = data.draw(43), data.draw(8)
    config = TrainConfig(mapper="diff-mlp", depth=1, expansion=4, epochs=3, batch_size=32, lr=1e-3,
                         num_timesteps=100, sampling_steps=10, val_sampling_steps=5)
    train_mapper(tc, ta, vc, va, config, out, progress=False)
    return (out / "model.safetensors").read_bytes()


@needs_two
def test_the_mapper_does_not_depend_on_the_thread_count_the_process_was_left_with(tmp_path, restore_threads):
    one = _train(tmp_path / "after-one", 1)
    assert torch.get_num_threads() == 1  # restored for whatever runs next
    two = _train(tmp_path / "after-two", 2)
    assert hashlib.sha256(one).hexdigest() == hashlib.sha256(two).hexdigest()


class _Recording:
    """The real generator, keeping the float waveforms it returns (a 16-bit WAV rounds away most
    thread-count differences of a tiny model; the paper-size one's show as 1-step WAV differences)."""

    def __init__(self, inner):
        self.inner, self.waves = inner, []

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def generate(self, *args, **kwargs):
        waves = self.inner.generate(*args, **kwargs)
        self.waves.append(np.asarray(waves).tobytes())
        return waves


def _generate(gen_dir, prior_threads: int) -> list[bytes]:
    from v2a.runtime.model_cache import empty_text_embedding, get_model
    from v2a.stages import generate

    torch.set_num_threads(prior_threads)
    generator = _Recording(get_model("tiny", "generator"))
    rng = np.random.default_rng(0)
    rows = []
    for i in range(2):
        frames = rng.normal(size=(3, generator.cond_dim)).astype(np.float32)
        rows.append({"clip_id": f"clip{i}", "label": None, "image_frames": (frames / np.linalg.norm(frames)).tolist()})
    generate.generate_clips(rows, str(gen_dir), "r1", generate.Conditioner("no-mapper", generator), generator,
                            empty_text_embedding("tiny"), samples=1, seconds=1.0, steps=4, batch_size=2, run_seed=3)
    assert len(list(gen_dir.rglob("*.wav"))) == 2
    return generator.waves


@needs_two
def test_generated_audio_does_not_depend_on_the_thread_count_the_process_was_left_with(tmp_path, restore_threads):
    one = _generate(tmp_path / "after-one", 1)
    two = _generate(tmp_path / "after-two", 2)
    assert len(one) == 1 and one == two
