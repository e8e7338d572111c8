"""Damaged and partial copies of a good clip, made by remuxing it with PyAV (no re-encoding)."""

from __future__ import annotations

from pathlib import Path

import av


def remux(src: Path, dst: Path, video: bool = True, audio: bool = True, faststart: bool = False) -> Path:
    """Copy src's streams (all, or without video / audio) into a new mp4; faststart puts the index first."""
    with av.open(str(src)) as inp, av.open(str(dst), "w", format="mp4",
                                           options={"movflags": "+faststart"} if faststart else {}) as out:
        streams = {s.index: out.add_stream_from_template(s) for s in inp.streams
                   if (s.type == "video" and video) or (s.type == "audio" and audio)}
        for packet in inp.demux(*[inp.streams[i] for i in streams]):
            if packet.dts is None:  # the demuxer's end-of-stream marker
                continue
            packet.stream = streams[packet.stream.index]
            out.mux(packet)
    return dst


def truncate(src: Path, dst: Path, fraction: float) -> Path:
    """The first `fraction` of src's bytes, as a download cut short would leave them."""
    data = Path(src).read_bytes()
    Path(dst).write_bytes(data[: int(len(data) * fraction)])
    return dst


def variants(src: Path, folder: Path) -> dict[str, Path]:
    """no_audio, audio_only, truncated (index at the end, cut off) and truncated_faststart
    (index first, the last 40 % of the media data cut off)."""
    folder.mkdir(parents=True, exist_ok=True)
    fast = remux(src, folder / "faststart.mp4", faststart=True)
    return {
        "no_audio": remux(src, folder / "no_audio.mp4", audio=False),
        "audio_only": remux(src, folder / "audio_only.mp4", video=False),
        "truncated": truncate(src, folder / "truncated.mp4", 0.6),
        "truncated_faststart": truncate(fast, folder / "truncated_faststart.mp4", 0.6),
    }
