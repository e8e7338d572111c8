import numpy as np
import pytest

from v2a.media import MediaError, read_clip


def _first_video(synth_dir):
    return sorted((synth_dir / "videos").glob("*.mp4"))[0]


def test_video_gives_evenly_spaced_frames_and_16k_mono_audio(synth_dir):
    clip = read_clip(str(_first_video(synth_dir)), num_frames=4)
    assert clip.frames.shape[0] == 4 and clip.frames.shape[-1] == 3 and clip.frames.dtype == np.uint8
    assert np.all(np.diff(clip.frame_times) > 0)
    assert clip.sample_rate == 16000
    assert abs(len(clip.audio) / 16000 - 2.0) < 0.1


def test_image_gives_one_frame_and_no_audio(synth_dir):
    image = sorted((synth_dir / "images").rglob("*.png"))[0]
    clip = read_clip(str(image))
    assert clip.frames.shape[0] == 1 and clip.audio is None


@pytest.mark.parametrize("content, reason", [(b"", "empty"), (b"this is not a video at all" * 10, "not a readable")])
def test_unusable_files_raise_media_errors_with_a_reason(tmp_path, content, reason):
    path = tmp_path / "bad.mp4"
    path.write_bytes(content)
    with pytest.raises(MediaError, match=reason):
        read_clip(str(path))


def test_missing_file_is_a_media_error(tmp_path):
    with pytest.raises(MediaError, match="not found"):
        read_clip(str(tmp_path / "nope.mp4"))


# EXIF orientation -> how the stored pixels are turned for display (EXIF 2.3, tag 0x0112)
_EXIF_TURNS = {1: lambda a: a, 2: lambda a: a[:, ::-1], 3: lambda a: np.rot90(a, 2), 6: lambda a: np.rot90(a, -1),
               8: lambda a: np.rot90(a, 1)}


@pytest.mark.parametrize("suffix", [".png", ".jpg"])
@pytest.mark.parametrize("orientation", sorted(_EXIF_TURNS))
def test_an_image_is_turned_by_its_exif_orientation(tmp_path, orientation, suffix):
    from PIL import Image

    stored = np.zeros((30, 40, 3), np.uint8)
    stored[:15, :13] = 255                      # a white block in the stored top-left corner
    stored[..., 2] = np.linspace(0, 250, 40, dtype=np.uint8)[None, :]
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = tmp_path / f"photo{suffix}"
    Image.fromarray(stored).save(path, exif=exif, **({"quality": 100, "subsampling": 0} if suffix == ".jpg" else {}))
    frame = read_clip(str(path)).frames[0]
    want = _EXIF_TURNS[orientation](stored)
    assert frame.shape == want.shape
    assert np.abs(frame.astype(int) - want.astype(int)).mean() < 2.0  # JPEG at quality 100 is nearly lossless


def test_channel_zero_is_kept_when_asked_as_audioldm_loads_audio(tmp_path):
    import av

    from v2a.media import read_clip

    path = tmp_path / "stereo.mp4"
    rate, seconds = 16000, 1.0
    t = np.arange(int(rate * seconds)) / rate
    left, right = 0.5 * np.sin(2 * np.pi * 440 * t), np.zeros_like(t)
    with av.open(str(path), "w") as out:
        vs = out.add_stream("libx264", rate=10)
        vs.width, vs.height, vs.pix_fmt = 64, 64, "yuv420p"
        st = out.add_stream("aac", rate=rate, layout="stereo")
        for i in range(10):
            frame = av.VideoFrame.from_ndarray(np.zeros((64, 64, 3), np.uint8), format="rgb24")
            for p in vs.encode(frame):
                out.mux(p)
        samples = np.stack([left, right]).astype(np.float32)
        for start in range(0, samples.shape[1], 1024):
            chunk = np.ascontiguousarray(samples[:, start:start + 1024])
            frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="stereo")
            frame.sample_rate = rate
            for p in st.encode(frame):
                out.mux(p)
        for s in (vs, st):
            for p in s.encode():
                out.mux(p)
    first = read_clip(str(path), num_frames=1, channels="first", backend="pyav").audio
    mean = read_clip(str(path), num_frames=1, channels="mean", backend="pyav").audio
    n = min(len(first), len(mean))
    assert np.abs(first[:n]).max() > 0.4
    np.testing.assert_allclose(mean[:n], first[:n] / 2, atol=2e-3)  # the silent right channel halves the mean
