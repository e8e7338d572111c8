"""Put a generated soundtrack on a video: the video stream is copied packet by packet, never re-encoded."""

from __future__ import annotations

import av
import numpy as np

from v2a.core import storage


def mux_soundtrack(video_uri: str, wave: np.ndarray, sample_rate: int, out_uri: str) -> None:
    """Write `out_uri` (mp4) = the video stream of `video_uri` + `wave` as AAC, trimmed to the video's length."""
    fs_in, path_in = storage.filesystem(video_uri)
    with fs_in.open(path_in, "rb") as src_handle, storage.atomic_write(out_uri) as dst_handle:
        with av.open(src_handle) as src, av.open(dst_handle, "w", format="mp4") as dst:
            vin = src.streams.video[0]
            vout = dst.add_stream_from_template(vin)
            aout = dst.add_stream("aac", rate=sample_rate, layout="mono")
            duration = float(vin.duration * vin.time_base) if vin.duration else len(wave) / sample_rate
            wave = np.asarray(wave, dtype=np.float32)[: int(round(duration * sample_rate))]
            for packet in src.demux(vin):
                if packet.dts is None:
                    continue
                packet.stream = vout
                dst.mux(packet)
            frame_size = aout.codec_context.frame_size or 1024
            for start in range(0, len(wave), frame_size):
                chunk = wave[start:start + frame_size]
                frame = av.AudioFrame.from_ndarray(chunk[None, :], format="flt", layout="mono")
                frame.sample_rate = sample_rate
                frame.pts = start
                dst.mux(aout.encode(frame))
            dst.mux(aout.encode(None))
