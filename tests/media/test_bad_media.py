"""Every awkward input either embeds (finite vectors) or becomes an errors row a person can act on,
and one bad file never stops the others."""

import numpy as np
import pytest

from tests import bad_media
from v2a.stages import embed
from v2a.media import MediaError, read_clip
from v2a.runtime.model_cache import get_model


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return bad_media.build(tmp_path_factory.mktemp("bad_media"))


@pytest.fixture(scope="module")
def outcome(folder):
    """One embed run over the whole folder, as a shard of a real run would see it."""
    clips = [{"clip_id": name.replace(".", "_"), "split": "test", "label": None,
              "kind": "image" if path.suffix == ".png" or path.suffix == ".jpg" else "video", "uri": str(path)}
             for name, path in folder.items()]
    block, errors = embed.embed_clips(clips, get_model("tiny", "clip"), get_model("tiny", "clap"),
                                      num_frames=4, max_seconds=10.0, batch_size=16)
    rows = block.rows()
    return {r["clip_id"]: r for r in rows}, {e["clip_id"]: e for e in errors}


@pytest.mark.parametrize("name", list(bad_media.CASES))
def test_each_awkward_input_embeds_or_becomes_an_error_with_a_reason(outcome, name):
    rows, errors = outcome
    clip_id = name.replace(".", "_")
    kind, detail = bad_media.CASES[name][1]
    if kind == "row":
        assert clip_id in rows, f"{name}: {errors.get(clip_id, {}).get('reason')}"
        row = rows[clip_id]
        assert np.isfinite(np.asarray(row["image_frames"], np.float32)).all()
        if detail:
            assert row["audio_emb"] is not None and np.isfinite(row["audio_emb"]).all()
        else:
            assert row["audio_emb"] is None
    else:
        assert clip_id in errors and clip_id not in rows
        reason = errors[clip_id]["reason"]
        assert detail in reason
        assert "object at 0x" not in reason  # a reason, not a Python repr


def test_the_run_over_a_folder_of_awkward_inputs_accounts_for_every_file(outcome):
    rows, errors = outcome
    assert len(rows) + len(errors) == len(bad_media.CASES)
    assert not set(rows) & set(errors)


def test_a_long_clip_is_sampled_over_its_first_max_seconds(folder):
    clip = read_clip(str(folder["long_12s.mp4"]), num_frames=4, max_seconds=10.0)
    assert clip.duration == pytest.approx(10.0)
    assert len(clip.audio) == 10 * 16000 and clip.frame_times.max() < 10.0


def test_a_clip_shorter_than_one_frame_period_still_gives_its_frames(folder):
    clip = read_clip(str(folder["short_0.3s.mp4"]), frame_rate=1.0, max_seconds=10.0)
    assert len(clip.frames) == 1


def test_sixteen_bit_png_keeps_its_gradient_instead_of_saturating(folder):
    frames = read_clip(str(folder["gray16.png"])).frames
    assert frames.min() < 10 and frames.max() > 245 and len(np.unique(frames)) > 16


def test_an_mp4_cut_before_its_index_is_called_truncated(folder):
    with pytest.raises(MediaError, match="truncated or corrupt.*moov"):
        read_clip(str(folder["truncated.mp4"]))


def test_silence_prepares_to_zeros_not_nan():
    preparer = get_model("tiny", "clap").audio_preparer
    prepared = preparer(np.zeros(16000, np.float32), 16000).numpy()
    assert np.isfinite(prepared).all() and not prepared.any()


def test_silent_audio_embeds_to_a_finite_vector():
    emb = get_model("tiny", "clap").encode_audio([np.zeros(16000, np.float32)], 16000)
    assert np.isfinite(emb).all()


@pytest.mark.parametrize("rate", [8000, 22050, 44100, 48000, 96000])
def test_audio_at_any_common_rate_comes_out_as_16k(tmp_path, rate):
    path = bad_media.write_video(tmp_path / f"a{rate}.mkv", seconds=1.0, audio_rate=rate, audio_codec="flac")
    clip = read_clip(str(path), num_frames=2)
    assert abs(len(clip.audio) - 16000) <= 16  # one second, whatever the source rate
