import numpy as np
import pytest
import soundfile as sf

from storage_schemas import generations as generations_schema
from v2a import generate, tables
from v2a.model_cache import empty_text_embedding, get_model


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
    tables.conform(df, generations_schema.SCHEMA)


def test_text_baseline_conditions_on_the_label(generator, tmp_path):
    rows = _rows(2, generator.cond_dim)
    _run(rows, tmp_path, generator, batch_size=2, mode="text")
    df = generate.read_generations(str(tmp_path))
    assert set(df["conditioning"]) == {"text"} and df["aggregator"].isna().all()


def test_clip_seeds_differ_between_clips_and_samples():
    seeds = {generate.derive_seed(0, c, s) for c in ("a", "b") for s in (0, 1)}
    assert len(seeds) == 4
