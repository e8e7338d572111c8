"""torchcodec backend: ``VideoDecoder.get_frames_played_at`` and ``AudioDecoder``.

Two passes (one decoder per stream). Exact seek mode scans the file's packet index when it opens
(demuxing only, no decoding), so frames are found by their own presentation times: approximate
mode maps times to frame indices through the average frame rate, which for a variable-frame-rate
video points at the wrong frames or past the last one. Frames are decoded forward from the keyframe
before each target and only the targets' frames are returned. torchcodec 0.9 returns the stored
pixels of a rotated video; they are turned upright here by ``probe``'s rotation. Audio is decoded
at its own rate and converted like every backend's (``base.to_mono``). torchcodec needs the system
FFmpeg libraries (Debian: ffmpeg).
"""

from __future__ import annotations

import numpy as np

from .base import (DecodedClip, MediaError, Sampling, clip_duration, corrupt, native_audio_limit, probe,
                   target_times, to_mono, upright)

NAME = "torchcodec"


def available() -> bool:
    try:
        from torchcodec.decoders import AudioDecoder, VideoDecoder  # noqa: F401
    except Exception:  # ImportError, or OSError/RuntimeError when the FFmpeg libraries are missing
        return False
    return True


def decode(source, sampling: Sampling) -> DecodedClip:
    from torchcodec.decoders import AudioDecoder, VideoDecoder

    info = probe(source)  # torchcodec's own message for a missing stream reads like an internal error
    if not info.has_video:
        raise MediaError("file has no video stream")
    try:
        decoder = VideoDecoder(source.open_arg(), dimension_order="NHWC", seek_mode="exact",
                               num_ffmpeg_threads=sampling.threads)
        meta = decoder.metadata
        start = float(meta.begin_stream_seconds or 0.0)
        end = meta.end_stream_seconds
        stream_duration = (float(end) - start) if end is not None else meta.duration_seconds
        duration = clip_duration(stream_duration, sampling)
        targets = target_times(duration, sampling)
        # played-at is defined on [start, end): a target exactly at the end means the last frame
        wanted = np.minimum(start + targets, start + stream_duration - 1e-4)
        batch = decoder.get_frames_played_at(seconds=wanted.tolist())
        frames = upright(batch.data.numpy(), info.rotation)
        times = (batch.pts_seconds.numpy() - start).astype(np.float32)
        del decoder, batch
    except MediaError:
        raise
    except (RuntimeError, ValueError, IndexError) as err:
        raise corrupt(err) from err
    wave = None
    if sampling.audio and info.has_audio:
        try:
            audio = AudioDecoder(source.open_arg())
            rate = int(audio.metadata.sample_rate)
            limit = native_audio_limit(rate, sampling)
            begin = float(audio.metadata.begin_stream_seconds or 0.0)
            samples = audio.get_samples_played_in_range(begin, begin + limit / rate)
            wave = to_mono(samples.data.numpy(), rate, sampling)
        except (RuntimeError, ValueError) as err:
            raise corrupt(err) from err
    return DecodedClip(np.ascontiguousarray(frames), times, wave, sampling.sample_rate, duration)
