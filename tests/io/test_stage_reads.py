"""What makes the stages scale: a shard reads only its own rows, done-checks stay inside their shard,
and a clip's split is read from the clips table wherever it is used."""

import numpy as np
import pyarrow.parquet as pq
import soundfile as sf

from v2a.stages import generate, ingest
from v2a.io import clips as clips_io
from v2a.io import embeddings as embeddings_io
from v2a.io import generations as generations_io
from v2a.io import parquet
from v2a.io.layout import RunLayout


def _clips(n, split_of=lambda i: "test" if i % 4 == 0 else "train"):
    return [{"clip_id": f"v{i:05d}_000000", "dataset": "vggsound", "split": split_of(i), "label": f"l{i % 3}",
             "kind": "video", "uri": f"/absent/v{i:05d}.mp4", "youtube_id": f"v{i:05d}", "start_seconds": 0}
            for i in range(n)]


def _embeddings(layout, ids, dim=8, seed=0):
    rng = np.random.default_rng(seed)
    for k in range(0, len(ids), 50):
        chunk = ids[k:k + 50]
        n = len(chunk)
        block = embeddings_io.EmbeddingBlock(
            chunk, ["video"] * n, rng.standard_normal((2 * n, dim), dtype=np.float32),
            np.arange(0, 2 * n + 1, 2), rng.standard_normal((n, dim), dtype=np.float32), np.ones(n, bool),
            ["c"] * n, ["a"] * n)
        embeddings_io.write_embeddings(block, f"{layout.embeddings}/shard-{k // 50:05d}.parquet")


def test_a_shard_reads_only_the_row_groups_of_its_own_clips(tmp_path, monkeypatch):
    layout = RunLayout(str(tmp_path))
    clips_io.write_clips(_clips(5000), layout.clips)
    decoded = []
    real = pq.ParquetFile.read_row_groups
    monkeypatch.setattr(pq.ParquetFile, "read_row_groups",
                        lambda self, groups, **kw: (lambda t: (decoded.append(t.num_rows), t)[1])(
                            real(self, groups, **kw)))
    mine = [f"v{i:05d}_000000" for i in range(2048, 2048 + 256)]
    rows = clips_io.clip_rows(layout.clips, mine)
    assert sorted(rows) == mine
    assert pq.ParquetFile(layout.clips).metadata.num_row_groups >= 4  # so there is something to skip
    assert 256 <= sum(decoded) <= 2 * 1024  # the one or two row groups that hold the shard, of 5000 rows


def test_the_generation_done_check_opens_only_its_own_shards_files(tmp_path, monkeypatch):
    gen = RunLayout(str(tmp_path)).generations("r1")
    shards = [[f"c{s}{i}" for i in range(3)] for s in range(3)]
    for shard in shards:
        rows = []
        for cid in shard:
            uri = generate.audio_uri(gen.root, cid, 0)
            generate.write_wav(uri, np.zeros(160, np.float32), 16000)
            rows.append({"run_id": "r1", "clip_id": cid, "sample": 0, "uri": uri, "seed": 0, "conditioning": "text",
                         "mapper_checkpoint_id": None, "mapper_kind": None, "aggregator": None,
                         "mapper_guidance": None, "mapper_steps": None, "generator_id": "g",
                         "generator_guidance": 2.5, "generator_steps": 2, "scheduler": "ddim", "seconds": 0.01,
                         "sample_rate": 16000, "gen_time_s": 0.1})
        generations_io.merge_shard(gen, generations_io.shard_key("r1", shard, 1), rows)
    assert len(parquet.table_files(gen.table)) == 3  # one part per shard
    opened = []
    real = sf.info
    monkeypatch.setattr(sf, "info", lambda f, *a, **k: (opened.append(str(getattr(f, "path", f))), real(f, *a, **k))[1])
    assert generate.done_samples(gen.root, shards[1]) == {(c, 0) for c in shards[1]}
    assert len(opened) == 3 and all(any(c in str(o) for c in shards[1]) for o in opened)


def test_a_clip_moved_to_another_split_is_seen_by_every_later_stage(tmp_path):
    from v2a.config import GenerateConfig
    from v2a.stages import generate as generate_stage
    from v2a.stages.shape import StageRun
    from v2a.stages.train import load_pairs

    layout = RunLayout(str(tmp_path))
    clips = _clips(40)
    clips_io.write_clips(clips, layout.clips)
    ids = [c["clip_id"] for c in clips]
    _embeddings(layout, ids)
    moved = ids[1]  # a train clip
    assert moved not in embeddings_io.split_ids(layout.embeddings, "test")
    clips[1]["split"] = "test"
    clips_io.write_clips(clips, layout.clips)  # re-split in the CSV and re-ingested; nothing re-embedded
    assert moved in embeddings_io.split_ids(layout.embeddings, "test")
    planned = generate_stage.STAGE.plan(GenerateConfig(split="test", shard_size=8),
                                        StageRun(str(tmp_path), args={"embeddings": layout.embeddings}), None)
    assert moved in sum((i.inputs["clip_ids"] for i in planned), [])
    tc, _, vc, _, info = load_pairs(layout.embeddings)
    assert info["n_train"] + info["n_val"] == 29  # 30 train clips before, one moved out
    assert embeddings_io.read_embeddings(layout.embeddings, split="test").set_index("clip_id").loc[moved, "split"] \
        == "test"


def test_embeddings_of_the_earlier_layout_still_read(tmp_path):
    from storage_schemas import embeddings as schema
    from v2a.stages.train import load_pairs

    rows = [{"clip_id": f"c{i}", "split": "train", "label": None, "kind": "video",
             "image_frames": [[float(i), 1.0], [float(i), 3.0]], "frame_times": [0.0, 1.0], "audio_emb": [1.0, 0.0],
             "clip_model_id": "m", "clap_model_id": "k"} for i in range(5)]
    parquet.write_table(rows, str(tmp_path / "embeddings" / "shard-0.parquet"), schema.LEGACY_SCHEMA)
    block = embeddings_io.read_block(str(tmp_path / "embeddings"))
    assert block.frames.shape == (10, 2) and block.frames_of(3).tolist() == [[3.0, 1.0], [3.0, 3.0]]
    tc, ta, vc, va, info = load_pairs(str(tmp_path / "embeddings"))  # split from the old table, with a warning
    assert info["n_train"] + info["n_val"] == 5


def test_streamed_pairs_equal_the_clip_by_clip_aggregation(tmp_path):
    from v2a.core.aggregate import aggregate_frames
    from v2a.io.pairs import load_pairs

    layout = RunLayout(str(tmp_path))
    clips = _clips(120)
    clips_io.write_clips(clips, layout.clips)
    _embeddings(layout, [c["clip_id"] for c in clips])
    block = embeddings_io.read_block(layout.embeddings)
    for how in ("mean", "middle", "random"):
        pairs = load_pairs(layout.embeddings, how, seed=3)
        expected = np.stack([aggregate_frames(block.frames_of(i), how, c, 3) for i, c in enumerate(block.clip_ids)])
        assert pairs.clip_ids == block.clip_ids
        np.testing.assert_allclose(pairs.clip, expected, atol=1e-6)
