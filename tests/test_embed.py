import numpy as np
import pytest

from storage_schemas import clips as clips_schema
from storage_schemas import embeddings as embeddings_schema
from storage_schemas import errors as errors_schema
from v2a import embed, ingest, tables
from v2a.model_cache import get_model


@pytest.fixture(scope="module")
def clips(synth_dir, tmp_path_factory):
    uri = str(tmp_path_factory.mktemp("ingest") / "clips.parquet")
    ingest.ingest(uri, csv=str(synth_dir / "vggsound.csv"), videos=str(synth_dir / "videos"))
    return tables.read_table(uri, clips_schema.SCHEMA).to_pylist()


@pytest.fixture(scope="module")
def encoders():
    return get_model("tiny", "clip"), get_model("tiny", "clap")


def test_rows_hold_one_clip_vector_per_frame_and_one_clap_vector(clips, encoders):
    rows, errors = embed.embed_clips(clips[:3], *encoders, num_frames=4, max_seconds=2.0)
    assert errors == []
    table = tables.conform(rows, embeddings_schema.SCHEMA)
    assert table.num_rows == 3
    for row in rows:
        frames = np.asarray(row["image_frames"])
        assert frames.shape == (4, encoders[0].embed_dim)
        assert np.allclose(np.linalg.norm(frames, axis=1), 1, atol=1e-4)
        assert np.isclose(np.linalg.norm(row["audio_emb"]), 1, atol=1e-4)
        assert row["clip_model_id"] == encoders[0].model_id and row["clap_model_id"] == encoders[1].model_id


def test_an_image_gets_one_frame_and_no_audio(synth_dir, encoders):
    images = ingest.read_image_folder(str(synth_dir / "images"))
    rows, errors = embed.embed_clips(images[:1], *encoders)
    assert len(rows[0]["image_frames"]) == 1 and rows[0]["audio_emb"] is None


def test_a_bad_file_becomes_an_error_row_and_the_rest_completes(clips, encoders, tmp_path):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"")
    broken = {**clips[0], "clip_id": "broken", "uri": str(bad)}
    rows, errors = embed.embed_clips([broken, clips[1]], *encoders, num_frames=2)
    assert [r["clip_id"] for r in rows] == [clips[1]["clip_id"]]
    assert errors[0]["clip_id"] == "broken" and "empty" in errors[0]["reason"]


def test_a_finished_shard_is_skipped_and_a_changed_setting_re_embeds(clips, encoders, tmp_path):
    out, err = str(tmp_path / "emb"), str(tmp_path / "errors")
    ids = [c["clip_id"] for c in clips[:4]]
    by_id = {c["clip_id"]: c for c in clips}
    plans = embed.plan_shards(ids, out, err, 2, encoders[0].model_id, encoders[1].model_id, {"num_frames": 2})
    assert len(plans) == 2
    first = [embed.run_shard(p, by_id, *encoders, 2, 2.0, 8) for p in plans]
    again = [embed.run_shard(p, by_id, *encoders, 2, 2.0, 8) for p in plans]
    assert [r["skipped"] for r in first] == [False, False] and [r["skipped"] for r in again] == [True, True]
    df = embed.read_embeddings(out)
    assert sorted(df["clip_id"]) == sorted(ids)

    changed = embed.plan_shards(ids, out, err, 2, encoders[0].model_id, encoders[1].model_id, {"num_frames": 3})
    assert {p.uri for p in changed}.isdisjoint({p.uri for p in plans})
    assert len(embed.remove_stale_shards(out, changed)) == 2


def test_errors_of_a_shard_are_written_with_it(clips, encoders, tmp_path):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not media" * 100)
    by_id = {"broken": {**clips[0], "clip_id": "broken", "uri": str(bad)}, clips[1]["clip_id"]: clips[1]}
    plan = embed.plan_shards(list(by_id), str(tmp_path / "emb"), str(tmp_path / "err"), 8, "a", "b", {})[0]
    embed.run_shard(plan, by_id, *encoders, 2, 2.0, 8)
    errors = tables.read_table(str(tmp_path / "err"), errors_schema.SCHEMA).to_pylist()
    assert [e["clip_id"] for e in errors] == ["broken"]
