import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from v2a.stages.shape import WorkItem

from storage_schemas import conform
from storage_schemas import clips as clips_schema
from storage_schemas import embeddings as embeddings_schema
from storage_schemas import errors as errors_schema
from v2a.stages import embed, ingest
from v2a.io import embeddings as embeddings_io
from v2a.io.embeddings import read_embeddings
from v2a.io import parquet
from v2a.runtime.model_cache import get_model


@pytest.fixture(scope="module")
def clips(synth_dir, tmp_path_factory):
    uri = str(tmp_path_factory.mktemp("ingest") / "clips.parquet")
    ingest.ingest(uri, csv=str(synth_dir / "vggsound.csv"), videos=str(synth_dir / "videos"))
    return parquet.read_table(uri, clips_schema.SCHEMA).to_pylist()


@pytest.fixture(scope="module")
def encoders():
    return get_model("tiny", "clip"), get_model("tiny", "clap")


def test_rows_hold_one_clip_vector_per_frame_and_one_clap_vector(clips, encoders):
    block, errors = embed.embed_clips(clips[:3], *encoders, num_frames=4, max_seconds=2.0)
    rows = block.rows()
    assert errors == []
    table = embeddings_io.block_to_table(block)
    assert table.num_rows == 3
    for row in rows:
        frames = np.asarray(row["image_frames"])
        assert frames.shape == (4, encoders[0].embed_dim)
        assert np.allclose(np.linalg.norm(frames, axis=1), 1, atol=1e-4)
        assert np.isclose(np.linalg.norm(row["audio_emb"]), 1, atol=1e-4)
        assert row["clip_model_id"] == encoders[0].model_id and row["clap_model_id"] == encoders[1].model_id


def test_an_image_gets_one_frame_and_no_audio(synth_dir, encoders):
    images = ingest.read_image_folder(str(synth_dir / "images"))
    block, errors = embed.embed_clips(images[:1], *encoders)
    rows = block.rows()
    assert len(rows[0]["image_frames"]) == 1 and rows[0]["audio_emb"] is None


def test_a_bad_file_becomes_an_error_row_and_the_rest_completes(clips, encoders, tmp_path):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"")
    broken = {**clips[0], "clip_id": "broken", "uri": str(bad)}
    block, errors = embed.embed_clips([broken, clips[1]], *encoders, num_frames=2)
    rows = block.rows()
    assert [r["clip_id"] for r in rows] == [clips[1]["clip_id"]]
    assert errors[0]["clip_id"] == "broken" and "empty" in errors[0]["reason"]


def test_a_finished_shard_is_skipped_and_a_changed_setting_re_embeds(clips, encoders, tmp_path):
    out, err = str(tmp_path / "emb"), str(tmp_path / "errors")
    ids = [c["clip_id"] for c in clips[:4]]
    by_id = {c["clip_id"]: c for c in clips}
    plans = embed.plan_shards(ids, out, err, 2, encoders[0].model_id, encoders[1].model_id, {"num_frames": 2})
    assert len(plans) == 2
    first = [embed.run_shard(p, by_id, *encoders, 2, 2.0, 8) for p in plans]
    assert [r["skipped"] for r in first] == [False, False]
    # Whether a shard is done is asked once, by the stage's `done` (tasks/stage.py runs an item only when not).
    items = [WorkItem(str(p.index), {**p.__dict__, "clip_ids": list(p.clip_ids)}, {}) for p in plans]
    assert [embed.STAGE.done(i, None, None) for i in items] == [True, True]
    df = read_embeddings(out)
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
    errors = parquet.read_table(str(tmp_path / "err"), errors_schema.SCHEMA).to_pylist()
    assert [e["clip_id"] for e in errors] == ["broken"]


# --------------------------------------------------------------------------- bad inputs, parallel decode

@pytest.fixture(scope="module")
def damaged(clips, tmp_path_factory):
    from tests.media_variants import variants

    return variants(Path(clips[0]["uri"]), tmp_path_factory.mktemp("damaged"))


def _as(clip, clip_id, path):
    return {**clip, "clip_id": clip_id, "uri": str(path)}


def test_bad_inputs_become_error_rows_and_usable_ones_rows(clips, encoders, damaged):
    batch = [_as(clips[0], "truncated", damaged["truncated"]),
             _as(clips[0], "truncated-faststart", damaged["truncated_faststart"]),
             _as(clips[0], "audio-only", damaged["audio_only"]),
             _as(clips[0], "no-audio", damaged["no_audio"]),
             clips[1]]
    block, errors = embed.embed_clips(batch, *encoders, num_frames=3, max_seconds=10.0)  # the clips last 2 s
    rows = block.rows()
    reasons = {e["clip_id"]: e["reason"] for e in errors}
    assert set(reasons) == {"truncated", "truncated-faststart", "audio-only"}
    assert "truncated" in reasons["truncated"] and "truncated" in reasons["truncated-faststart"]
    assert "no video stream" in reasons["audio-only"]
    by_id = {r["clip_id"]: r for r in rows}
    assert list(by_id) == ["no-audio", clips[1]["clip_id"]]  # the input order
    assert by_id["no-audio"]["audio_emb"] is None and len(by_id["no-audio"]["image_frames"]) == 3
    # a 2-s clip asked for 10 s: its frames spread over the 2 s it has, its audio is what it has
    assert max(by_id[clips[1]["clip_id"]]["frame_times"]) < 2.0
    assert by_id[clips[1]["clip_id"]]["audio_emb"] is not None


@pytest.mark.parametrize("pool", ["thread", "process"])
def test_parallel_decode_gives_the_same_rows_in_the_same_order(clips, encoders, pool):
    one = embed.embed_clips(clips[:5], *encoders, num_frames=3, batch_size=4, workers=1)[0].rows()
    many = embed.embed_clips(clips[:5], *encoders, num_frames=3, batch_size=4, workers=2, pool=pool,
                             audio_batch_size=2)[0].rows()
    assert [r["clip_id"] for r in many] == [c["clip_id"] for c in clips[:5]]
    for a, b in zip(one, many):
        np.testing.assert_allclose(a["image_frames"], b["image_frames"], atol=1e-5)
        np.testing.assert_allclose(a["audio_emb"], b["audio_emb"], atol=1e-5)


def test_a_frame_rate_sets_the_frames_per_clip(clips, encoders):
    rows = embed.embed_clips(clips[:2], *encoders, frame_rate=2.0, max_seconds=10.0)[0].rows()
    assert [len(r["image_frames"]) for r in rows] == [4, 4]  # 2-s clips at 2 frames per second


def test_a_decoder_that_is_not_installed_fails_the_shard_not_each_clip(clips, encoders):
    with pytest.raises(ValueError, match="decoder"):
        embed.embed_clips(clips[:1], *encoders, decoder="no-such-decoder")


def test_the_errors_of_every_shard_are_counted_done_now_or_before(clips, encoders, tmp_path, damaged):
    by_id = {"audio-only": _as(clips[0], "audio-only", damaged["audio_only"]), clips[1]["clip_id"]: clips[1]}
    plans = embed.plan_shards(list(by_id), str(tmp_path / "emb"), str(tmp_path / "err"), 1, "a", "b", {})
    for plan in plans:
        embed.run_shard(plan, by_id, *encoders, 2, 2.0, 8)
    assert embed.count_errors(plans) == 1


# --------------------------------------------------------------------------- kill and resume

_STAGE = """
import sys, time
from storage_schemas import clips as clips_schema
from v2a.stages import embed
from v2a.io import parquet
from v2a.runtime.model_cache import get_model

clips_uri, out, err, pause = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
by_id = {c["clip_id"]: c for c in parquet.read_table(clips_uri, clips_schema.SCHEMA).to_pylist()[:6]}
encoders = get_model("tiny", "clip"), get_model("tiny", "clap")
plans = embed.plan_shards(list(by_id), out, err, 2, encoders[0].model_id, encoders[1].model_id, {"num_frames": 2})
embed.remove_stale_shards(out, plans)
for plan in plans:
    embed.run_shard(plan, by_id, *encoders, 2, 2.0, 8)
    time.sleep(pause)
"""


def _stage(clips_uri, out, err, pause):
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    return subprocess.Popen([sys.executable, "-c", _STAGE, clips_uri, str(out), str(err), str(pause)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def test_a_killed_run_restarted_embeds_each_clip_exactly_once(clips, tmp_path):
    clips_uri = str(tmp_path / "clips.parquet")
    parquet.write_table(clips[:6], clips_uri, clips_schema.SCHEMA, "clips")
    out, err = tmp_path / "emb", tmp_path / "err"
    first = _stage(clips_uri, out, err, pause=30.0)
    deadline = time.monotonic() + 120
    while not list(out.glob("shard-*.parquet")):
        assert first.poll() is None, first.stderr.read().decode()[-2000:]
        assert time.monotonic() < deadline, "the first shard never appeared"
        time.sleep(0.05)
    first.send_signal(signal.SIGKILL)
    first.wait()
    assert len(list(out.glob("shard-*.parquet"))) == 1  # killed with two of three shards to go
    # what a kill during a write leaves behind: a temporary next to the shards and the errors
    (out / ".shard-00001-0123456789abcdef.parquet.tmp-deadbeef").write_bytes(b"half a shard")
    err.mkdir(exist_ok=True)
    (err / ".embed-00001-0123456789abcdef.parquet.tmp-deadbeef").write_bytes(b"half")

    second = _stage(clips_uri, out, err, pause=0.0)
    assert second.wait(timeout=180) == 0, second.stderr.read().decode()[-2000:]
    df = read_embeddings(str(out))
    assert sorted(df["clip_id"]) == sorted(c["clip_id"] for c in clips[:6])  # none missing, none twice
    assert len(list(out.glob("shard-*.parquet"))) == 3
    leftovers = [p.name for p in (*out.iterdir(), *err.iterdir()) if ".tmp-" in p.name]
    assert leftovers == []


def test_reading_embeddings_for_some_clips_returns_only_those(clips, encoders, tmp_path):
    out, err = str(tmp_path / "emb"), str(tmp_path / "errors")
    ids = [c["clip_id"] for c in clips[:4]]
    by_id = {c["clip_id"]: c for c in clips}
    for plan in embed.plan_shards(ids, out, err, 2, encoders[0].model_id, encoders[1].model_id, {}):
        embed.run_shard(plan, by_id, *encoders, 2, 2.0, 8)
    wanted = [ids[0], ids[3]]
    assert sorted(read_embeddings(out, clip_ids=wanted)["clip_id"]) == sorted(wanted)


def test_a_stereo_clip_gets_the_clap_embedding_of_its_first_channel(tmp_path, encoders):
    """AudioLDM loads channel 0 (profile `clap.audio.channel: first`): a stereo clip whose channels
    differ embeds as its left channel alone would, not as their mean or its right channel."""
    from tests.bad_media import write_video

    def left(t):
        return 0.3 * np.sin(2 * np.pi * 440 * t)

    def right(t):
        return 0.3 * np.sign(np.sin(2 * np.pi * 97 * t)) * np.exp(-3 * t)

    kw = dict(seconds=1.0, audio_rate=16000, audio_codec="flac")  # lossless: the channels arrive as written
    files = {"stereo": write_video(tmp_path / "stereo.mkv", layout="stereo", sound=lambda t: np.stack([left(t), right(t)]), **kw),
             "left": write_video(tmp_path / "left.mkv", sound=left, **kw),
             "right": write_video(tmp_path / "right.mkv", sound=right, **kw),
             "mean": write_video(tmp_path / "mean.mkv", sound=lambda t: (left(t) + right(t)) / 2, **kw)}
    rows = [{"clip_id": name, "dataset": "t", "split": "test", "label": None, "kind": "video", "uri": str(path),
             "youtube_id": name, "start_seconds": 0} for name, path in files.items()]
    block, errors = embed.embed_clips(rows, *encoders, num_frames=2, max_seconds=1.0)
    assert errors == []
    emb = {r["clip_id"]: np.asarray(r["audio_emb"]) for r in block.rows()}
    assert np.allclose(emb["stereo"], emb["left"], atol=1e-5)
    for other in ("right", "mean"):  # the test can tell the channels apart
        assert not np.allclose(emb["stereo"], emb[other], atol=1e-3), other


# --------------------------------------------------------------------------- decode worker processes

def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _ignores_stop_signals(pid: int) -> bool:
    """Whether a worker's initializer has run: it ignores SIGINT and SIGTERM from then on (/proc SigIgn)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    ignored = int(next(line.split()[1] for line in status.splitlines() if line.startswith("SigIgn:")), 16)
    return all(ignored >> (sig - 1) & 1 for sig in (signal.SIGINT, signal.SIGTERM))


def _wait_gone(pids, seconds: float) -> list[int]:
    deadline = time.monotonic() + seconds
    while any(_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    return [p for p in pids if _alive(p)]


def test_no_decode_pool_starts_after_a_stop():
    from v2a.core import stopping

    stopping.request_stop()
    try:
        with pytest.raises(stopping.Stopped):
            next(embed.ordered_map(time.sleep, [0, 0], 2, "process"))
        assert 2 not in embed._PROCESS_POOLS
    finally:
        stopping.reset()


def test_decode_worker_processes_are_ended_on_the_stop_flag():
    import threading

    from v2a.core import stopping

    results = embed.ordered_map(time.sleep, [0] + [60] * 5, 2, "process")
    next(results)  # both workers started, each now in a 60-s call
    workers = list(embed._PROCESS_POOLS[2]._processes)
    assert len(workers) == 2 and all(_alive(p) for p in workers)
    raised = []

    def consume():
        try:
            next(results)
        except BaseException as err:  # noqa: BLE001 - what the waiting consumer gets is the point
            raised.append(err)

    waiting = threading.Thread(target=consume)
    waiting.start()
    started = time.monotonic()
    stopping.request_stop()
    try:
        waiting.join(timeout=10)
        assert time.monotonic() - started < 5, "the consumer waited for the workers' calls"
        assert raised and isinstance(raised[0], stopping.Stopped), raised
        assert _wait_gone(workers, 5) == [], "decode workers outlived the stop"
        assert 2 not in embed._PROCESS_POOLS
    finally:
        stopping.reset()


_POOL_CHILD = """
import json, sys, time
from v2a.stages import embed

results = embed.ordered_map(time.sleep, [0] + [60] * 5, 2, "process")
next(results)
print(json.dumps(list(embed._PROCESS_POOLS[2]._processes)), flush=True)
next(results)
"""


def test_decode_worker_processes_die_with_a_parent_killed_outright():
    """SIGKILL runs no clean-up in the parent: each worker notices its parent is gone."""
    import json

    proc = subprocess.Popen([sys.executable, "-c", _POOL_CHILD], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])})
    try:
        workers = json.loads(proc.stdout.readline())
        assert len(workers) == 2 and all(_alive(p) for p in workers)
        deadline = time.monotonic() + 120  # initialised: each watches its parent from then on
        while not all(_ignores_stop_signals(p) for p in workers):
            assert time.monotonic() < deadline, "the workers never finished starting"
            time.sleep(0.1)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert _wait_gone(workers, 5) == [], "decode workers outlived their killed parent"
