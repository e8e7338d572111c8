"""`v2a map` (v2a.tools.map_embeddings.map_embeddings): each clip's samples are its own, whatever the table's order."""

import numpy as np
import pytest

from storage_schemas import embeddings as embeddings_schema
from storage_schemas import mapped as mapped_schema
from v2a.io import parquet


def _embeddings(n, dim, seed=0):
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        frames = rng.normal(size=(2, dim)).astype(np.float32)
        rows.append({"clip_id": f"clip{i}", "split": "test", "label": None, "kind": "video",
                     "image_frames": frames.tolist(), "frame_times": [0.0, 1.0], "audio_emb": None,
                     "clip_model_id": "m", "clap_model_id": "n"})
    return rows


@pytest.fixture(scope="module")
def diffusion_checkpoint(tmp_path_factory):
    from v2a.mapper.trainer import TrainConfig, train_mapper

    out = tmp_path_factory.mktemp("mapper")
    x = np.random.default_rng(0).normal(size=(16, 16)).astype(np.float32)
    train_mapper(x, x, None, None, TrainConfig(mapper="diff-mlp", epochs=1, batch_size=8), out, progress=False)
    return out


def _mapped(uri):
    table = parquet.read_table(uri, mapped_schema.SCHEMA, "mapped").to_pandas()
    return {(c, int(s)): np.asarray(e) for c, s, e in zip(table["clip_id"], table["sample"], table["audio_emb"])}


def test_reversing_the_table_changes_no_clips_samples(diffusion_checkpoint, tmp_path):
    from v2a.tools.map_embeddings import map_embeddings

    rows = _embeddings(5, 16)
    forward, backward = tmp_path / "fwd.parquet", tmp_path / "bwd.parquet"
    parquet.write_table(rows, str(forward), embeddings_schema.LEGACY_SCHEMA, "embeddings")
    parquet.write_table(rows[::-1], str(backward), embeddings_schema.LEGACY_SCHEMA, "embeddings")
    map_embeddings(str(diffusion_checkpoint), str(forward), str(tmp_path / "a.parquet"), samples=2, steps=4, seed=3)
    map_embeddings(str(diffusion_checkpoint), str(backward), str(tmp_path / "b.parquet"), samples=2, steps=4, seed=3)
    a, b = _mapped(str(tmp_path / "a.parquet")), _mapped(str(tmp_path / "b.parquet"))
    assert a.keys() == b.keys() and len(a) == 10
    for key in a:
        np.testing.assert_allclose(a[key], b[key], atol=1e-6)
    assert not np.allclose(a[("clip0", 0)], a[("clip0", 1)])  # samples still differ from each other


def test_map_gives_the_conditioning_generate_uses(diffusion_checkpoint, tmp_path):
    from v2a.stages.generate import Conditioner
    from v2a.mapper.checkpoint import load_mapper
    from v2a.tools.map_embeddings import map_embeddings

    rows = _embeddings(3, 16, seed=1)
    uri = tmp_path / "emb.parquet"
    parquet.write_table(rows, str(uri), embeddings_schema.LEGACY_SCHEMA, "embeddings")
    map_embeddings(str(diffusion_checkpoint), str(uri), str(tmp_path / "m.parquet"), samples=2, steps=4, seed=5)
    mapped = _mapped(str(tmp_path / "m.parquet"))

    class _Generator:  # the conditioner only needs a generator for the text baseline
        pass

    conditioner = Conditioner("mapper", _Generator(), load_mapper(diffusion_checkpoint), mapper_steps=4, run_seed=5)
    expected = conditioner(rows, samples=2)
    for i, row in enumerate(rows):
        for s in range(2):
            np.testing.assert_allclose(mapped[(row["clip_id"], s)], expected[i, s], atol=1e-6)


@pytest.fixture(scope="module")
def guided_checkpoint(tmp_path_factory):
    """A diffusion mapper trained long enough that its conditional and unconditional predictions differ."""
    from v2a.mapper.trainer import TrainConfig, train_mapper

    out = tmp_path_factory.mktemp("guided-mapper")
    x = np.random.default_rng(1).normal(size=(64, 16)).astype(np.float32)
    train_mapper(x, x, None, None, TrainConfig(mapper="diff-mlp", epochs=40, batch_size=16, lr=3e-3), out,
                 progress=False)
    return out


def test_map_with_another_guidance_moves_along_the_line_from_unconditional_to_conditional(guided_checkpoint):
    """Classifier-free guidance: x0 = uncond + g (cond - uncond). With one network call (steps=2: DALLE2's
    spacing takes one step from t=T-1 straight to x0) the output is that x0, normalised, so guidance g lies in the plane of g=0 (unconditional) and g=1 (conditional),
    between them for 0 < g < 1 and beyond the conditional one for g > 1."""
    from v2a.mapper.checkpoint import load_mapper

    mapper = load_mapper(guided_checkpoint)
    x = np.random.default_rng(5).normal(size=(3, 16)).astype(np.float32)

    def mapped(g):
        return mapper.map(x, seed=7, steps=2, guidance_scale=g)[:, 0]

    uncond, cond, default = mapped(0.0), mapped(1.0), mapper.map(x, seed=7, steps=2)[:, 0]
    assert not np.allclose(uncond, cond, atol=1e-2)  # guidance has something to move along
    for g in (0.5, 3.0):
        out = mapped(g)
        assert not np.allclose(out, default, atol=1e-4)
        for i in range(len(x)):
            basis = np.stack([uncond[i], cond[i]], axis=1)
            (a, b), *_ = np.linalg.lstsq(basis, out[i], rcond=None)
            assert np.allclose(basis @ [a, b], out[i], atol=1e-4)  # in the plane of the two
            assert b > 0 and (a > 0 if g < 1 else a < 0), (g, a, b)
