"""Plumbing of every stage at VGGSound's size, on synthetic tables: wall time, CPU time, peak RSS.

Builds, per size, a VGGSound-format CSV (fake ids, no media), the clips table, an embeddings table
in the layout the embed stage writes (10 frames x 512-d CLIP + 512-d CLAP per clip, random values),
and a generations table for the test split (one short WAV per clip). Then each stage's plumbing
runs in a fresh process, so its peak RSS is its own:

- ingest: CSV -> clips table
- embed: the real embed flow (Prefect, tiny profile) over clips whose files are absent: every clip
  becomes an error row, so what is timed is the fixed cost of planning and running every shard
- train-load: embeddings -> contiguous (CLIP, CLAP) pair arrays (v2a.stages.train.load_pairs);
  train-epoch: the same plus one epoch of reg-mlp on the CPU
- gen-plan: generation planning and every shard's done-check (all done: nothing is generated)
- eval-inputs: what evaluate gathers before any model runs (generations, splits, CLIP frames,
  reference set; nothing is decoded)
- status, report-inputs: `v2a status`, and the rows the listening report reads

    .venv/bin/python benchmarks/bench_scale.py --sizes 10000 50000 199176
    .venv/bin/python benchmarks/bench_scale.py --sizes 2000000 --stages train-load --frames 1

The last column of the summary is the growth exponent between the two largest sizes
(log time ratio / log size ratio; 1.0 is linear).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

VGGSOUND_CLIPS, VGGSOUND_TEST = 199_176, 15_446
STAGES = ("ingest", "embed", "train-load", "train-epoch", "gen-plan", "eval-inputs", "status", "report-inputs")
DIM = 512


# ------------------------------------------------------------------------------------------ tables

def _ids(n: int) -> list[tuple[str, int]]:
    import numpy as np

    rng = np.random.default_rng(n)
    alphabet = np.array(list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_"))
    letters = alphabet[rng.integers(0, len(alphabet), size=(n, 11))]
    starts = rng.integers(0, 300, size=n)
    seen, out = set(), []
    for row, s in zip(letters, starts):
        yid = "".join(row)
        if yid not in seen:
            seen.add(yid)
            out.append((yid, int(s)))
    return out


def build(root: Path, n: int, frames: int, with_generations: bool = True) -> dict:
    """The synthetic tables for one size (reused when already there)."""
    import numpy as np

    from v2a.stages import embed, ingest
    from v2a.io import embeddings as embeddings_io
    from v2a.io import generations as generations_io
    from v2a.io.layout import RunLayout

    done = root / "built.json"
    if done.exists():
        return json.loads(done.read_text())
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    t0 = time.perf_counter()
    ids = _ids(n)
    test_every = max(1, round(n / (n * VGGSOUND_TEST / VGGSOUND_CLIPS)))
    with open(root / "vggsound.csv", "w") as f:
        for i, (yid, s) in enumerate(ids):
            f.write(f"{yid},{s},class {i % 309},{'test' if i % test_every == 0 else 'train'}\n")
    layout = RunLayout(str(root / "out"))
    ingest.ingest(layout.clips, csv=str(root / "vggsound.csv"), videos=str(root / "videos"),
                  errors_uri=layout.errors)
    from v2a.io import clips as clips_io

    clips = clips_io.read_clips(layout.clips, columns=["clip_id", "split"])
    clip_ids = clips.column("clip_id").to_pylist()
    plans = embed.plan_shards(clip_ids, layout.embeddings, layout.errors, 256, "clip-synthetic", "clap-synthetic",
                              {"num_frames": frames})
    rng = np.random.default_rng(0)
    for p in plans:
        k = len(p.clip_ids)
        block = embeddings_io.EmbeddingBlock(
            list(p.clip_ids), ["video"] * k, rng.standard_normal((k * frames, DIM), dtype=np.float32),
            np.arange(0, (k + 1) * frames, frames, dtype=np.int64), rng.standard_normal((k, DIM), dtype=np.float32),
            np.ones(k, bool), ["clip-synthetic"] * k, ["clap-synthetic"] * k,
            [[float(j) for j in range(frames)]] * k)
        embeddings_io.write_embeddings(block, p.uri)
    n_test = 0
    if with_generations:
        import soundfile as sf

        test = sorted(c for c, s in zip(clip_ids, clips.column("split").to_pylist()) if s == "test")
        n_test = len(test)
        gen = layout.generations("run-synthetic")
        os.makedirs(gen.audio, exist_ok=True)
        wave = np.zeros(1600, np.float32)
        for start in range(0, len(test), 64):
            shard = test[start:start + 64]
            rows = []
            for cid in shard:
                uri = os.path.join(gen.audio, f"{cid}__s0.wav")
                sf.write(uri, wave, 16000, subtype="PCM_16")
                rows.append({"run_id": "run-synthetic", "clip_id": cid, "sample": 0, "uri": uri, "seed": 0,
                             "conditioning": "mapper", "mapper_checkpoint_id": None, "mapper_kind": "diff-transformer",
                             "aggregator": "mean", "mapper_guidance": 0.9, "mapper_steps": 200,
                             "generator_id": "synthetic", "generator_guidance": 2.5, "generator_steps": 200,
                             "scheduler": "ddim", "seconds": 0.1, "sample_rate": 16000, "gen_time_s": 1.0})
            key = generations_io.shard_key("run-synthetic", shard, 1)
            generations_io.merge_shard(gen, key, rows)
    info = {"n": len(clip_ids), "n_test": n_test, "shards": len(plans), "frames": frames,
            "embeddings_bytes": sum(f.stat().st_size for f in Path(layout.embeddings).glob("*.parquet")),
            "build_s": round(time.perf_counter() - t0, 1)}
    done.write_text(json.dumps(info))
    return info


# ------------------------------------------------------------------------------------------ stages

def run_stage(stage: str, root: Path) -> dict:
    """One stage's plumbing, in this (fresh) process."""
    from v2a.io.layout import RunLayout

    out = RunLayout(str(root / "out"))
    # Imports are a fixed cost of any process, not of the stage: paid before the clock starts.
    import prefect  # noqa: F401
    import torch  # noqa: F401

    import tasks.stage  # noqa: F401
    import v2a.stages.evaluate  # noqa: F401
    import v2a.stages.ingest  # noqa: F401
    import v2a.stages.report.runs  # noqa: F401
    import v2a.tools.status  # noqa: F401
    import v2a.stages.train  # noqa: F401
    t0, c0 = time.perf_counter(), time.process_time()
    extra = {}
    if stage == "ingest":
        from v2a.stages import ingest

        tmp = RunLayout(str(root / "ingest-out"))
        summary = ingest.ingest(tmp.clips, csv=str(root / "vggsound.csv"), videos=str(root / "videos"),
                                errors_uri=tmp.errors)
        extra["clips"] = summary["n_clips"]
    elif stage == "embed":
        from flows.embed import embed_flow

        work = RunLayout(str(root / "embed-out"))
        if Path(work.out).exists():
            shutil.rmtree(work.out)
        os.makedirs(work.out)
        shutil.copy(out.clips, work.clips)
        import flows.stage

        phase = {}
        real_map = flows.stage.map_calls

        def timed_map(*a, **k):  # the shard phase alone, as the flow runs it
            t = time.perf_counter()
            try:
                return real_map(*a, **k)
            finally:
                phase["s"] = round(time.perf_counter() - t, 2)

        flows.stage.map_calls = timed_map
        t0, c0 = time.perf_counter(), time.process_time()
        from v2a.config import EmbedConfig

        summary = embed_flow(work.out, profile="tiny",
                             embed=EmbedConfig(shard_size=256, decoder="pyav", workers=1))
        extra = {"shards": summary["shards"], "errors": summary["errors_total"], "shard_phase_s": phase.get("s")}
    elif stage in ("train-load", "train-epoch"):
        from v2a.stages.train import load_pairs

        tc, ta, vc, va, info = load_pairs(out.embeddings)
        extra = {"train_pairs": len(tc), "val_pairs": 0 if vc is None else len(vc),
                 "arrays_mib": round((tc.nbytes + ta.nbytes + (vc.nbytes + va.nbytes if vc is not None else 0))
                                     / 2**20, 1)}
        if stage == "train-epoch":
            import tempfile

            from v2a.mapper.trainer import TrainConfig, train_mapper

            with tempfile.TemporaryDirectory() as tmp:
                train_mapper(tc, ta, vc, va, TrainConfig(mapper="reg-mlp", epochs=1), tmp, progress=False)
    elif stage == "gen-plan":
        from v2a.config import GenerateConfig
        from v2a.stages import generate
        from v2a.stages.shape import StageRun

        section = GenerateConfig(split="test", shard_size=64, samples=1)
        run = StageRun(out.out, args={"embeddings": out.embeddings, "run_id": "run-synthetic"})
        shards = generate.STAGE.plan(section, run, None)
        done = sum(generate.STAGE.done(s, section, run) for s in shards)
        extra = {"shards": len(shards), "done": done}
    elif stage == "eval-inputs":
        from v2a.stages.evaluate import evaluation_inputs, reference_audio

        # What one evaluation unit gathers before it extracts: the run's inputs and its clips' real audio.
        inputs = evaluation_inputs(out.generations("run-synthetic").root, out.out, "test")
        reference = reference_audio(out.clips, inputs.clip_ids, inputs.seconds, inputs.sample_rate,
                                    embeddings_uri=out.embeddings)
        extra = {"clips": len(inputs.clip_ids), "reference": len(reference), "generated": len(inputs.generated)}
    elif stage == "status":
        from v2a.tools.status import format_status, out_status

        extra = {"lines": len(format_status(out_status(out.out)).splitlines())}
    elif stage == "report-inputs":
        from v2a.stages.report.runs import load_run, read_clip_rows, stratified_sample

        run = load_run(out.out, "run-synthetic")
        common = set(run.generations["clip_id"])
        rows = read_clip_rows(out.out, common)
        chosen = stratified_sample({c: rows[c]["label"] for c in common}, 8)
        extra = {"clips": len(chosen)}
    else:
        raise SystemExit(f"unknown stage {stage!r}; accepted: {', '.join(STAGES)}")
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {"stage": stage, "wall_s": round(time.perf_counter() - t0, 2), "cpu_s": round(time.process_time() - c0, 2),
            "peak_rss_mib": round(usage.ru_maxrss / 1024, 0), **extra}


def measure(stage: str, root: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "OMP_WAIT_POLICY": "PASSIVE",
           "PREFECT_LOGGING_LEVEL": "WARNING", "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180"}
    proc = subprocess.run([sys.executable, __file__, "--child", stage, "--root", str(root)], env=env,
                          capture_output=True, text=True)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode or not lines:
        return {"stage": stage, "error": (proc.stderr or proc.stdout).strip().splitlines()[-1:] or [f"exit {proc.returncode}"]}
    return json.loads(lines[-1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 50_000, VGGSOUND_CLIPS])
    ap.add_argument("--stages", nargs="+", default=list(STAGES), choices=STAGES)
    ap.add_argument("--frames", type=int, default=10, help="CLIP frames per clip in the synthetic table")
    ap.add_argument("--work", default="/tmp/v2a-bench-scale", help="where the synthetic tables are built")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--root", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(run_stage(args.child, Path(args.root))))
        return 0

    results: dict[int, dict] = {}
    for n in args.sizes:
        root = Path(args.work) / f"n{n}-f{args.frames}"
        info = build(root, n, args.frames, with_generations=any(s in args.stages for s in
                                                                ("gen-plan", "eval-inputs", "report-inputs")))
        print(f"# {n} clips: {info['shards']} embedding shards, {info['n_test']} test clips, "
              f"{info['embeddings_bytes'] / info['n']:.0f} B/clip on disk "
              f"(raw float32: {4 * DIM * (info['frames'] + 1)} B), built in {info['build_s']} s", flush=True)
        results[n] = {"info": info}
        for stage in args.stages:
            r = measure(stage, root)
            results[n][stage] = r
            detail = {k: v for k, v in r.items() if k not in ("stage", "wall_s", "cpu_s", "peak_rss_mib")}
            if "error" in r:
                print(f"  {stage:14s} FAILED: {r['error']}", flush=True)
            else:
                print(f"  {stage:14s} {r['wall_s']:8.2f} s wall {r['cpu_s']:8.2f} s cpu "
                      f"{r['peak_rss_mib'] / 1024:6.2f} GiB peak  {detail}", flush=True)

    sizes = sorted(results)
    print("\n| stage | " + " | ".join(f"{n:,} clips: wall s / peak GiB" for n in sizes) + " | growth exponent |")
    print("|---|" + "---|" * len(sizes) + "---|")
    for stage in args.stages:
        cells, walls = [], []
        for n in sizes:
            r = results[n].get(stage, {})
            if "wall_s" in r:
                cells.append(f"{r['wall_s']:.2f} / {r['peak_rss_mib'] / 1024:.2f}")
                walls.append((n, r["wall_s"]))
            else:
                cells.append("failed")
        exponent = "-"
        if len(walls) >= 2 and walls[-2][1] > 0:
            (n1, t1), (n2, t2) = walls[-2], walls[-1]
            exponent = f"{math.log(t2 / t1) / math.log(n2 / n1):.2f}"
        print(f"| {stage} | " + " | ".join(cells) + f" | {exponent} |")
    row = [f"{results[n]['info']['embeddings_bytes'] / results[n]['info']['n']:,.0f}" for n in sizes]
    print("| embeddings on disk, B/clip | " + " | ".join(row) + " | - |")
    failed = [f"{stage} at {n:,}" for n in sizes for stage in args.stages if "error" in results[n].get(stage, {})]
    if failed:
        print(f"bench_scale: {len(failed)} measurement(s) failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
