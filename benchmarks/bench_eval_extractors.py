"""Cost per clip of the av-benchmark extractors (PaSST, ImageBind), and the measured size of each
protocol path (channel rules, padding) on random weights.

    python benchmarks/bench_eval_extractors.py --profile paper-arch            # CPU cost per clip, paper sizes
    python benchmarks/bench_eval_extractors.py --profile paper-arch --device cuda
    python benchmarks/bench_eval_extractors.py --profile tiny --quick          # smoke run
    python benchmarks/bench_eval_extractors.py --sizes                         # the docs/deviations.md numbers

Cost rows: one 8-s clip at a time (batch 1, as the slowest case), after one warm-up clip:
- passt: 8 s of 16-kHz audio -> resampled to 32 kHz -> one zero-padded 10-s window -> features + logits;
- imagebind audio: 8 s at 16 kHz -> 3 fbank clips of 2 s -> audio embedding;
- imagebind video: 4 frames (0.5 fps over 8 s) of 360 x 640 -> 3 crops x 3 two-frame clips -> video embedding.
Model building is reported apart (seeded random weights at the profile's sizes).

--sizes: --clips synthetic stereo 44.1 kHz references of --seconds (channel 0 = noise with a DC offset,
channel 1 = another noise) and as many mono 16 kHz generations, scored with the profile's PANNs Cnn14 under
each channel rule; then generations of half the length, zero-padded (v2a-mapper) or scored as they are
(av-benchmark). Random weights: the sizes say how far each path moves the numbers, not what
they are with the released weights.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _timed(fn, repeats: int) -> float:
    fn()  # warm-up
    t0 = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - t0) / repeats


def cost(profile: str, device: str, repeats: int) -> dict:
    from v2a.metrics.extractors import build_extractor
    from v2a.models import load_profile

    sections = load_profile(profile)["extractors"]
    rng = np.random.default_rng(0)
    wave = (0.1 * rng.standard_normal(8 * 16000)).astype(np.float32)
    frames = rng.integers(0, 256, size=(4, 360, 640, 3), dtype=np.uint8)
    out = {}
    t0 = time.perf_counter()
    passt = build_extractor("passt", sections["passt"], device)
    out["passt_build_s"] = time.perf_counter() - t0
    out["passt_params_m"] = passt.num_parameters / 1e6
    out["passt_s_per_clip"] = _timed(lambda: passt.embed_and_logits([wave], sample_rate=16000), repeats)
    del passt
    t0 = time.perf_counter()
    ib = build_extractor("imagebind", sections["imagebind"], device)
    out["imagebind_build_s"] = time.perf_counter() - t0
    out["imagebind_params_m"] = ib.num_parameters / 1e6
    out["imagebind_audio_s_per_clip"] = _timed(lambda: ib.embed([wave], sample_rate=16000), repeats)
    out["imagebind_video_s_per_clip"] = _timed(lambda: ib.embed_frames([frames]), max(1, repeats // 2))
    return out


def sizes(profile: str, seconds: float = 10.0, clips: int = 20) -> dict:
    """FD / KL of the same files under each channel rule and under padding vs cutting."""
    import tempfile
    from pathlib import Path

    import soundfile as sf

    from v2a.runtime.model_cache import get_model
    from v2a.stages.evaluate import evaluate_folder

    panns = get_model(profile, "extractor:panns")
    rng = np.random.default_rng(1)
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        gen, ref, short = Path(tmp, "gen"), Path(tmp, "ref"), Path(tmp, "short")
        for d in (gen, ref, short):
            d.mkdir()
        n16, n44 = int(seconds * 16000), int(seconds * 44100)
        for i in range(clips):
            sf.write(gen / f"c{i}.wav", (0.2 * rng.standard_normal(n16)).astype(np.float32), 16000)
            sf.write(short / f"c{i}.wav", (0.2 * rng.standard_normal(n16 // 2)).astype(np.float32), 16000)
            left = 0.2 * rng.standard_normal(n44) + 0.05
            right = 0.2 * rng.standard_normal(n44)
            sf.write(ref / f"c{i}.wav", np.stack([left, right], 1).astype(np.float32), 44100)
        for rule in ("mean", "channel0-minus-mean", "av-benchmark"):
            rows = evaluate_folder(str(gen), str(Path(tmp, f"r-{rule}")), {"panns": panns}, reference_dir=str(ref),
                                   clip_seconds=seconds, metrics=["fd", "kl"], channel_rule=rule)
            out[f"stereo_ref_{rule}"] = {r["metric"]: r["value"] for r in rows}
        for proto in ("v2a-mapper", "av-benchmark"):  # generations of half the length: padded, or scored as they are
            rows = evaluate_folder(str(short), str(Path(tmp, f"s-{proto}")), {"panns": panns},
                                   reference_dir=str(ref), clip_seconds=seconds, metrics=["fd", "kl"],
                                   protocol=proto, channel_rule="av-benchmark")
            out[f"short_gen_{proto}"] = {r["metric"]: r["value"] for r in rows}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="paper-arch")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="one repeat")
    parser.add_argument("--sizes", action="store_true", help="measure the protocol paths instead of the cost")
    parser.add_argument("--seconds", type=float, default=10.0, help="--sizes: clip length")
    parser.add_argument("--clips", type=int, default=20, help="--sizes: number of clips")
    args = parser.parse_args()
    info = {"profile": args.profile, "device": args.device, "torch": torch.__version__, "threads":
            torch.get_num_threads(), "cpu": platform.processor() or platform.machine()}
    result = sizes(args.profile, args.seconds, args.clips) if args.sizes else cost(args.profile, args.device, 1 if args.quick else args.repeats)
    print(json.dumps({**info, **result}, indent=2))


if __name__ == "__main__":
    main()
