"""Peak memory of decoding + embedding one long 1080p video with the tiny profile.

Frames are picked while decoding, so the peak should not grow with the video's length. The video is
generated here (PyAV, low frame rate and a nearly static pattern so encoding is quick); each
measurement runs in a fresh process so its peak RSS (getrusage) is its own.

    .venv/bin/python benchmarks/bench_memory.py --minutes 10
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def make_video(path: Path, minutes: float, fps: int, width: int, height: int) -> float:
    """A long 1080p clip with a 44.1 kHz tone; returns the seconds it took to encode."""
    import av
    import numpy as np

    start = time.perf_counter()
    frames = int(minutes * 60 * fps)
    with av.open(str(path), "w") as out:
        vs = out.add_stream("libx264", rate=fps, options={"preset": "ultrafast", "crf": "35"})
        vs.width, vs.height, vs.pix_fmt = width, height, "yuv420p"
        ast = out.add_stream("aac", rate=44100, layout="mono")
        base = np.zeros((height, width, 3), np.uint8)
        base[..., 0] = np.linspace(0, 255, width, dtype=np.uint8)[None]
        base[..., 2] = np.linspace(0, 255, height, dtype=np.uint8)[:, None]
        for i in range(frames):
            img = base.copy()
            y = (i * 7) % (height - 64)
            img[y:y + 64, 100:164] = 255  # a moving square: a little motion, cheap to encode
            for packet in vs.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(packet)
        for packet in vs.encode():
            out.mux(packet)
        total, step = int(minutes * 60 * 44100), 1024
        t = np.arange(step) / 44100
        for s in range(0, total, step):
            wave = (0.2 * np.sin(2 * np.pi * 440 * (t + s / 44100))).astype(np.float32)[None]
            frame = av.AudioFrame.from_ndarray(wave, format="fltp", layout="mono")
            frame.sample_rate, frame.pts = 44100, s
            for packet in ast.encode(frame):
                out.mux(packet)
        for packet in ast.encode():
            out.mux(packet)
    return time.perf_counter() - start


def measure(uri: str, max_seconds: float | None, num_frames: int) -> dict:
    """(in a fresh process) build the tiny encoders, then decode + embed the clip once."""
    from v2a.stages import embed
    from v2a.runtime.model_cache import get_model

    encoders = get_model("tiny", "clip"), get_model("tiny", "clap")
    before = _peak_mib()
    start = time.perf_counter()
    rows, errors = embed.embed_clips([{"clip_id": "long", "split": "test", "label": None, "kind": "video",
                                       "uri": uri}], *encoders, num_frames=num_frames, max_seconds=max_seconds)
    assert rows and not errors, errors
    return {"max_seconds": max_seconds, "num_frames": num_frames, "seconds": time.perf_counter() - start,
            "peak_rss_after_models_mib": before, "peak_rss_mib": _peak_mib()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--minutes", type=float, default=10.0)
    p.add_argument("--fps", type=int, default=5)
    p.add_argument("--measure", nargs=3, metavar=("URI", "MAX_SECONDS", "NUM_FRAMES"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.measure:
        uri, max_s, n = args.measure
        print(json.dumps(measure(uri, None if max_s == "none" else float(max_s), int(n))))
        return
    with tempfile.TemporaryDirectory() as tmp:
        video = Path(tmp) / "long.mp4"
        encode_s = make_video(video, args.minutes, args.fps, 1920, 1080)
        print(f"input: {args.minutes:g} min 1920x1080 at {args.fps} fps + 44.1 kHz AAC, "
              f"{video.stat().st_size / 2**20:.1f} MiB, encoded in {encode_s:.1f} s")
        print("| frames over | frames | decode+embed s | peak RSS after models MiB | peak RSS MiB |")
        print("|---|---:|---:|---:|---:|")
        for max_s, n in (("10", 10), ("none", 10), ("none", 64)):
            out = subprocess.run([sys.executable, __file__, "--measure", str(video), max_s, str(n)], cwd=ROOT,
                                 check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]
            r = json.loads(out)
            span = "first 10 s" if max_s == "10" else f"whole {args.minutes:g} min"
            print(f"| {span} | {n} | {r['seconds']:.1f} | {r['peak_rss_after_models_mib']:.0f} | "
                  f"{r['peak_rss_mib']:.0f} |")


if __name__ == "__main__":
    main()
