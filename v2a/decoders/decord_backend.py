"""decord backend: frames by index through decord's frame index, audio through its AudioReader.

Two passes (decord keeps video and audio readers apart): the VideoReader indexes the file when it
opens, then decodes forward from the nearest keyframe to each wanted frame; only those frames are
converted. The audio is read at its own rate (decord's built-in resampling drifts by a few
milliseconds) and converted like every backend's (``base.to_mono``). decord's AudioReader has no range to ask for: it decodes the whole
track at its own rate, so only the resampling stops at the clip's audio length (``base.audio_seconds``);
for long videos without ``max_seconds``, pyav and torchcodec stop decoding the audio there too.
"""

from __future__ import annotations

import numpy as np

from .base import (DecodedClip, MediaError, Sampling, check_coverage, clip_duration, corrupt, played_at, probe,
                   target_times, to_mono)

NAME = "decord"


def available() -> bool:
    try:
        import decord  # noqa: F401
    except ImportError:
        return False
    return True


def decode(source, sampling: Sampling) -> DecodedClip:
    import decord

    info = probe(source)  # decord cannot say which streams a file has without failing on a missing one
    if not info.has_video:
        raise MediaError("file has no video stream")
    try:
        reader = decord.VideoReader(source.open_arg(), ctx=decord.cpu(0), num_threads=sampling.threads)
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
        frames = reader.get_batch(wanted.tolist()).asnumpy()[inverse]
        del reader
    except MediaError:
        raise
    except (decord.DECORDError, RuntimeError) as err:
        raise corrupt(err) from err
    wave = None
    if sampling.audio and info.has_audio:
        try:
            native = decord.AudioReader(source.open_arg(), ctx=decord.cpu(0), sample_rate=-1, mono=False)
            # the reader holds the decoded track as one numpy array; its public slicing builds a Python
            # list of every sample index first (tens of MB and milliseconds for a 10-s clip)
            samples = native._array if isinstance(getattr(native, "_array", None), np.ndarray) else native[:].asnumpy()
            wave = to_mono(samples, info.audio_rate, sampling)
        except (decord.DECORDError, RuntimeError) as err:
            raise corrupt(err) from err
    times = (stamps[index, 0] - start).astype(np.float32)
    return DecodedClip(np.ascontiguousarray(frames), times, wave, sampling.sample_rate, duration)
