"""A rehearsal of the paper-shaped run on tiny models: every stage, each runner started fresh, then a kill
and a resume.

The data: a VGGSound-sized CSV (199,176 rows by default, VGGSound's share of test clips) in which only
`--videos` clips have a synthetic video (1-s mp4s from `v2a synth`, test clips among them in VGGSound's
proportion); every other row names a file that is absent, which ingest takes and embed turns into an
error row, as it would a lost download. So ingest and embed see the full CSV; training, generation,
evaluation and the report see the clips that have media. The default shard sizes are kept
(embed 256 clips x 8 shards per task, generate 64 clips, evaluate one task per extractor).

Each run is `v2a pipeline` in a fresh process with `V2A_TRACE_DIR` set (v2a/runtime/trace.py); the
table is read from that trace (stage spans, task spans, model builds), from the output tables (rows)
and from the process tree's RSS, sampled every 0.5 s:

    .venv/bin/python benchmarks/rehearsal.py --videos 400 1600
    .venv/bin/python benchmarks/rehearsal.py --videos 15446 --csv-rows 199176     # the full shape

The last table gives each stage's growth exponent between the two largest sizes (log time ratio / log
clips ratio; 1.0 is linear). `--write-readme` replaces the rehearsal section of benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

VGGSOUND_CLIPS, VGGSOUND_TEST = 199_176, 15_446
STAGES = ("ingest", "embed", "train", "generate", "evaluate", "report")
TASK_STAGES = ("embed", "generate", "evaluate")
RUNNERS = {"thread": {"kind": "thread"},
           "dask": {"kind": "dask", "cluster_kwargs": {"n_workers": 2, "threads_per_worker": 1, "processes": True}}}


# ------------------------------------------------------------------------------------------ data

def build_data(root: Path, videos: int, csv_rows: int, seed: int = 0) -> dict:
    """The synthetic media for `videos` clips and a CSV of `csv_rows` rows holding them (reused when there)."""
    from v2a.tools.synth import make_synthetic_dataset

    done = root / "built.json"
    if done.exists():
        return json.loads(done.read_text())
    if root.exists():
        shutil.rmtree(root)
    test_fraction = VGGSOUND_TEST / VGGSOUND_CLIPS
    classes = 12
    per_class = max(2, math.ceil(videos / classes))
    t0 = time.perf_counter()
    make_synthetic_dataset(root / "media", classes=classes, clips_per_class=per_class, seconds=1.0, seed=seed,
                           images_per_class=0, test_fraction=max(test_fraction, 1 / per_class), progress=False)
    with open(root / "media" / "vggsound.csv") as f:
        real = list(csv.reader(f))
    n_test_real = sum(1 for r in real if r[3] == "test")
    # The absent rows: fake ids, VGGSound's test share overall (the real clips' test rows count towards it).
    absent = max(0, csv_rows - len(real))
    n_test_absent = max(0, round(csv_rows * test_fraction) - n_test_real)
    with open(root / "vggsound.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerows(real)
        for i in range(absent):
            writer.writerow([f"absent{i:07d}", 0, f"label {i % 309}", "test" if i < n_test_absent else "train"])
    info = {"videos": len(real), "test_videos": n_test_real, "csv_rows": len(real) + absent,
            "csv_test": n_test_real + min(absent, n_test_absent), "build_s": round(time.perf_counter() - t0, 1)}
    done.write_text(json.dumps(info))
    return info


def pipeline_config(data: Path, out: Path, runner: dict) -> dict:
    return {
        "out": str(out), "profile": "tiny",
        "data": {"csv": str(data / "vggsound.csv"), "videos": str(data / "media" / "videos"), "dataset": "synthetic"},
        "embed": {"num_frames": 4, "max_seconds": 1.0},
        "train": {"mapper": "diff-mlp", "epochs": 3, "batch_size": 64, "val_sampling_steps": 5},
        "generate": {"seconds": 1.0, "steps": 5, "mapper_steps": 10, "batch_size": 8},
        "evaluate": {"metrics": ["fd", "fad", "cs", "kl", "is"]},
        "runner": runner,
    }


# ------------------------------------------------------------------------------------------ one run

class TreeRSS:
    """Peak resident memory of a process and all its descendants, sampled every `every` seconds, with the time
    of each sample (to attribute it to the stage running then)."""

    def __init__(self, pid: int, every: float = 0.5):
        self.pid, self.every, self.samples = pid, every, []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        import psutil

        while not self._stop.is_set():
            try:
                root = psutil.Process(self.pid)
                procs = [root] + root.children(recursive=True)
                rss = 0
                for p in procs:
                    try:
                        rss += p.memory_info().rss
                    except psutil.Error:
                        pass
                self.samples.append((time.time(), rss))
            except psutil.Error:
                pass
            self._stop.wait(self.every)

    def stop(self):
        self._stop.set()
        self._thread.join(5)


def start_pipeline(work: Path, config: dict) -> tuple[subprocess.Popen, Path, TreeRSS]:
    work.mkdir(parents=True, exist_ok=True)
    path = work / "pipeline.yaml"
    import yaml

    path.write_text(yaml.safe_dump(config))
    traces = work / "trace"
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    env.update(PYTHONPATH=str(ROOT), PREFECT_HOME=str(work / "prefect"), V2A_TRACE_DIR=str(traces),
               HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", PREFECT_SERVER_ANALYTICS_ENABLED="false",
               OMP_WAIT_POLICY="PASSIVE", PREFECT_LOGGING_LEVEL="WARNING")
    log = open(work / "pipeline.log", "a")
    proc = subprocess.Popen([sys.executable, "-m", "flows.cli", "pipeline", "--config", str(path)], cwd=work,
                            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    return proc, traces, TreeRSS(proc.pid)


def measure(traces: Path, rss: TreeRSS, out: Path, wall: float) -> list[dict]:
    """One row per stage from the trace, the tables and the RSS samples."""
    from v2a.runtime import trace

    events = trace.read(str(traces))
    spans: dict[str, list[float]] = {}
    for lines in events.values():
        for t, e, k in lines:
            if k.startswith("stage:"):
                spans.setdefault(k.split(":", 1)[1], []).append(t)
    rows = []
    for stage in STAGES:
        times = spans.get(stage)
        if not times:
            continue
        start, end = min(times), max(times)
        peak = max((r for t, r in rss.samples if start <= t <= end), default=0)
        tasks = sum(1 for lines in events.values() for _, e, k in lines if e == "start" and k.startswith(stage + ":"))
        rows.append({"stage": stage, "tasks": tasks if stage in TASK_STAGES else 1,
                     "peak_concurrency": trace.peak_concurrency(events, stage) if stage in TASK_STAGES else 1,
                     "wall_s": round(end - start, 1), "peak_rss_gib": round(peak / 2**30, 2),
                     "rows": table_rows(out, stage)})
    builds = Counter((pid, k) for pid, lines in events.items() for _, e, k in lines if e == "build")
    late = sum(1 for lines in events.values() for _, e, _ in lines if e == "late-import")
    rows.append({"stage": "whole run", "tasks": sum(r["tasks"] for r in rows), "peak_concurrency": "",
                 "wall_s": round(wall, 1), "peak_rss_gib": round(max((r for _, r in rss.samples), default=0) / 2**30, 2),
                 "rows": f"builds: {len(builds)} in {len({p for p, _ in builds})} processes, "
                         f"most per (process, model): {max(builds.values(), default=0)}; late imports: {late}"})
    return rows


def table_rows(out: Path, stage: str):
    import pyarrow.parquet as pq

    def count(path: Path) -> int:
        files = [p for p in path.rglob("*.parquet") if not p.name.startswith(".")] if path.is_dir() else \
            ([path] if path.exists() else [])
        return sum(pq.ParquetFile(p).metadata.num_rows for p in files)

    if stage == "ingest":
        return count(out / "clips.parquet")
    if stage == "embed":
        return f"{count(out / 'embeddings')} (+{count(out / 'errors')} error rows)"
    if stage == "train":
        return len(list((out / "mappers").rglob("*.safetensors"))) if (out / "mappers").exists() else 0
    if stage == "generate":
        return sum(count(g / "table") for g in (out / "generations").iterdir()) if (out / "generations").exists() else 0
    if stage == "evaluate":
        return count(out / "results")
    return ""


def run_once(work: Path, data: Path, runner: dict, kill_in: str | None = None) -> dict:
    """A fresh pipeline run (killed with SIGKILL once `kill_in`'s first task has finished, then run again)."""
    from v2a.runtime import trace

    out = work / "out"
    proc, traces, rss = start_pipeline(work, pipeline_config(data, out, runner))
    t0 = time.time()
    killed = None
    if kill_in:
        while proc.poll() is None:
            ends = [k for lines in trace.read(str(traces)).values() for _, e, k in lines
                    if e == "end" and k.startswith(kill_in + ":")]
            if ends:
                os.killpg(proc.pid, signal.SIGKILL)
                killed = round(time.time() - t0, 1)
                break
            time.sleep(0.2)
        proc.wait()
        rss.stop()
        shutil.rmtree(traces, ignore_errors=True)  # the resumed run's trace alone
        proc, traces, rss = start_pipeline(work, pipeline_config(data, out, runner))
        t0 = time.time()
    code = proc.wait()
    wall = time.time() - t0
    rss.stop()
    result = {"exit": code, "killed_at_s": killed, "stages": measure(traces, rss, out, wall)}
    result["check"] = check_output(out)
    return result


def check_output(out: Path) -> dict:
    """Every test clip with media generated once and every metric scored once."""
    import pandas as pd

    clips = pd.read_parquet(out / "clips.parquet", columns=["clip_id", "split"])
    emb = pd.read_parquet(out / "embeddings", columns=["clip_id"])
    test = set(clips.loc[clips["split"] == "test", "clip_id"]) & set(emb["clip_id"])
    (gen_dir,) = [g for g in (out / "generations").iterdir() if g.is_dir()]
    gens = pd.read_parquet(gen_dir / "table", columns=["clip_id", "sample"])
    results = pd.read_parquet(out / "results", columns=["metric", "n_clips"])
    return {"test_clips_with_media": len(test), "generated": len(gens),
            "generated_twice": int(gens.duplicated().sum()), "missing": len(test - set(gens["clip_id"])),
            "metric_rows": len(results), "metrics_twice": int(results["metric"].duplicated().sum())}


# ------------------------------------------------------------------------------------------ report

def markdown(runs: list[tuple[str, dict, dict]]) -> str:
    lines = []
    for title, info, result in runs:
        c = result["check"]
        lines += [f"**{title}**: exit {result['exit']}"
                  + (f", killed at {result['killed_at_s']} s and run again" if result["killed_at_s"] else "")
                  + f"; {c['generated']} of {c['test_clips_with_media']} test clips generated "
                    f"({c['generated_twice']} twice, {c['missing']} missing), {c['metric_rows']} results rows "
                    f"({c['metrics_twice']} metrics twice)", "",
                  "| stage | tasks | peak concurrency | wall s | peak RSS GiB | rows |", "|---|---|---|---|---|---|"]
        lines += [f"| {r['stage']} | {r['tasks']} | {r['peak_concurrency']} | {r['wall_s']} | {r['peak_rss_gib']} | "
                  f"{r['rows']} |" for r in result["stages"]]
        lines.append("")
    return "\n".join(lines)


def growth(by_size: dict[int, dict]) -> str:
    """Each stage's exponent of wall time against clips with media, between the two largest sizes."""
    sizes = sorted(by_size)
    if len(sizes) < 2:
        return ""
    a, b = sizes[-2], sizes[-1]
    wall = {n: {r["stage"]: r["wall_s"] for r in by_size[n]["stages"]} for n in (a, b)}
    lines = [f"| stage | {a} clips: wall s | {b} clips: wall s | growth exponent |", "|---|---|---|---|"]
    for stage in (*STAGES, "whole run"):
        if stage in wall[a] and stage in wall[b] and wall[a][stage] > 0:
            k = math.log(max(wall[b][stage], 1e-3) / wall[a][stage]) / math.log(b / a)
            lines.append(f"| {stage} | {wall[a][stage]} | {wall[b][stage]} | {k:.2f} |")
    return "\n".join(lines)


def write_readme(text: str) -> None:
    readme = ROOT / "benchmarks" / "README.md"
    begin, end = "<!-- rehearsal:begin -->", "<!-- rehearsal:end -->"
    old = readme.read_text()
    block = f"{begin}\n{text}\n{end}"
    if begin in old:
        old = old[:old.index(begin)] + block + old[old.index(end) + len(end):]
    else:
        old = old.rstrip() + "\n\n## Rehearsal of the paper's shape (`rehearsal.py`)\n\n" + block + "\n"
    readme.write_text(old)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--videos", type=int, nargs="+", default=[400], help="clips with media, one run set per value")
    ap.add_argument("--csv-rows", type=int, default=VGGSOUND_CLIPS, help="rows of the CSV (default: VGGSound's)")
    ap.add_argument("--runners", nargs="+", default=list(RUNNERS), choices=list(RUNNERS))
    ap.add_argument("--kill-in", default="generate", choices=list(TASK_STAGES),
                    help="the stage whose first finished task triggers the SIGKILL of the kill-and-resume run")
    ap.add_argument("--no-kill", action="store_true", help="skip the kill-and-resume run")
    ap.add_argument("--work", default="/tmp/v2a-rehearsal")
    ap.add_argument("--write-readme", action="store_true")
    args = ap.parse_args()

    sections, by_size, failed = [], {}, False
    for n in args.videos:
        data = Path(args.work) / f"data-{n}-{args.csv_rows}"
        info = build_data(data, n, args.csv_rows)
        print(f"# data: {info['csv_rows']} CSV rows ({info['csv_test']} test), {info['videos']} with media "
              f"({info['test_videos']} test); built in {info['build_s']} s", flush=True)
        runs = []
        # The kill and resume at the largest size only: it repeats a whole run.
        kill = not args.no_kill and n == max(args.videos)
        plan = [(r, None) for r in args.runners] + ([(args.runners[0], args.kill_in)] if kill else [])
        for runner, kill in plan:
            work = Path(args.work) / (f"run-{n}-{args.csv_rows}-{runner}" + ("-killed" if kill else ""))
            shutil.rmtree(work, ignore_errors=True)
            result = run_once(work, data, RUNNERS[runner], kill)
            title = (f"{info['csv_rows']:,} CSV rows, {info['videos']:,} clips with media, {runner} runner"
                     + (f", SIGKILL in {kill} then resumed" if kill else ""))
            runs.append((title, info, result))
            print(markdown([(title, info, result)]), flush=True)
            c = result["check"]
            failed |= bool(result["exit"] or c["generated_twice"] or c["missing"] or c["metrics_twice"])
            if not kill and runner == args.runners[0]:
                by_size[info["videos"]] = result
        sections.append(markdown(runs))
    text = "\n".join(sections)
    g = growth(by_size)
    if g:
        text += "\nGrowth with the clips that have media (" + args.runners[0] + " runner):\n\n" + g + "\n"
        print(g)
    command = "`.venv/bin/python benchmarks/rehearsal.py " + " ".join(sys.argv[1:]) + "`"
    text = f"Made by {command} on {time.strftime('%Y-%m-%d')}.\n\n" + text
    if args.write_readme:
        write_readme(text)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
