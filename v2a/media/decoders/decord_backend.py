"""decord backend: frames by index through decord's frame index; the audio through PyAV.

The VideoReader indexes the file when it opens, then decodes forward from the nearest keyframe to
each wanted frame; only those frames are converted. decord 0.6 is worked around where it is wrong:

- Rotated video: decord turns frames by the display matrix or ``rotate`` tag itself, correctly for
  180 degrees but garbled for 90 and 270 (a 4-channel array of the wrong size; batches raise). A
  rotated file's video stream is therefore first copied into memory without its rotation (a remux,
  no re-encoding) and the frames are turned upright here, like every backend's.
- Audio: its AudioReader returns garbage (NaN, huge values) for the channels past the second of a
  5.1 track and decodes the whole track at once, so the audio comes from PyAV's audio-only pass
  (``pyav_backend.decode_audio``), which stops at the clip's audio length.
- What decord cannot decode (AV1: its FFmpeg has no decoder for it; some small frame widths, where
  its frame copy fails on a buffer-size check) is refused per clip with that reason and the remedy
  (another decoder), not called a corrupt file.

For these reasons ``auto`` never picks decord (``decoders.PREFERENCE``); it stays for comparison.
"""

from __future__ import annotations

import io

import av
import numpy as np

from .base import (DecodedClip, MediaError, Sampling, check_coverage, clip_duration, corrupt, played_at, probe,
                   target_times, upright)

NAME = "decord"


def available() -> bool:
    try:
        import decord  # noqa: F401
    except ImportError:
        return False
    return True


_OTHER_DECODER = "decode it with --decoder pyav or torchcodec"


def decode(source, sampling: Sampling) -> DecodedClip:
    import decord

    from .pyav_backend import decode_audio

    info = probe(source)  # decord cannot say which streams a file has without failing on a missing one
    if not info.has_video:
        raise MediaError("file has no video stream")
    try:
        video = _without_rotation(source) if info.rotation else source.open_arg()
        reader = decord.VideoReader(video, ctx=decord.cpu(0), num_threads=sampling.threads)
        count = len(reader)
        if count == 0:
            raise MediaError("video stream has no decodable frames")
        stamps = np.asarray(reader.get_frame_timestamp(np.arange(count)), dtype=np.float64)  # (count, 2)
        start = float(stamps[0, 0])
        duration = clip_duration(float(stamps[-1, 1]) - start, sampling)
        targets = target_times(duration, sampling)
        check_coverage(float(stamps[-1, 1]) - start, float(targets[-1]), duration)
        index = played_at(stamps[:, 0] - start, targets)
        wanted, inverse = np.unique(index, return_inverse=True)  # a frame shown at several targets: decoded once
        frames = upright(reader.get_batch(wanted.tolist()).asnumpy()[inverse], info.rotation)
        del reader
    except MediaError:
        raise
    except (decord.DECORDError, RuntimeError) as err:
        raise _decord_error(err, info) from err
    wave = decode_audio(source, sampling) if sampling.audio and info.has_audio else None
    times = (stamps[index, 0] - start).astype(np.float32)
    return DecodedClip(np.ascontiguousarray(frames), times, wave, sampling.sample_rate, duration)


def _decord_error(err: BaseException, info) -> MediaError:
    text = str(err)
    if "cannot find video stream" in text:  # the stream is there (probe saw it): decord has no decoder for it
        return MediaError(f"decord cannot decode {(info.video_codec or 'this').upper()} video (its FFmpeg has no decoder for it); {_OTHER_DECODER}")
    if "DECORDArrayCopyFromTo" in text:
        size = f"{info.width}x{info.height} " if info.width else ""
        return MediaError(f"decord 0.6 cannot return {size}frames (its frame copy fails for some small widths); "
                          f"{_OTHER_DECODER}")
    return corrupt(err)


def _without_rotation(source) -> io.BytesIO:
    """The video stream alone, remuxed into memory with an upright display matrix and no tags: an MP4
    into MP4 (keeping its time base), anything else into Matroska (which takes any codec)."""
    last: Exception | None = None
    for fmt in ("mp4", "matroska"):
        buf = io.BytesIO()
        try:
            with av.open(source.open_arg()) as inp:
                if fmt == "mp4" and "mp4" not in inp.format.name.split(","):
                    continue
                vstream = inp.streams.video[0]
                with av.open(buf, "w", format=fmt) as out:
                    copy = out.add_stream_from_template(vstream)
                    copy.metadata.clear()
                    copy.set_display_rotation(0)
                    for packet in inp.demux(vstream):
                        if not packet.size:  # the demuxer's end-of-stream marker (Matroska keyframes may lack a dts)
                            continue
                        packet.stream = copy
                        out.mux(packet)
        except (av.FFmpegError, ValueError) as err:
            last = err
            continue
        buf.seek(0)
        return buf
    raise corrupt(last)
