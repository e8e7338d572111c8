import numpy as np
import pytest
import soundfile as sf

from storage_schemas import conform
from storage_schemas import generations as generations_schema
from v2a.stages import generate
from v2a.io import parquet
from v2a.runtime.model_cache import empty_text_embedding, get_model


def _rows(n, dim, seed=0):
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        frames = rng.normal(size=(3, dim)).astype(np.float32)
        frames /= np.linalg.norm(frames, axis=1, keepdims=True)
        rows.append({"clip_id": f"clip{i}", "label": f"label {i}", "image_frames": frames.tolist()})
    return rows


@pytest.fixture(scope="module")
def generator():
    return get_model("tiny", "generator")


def _run(rows, gen_dir, generator, batch_size, mode="no-mapper"):
    conditioner = generate.Conditioner(mode, generator)
    return generate.generate_clips(rows, str(gen_dir), "r1", conditioner, generator, empty_text_embedding("tiny"),
                                   seconds=1.0, steps=3, batch_size=batch_size, run_seed=7)


def test_same_seed_gives_identical_audio_whatever_the_batch_size(generator, tmp_path):
    rows = _rows(3, generator.cond_dim)
    _run(rows, tmp_path / "b1", generator, batch_size=1)
    _run(rows, tmp_path / "b3", generator, batch_size=3)
    for i in range(3):
        a, sr = sf.read(generate.audio_uri(str(tmp_path / "b1"), f"clip{i}", 0))
        b, _ = sf.read(generate.audio_uri(str(tmp_path / "b3"), f"clip{i}", 0))
        assert sr == 16000 and len(a) == 16000
        assert np.array_equal(a, b)


def test_a_resumed_run_writes_nothing_twice(generator, tmp_path):
    rows = _rows(3, generator.cond_dim)
    first = _run(rows[:2], tmp_path, generator, batch_size=2)
    second = _run(rows, tmp_path, generator, batch_size=2)
    assert first["generated"] == 2 and second == {"generated": 1, "skipped": 2}
    df = generate.read_generations(str(tmp_path))
    assert sorted(df["clip_id"]) == ["clip0", "clip1", "clip2"]
    conform(df, generations_schema.SCHEMA)


def test_text_baseline_conditions_on_the_label(generator, tmp_path):
    rows = _rows(2, generator.cond_dim)
    _run(rows, tmp_path, generator, batch_size=2, mode="text")
    df = generate.read_generations(str(tmp_path))
    assert set(df["conditioning"]) == {"text"} and df["aggregator"].isna().all()


def test_clip_seeds_differ_between_clips_and_samples():
    seeds = {generate.derive_seed(0, c, s) for c in ("a", "b") for s in (0, 1)}
    assert len(seeds) == 4


def test_mapped_conditioning_of_a_clip_does_not_depend_on_its_batch(generator, tmp_path):
    from v2a.mapper.checkpoint import load_mapper
    from v2a.mapper.trainer import TrainConfig, train_mapper

    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, generator.cond_dim)).astype(np.float32)
    train_mapper(x, x, None, None, TrainConfig(mapper="diff-mlp", epochs=1, batch_size=8), tmp_path, progress=False)
    conditioner = generate.Conditioner("mapper", generator, load_mapper(tmp_path), mapper_steps=4)
    rows = _rows(3, generator.cond_dim)
    together = conditioner(rows, samples=2)
    alone = conditioner(rows[2:], samples=2)
    assert np.allclose(together[2], alone[0], atol=1e-6)
    assert not np.allclose(together[2, 0], together[2, 1])


def test_a_damaged_output_file_is_generated_again(generator, tmp_path):
    rows = _rows(2, generator.cond_dim)
    _run(rows, tmp_path, generator, batch_size=2)
    damaged = generate.audio_uri(str(tmp_path), "clip1", 0)
    good = open(damaged, "rb").read()
    open(damaged, "wb").write(good[:100])
    assert _run(rows, tmp_path, generator, batch_size=2) == {"generated": 1, "skipped": 1}
    assert open(damaged, "rb").read() == good
    assert len(generate.read_generations(str(tmp_path))) == 2
