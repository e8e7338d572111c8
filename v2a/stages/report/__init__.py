"""Listening report: one static HTML page per run (or per set of runs compared side by side).

Numbers alone say little about generated sound, so the page puts a sample of clips next to their
audio: the visual input, each generated sample, the real audio where the clip has one, a mel
spectrogram of each and the clip's CLIP-Score, together with the run's configuration, its metrics
beside the paper's Table 1 and the plots the stages left behind.

Everything the page needs is copied or rendered into its folder and linked by relative paths, so
the folder opens from disk, can be zipped or attached, and needs no server, CDN or JavaScript (an
inline script only adds column sorting).
"""

from __future__ import annotations

import logging
import os
import posixpath
import shutil
import tempfile
from pathlib import Path

import numpy as np
from tqdm import tqdm

from v2a.core.stopping import raise_if_stopped
from v2a.core import storage
from v2a.io.layout import RunLayout
from v2a.stages.report.assets import clip_scores, copy_file, safe_name, write_mel_png, write_poster_png, write_wave_file
from v2a.stages.report.page import GENERATOR_TAG, Plot, metric_order, format_value, markdown_summary, mean_or_none, render_page
from v2a.config import ReportConfig, default
from v2a.stages.shape import Stage, StageRun, WorkItem
from v2a.stages.report.runs import (ClipAsset, RunData, SampleAsset, available_runs, load_run, read_clip_rows, read_frames,
                             stratified_sample)

DEFAULT_CLIPS = default(ReportConfig, "clips")  # defined in v2a.config
HEADLINE_CLIPS = 3  # clips whose pictures the summary (a Prefect artifact) embeds

log = logging.getLogger(__name__)


def default_report_dir(runs_root: str, run_ids: list[str]) -> str:
    return storage.join(RunLayout(runs_root).listening, safe_name("__vs__".join(run_ids)))


def build_report(runs_root: str, run_ids: list[str], out: str | None = None, clips: int = DEFAULT_CLIPS,
                 seed: int = 0, cs_extractor=None, progress: bool = True) -> dict:
    """Write the report folder for one run (or several, compared on the same clips); return a summary.

    cs_extractor: the profile's Wav2CLIP extractor; without it the per-clip CS cells stay blank.
    The summary holds `index` (the page), the clips shown and each run's per-clip CS.
    """
    run_ids = list(dict.fromkeys(run_ids))
    if not run_ids:
        raise ValueError("give at least one run id")
    if clips <= 0:
        raise ValueError(f"clips must be positive, got {clips}")
    out = out or default_report_dir(runs_root, run_ids)
    runs = [load_run(runs_root, r) for r in run_ids]
    remote = "://" in str(out) and not str(out).startswith("file://")
    final = None if remote else Path(str(out).removeprefix("file://")).resolve()
    if final is not None:
        _check_replaceable(final)
        final.parent.mkdir(parents=True, exist_ok=True)
    # Built beside its final place and swapped in at the end: a failed build leaves the old report whole.
    # The folder's name carries this process's id, so a later build can tell a killed build's leftover.
    if final is not None:
        remove_abandoned_builds(final.parent)
    work = Path(tempfile.mkdtemp(prefix=f".report-{os.getpid()}-", dir=final.parent if final is not None else None))
    try:
        summary = _build(runs_root, runs, work, clips, seed, cs_extractor, progress, final)
        if final is not None:
            if final.exists():
                shutil.rmtree(final)
            os.replace(work, final)
            index = str(final / "index.html")
        else:
            fs, path = storage.filesystem(out)
            fs.put(str(work), path, recursive=True)
            index = storage.join(out, "index.html")
    finally:
        if work.exists():
            shutil.rmtree(work, ignore_errors=True)
    return {**summary, "index": index, "out": str(final or out)}


def remove_abandoned_builds(folder: Path) -> list[Path]:
    """Delete `.report-PID-*` work folders whose process is gone (a build killed outright)."""
    removed = []
    for work in folder.glob(".report-*"):
        pid = work.name.split("-")[1]
        if not work.is_dir() or (pid.isdigit() and _alive(int(pid))):
            continue
        shutil.rmtree(work, ignore_errors=True)
        removed.append(work)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def _check_replaceable(folder: Path) -> None:
    """Only an earlier report is replaced; any other non-empty folder is refused, never deleted."""
    if not folder.exists() or (folder.is_dir() and not any(folder.iterdir())):
        return
    index = folder / "index.html"
    if folder.is_dir() and index.is_file() and GENERATOR_TAG in index.read_text(errors="replace")[:4000]:
        return
    raise ValueError(f"--out {folder} exists and is not a v2a report folder; choose an empty or new folder")


def _build(runs_root: str, runs: list[RunData], work: Path, n_clips: int, seed: int, cs_extractor, progress: bool,
           final: Path | None) -> dict:
    chosen, clip_rows = _choose_clips(runs_root, runs, n_clips, seed)
    frames = read_frames(runs_root, chosen) if cs_extractor is not None else {}
    first = runs[0]
    clips, reference_waves = _clip_assets(chosen, clip_rows, first, work, progress)
    for run in runs:
        waves, keys = _sample_assets(run, chosen, work)
        if cs_extractor is not None:
            _score_samples(run, waves, keys, frames, cs_extractor)
        if run is first:
            _soundtrack_videos(run, clips, waves, keys, work)
    if cs_extractor is not None:
        _score_reference_audio(runs_root, clips, reference_waves, frames, cs_extractor, first)
    plots = _collect_plots(runs_root, runs, work, [p for p in (final, work) if p is not None])
    page = render_page(runs_root, runs, clips, plots, n_clips=n_clips, seed=seed,
                       cs_model=getattr(cs_extractor, "model_id", None))
    (work / "index.html").write_text(page, encoding="utf-8")
    return _summary(runs, chosen, clips)


def _choose_clips(runs_root: str, runs: list[RunData], n_clips: int, seed: int) -> tuple[list[str], dict]:
    """The clips every run generated for, sampled across labels; with their clips-table rows."""
    common = set.intersection(*(set(r.generations["clip_id"]) for r in runs))
    clip_rows = read_clip_rows(runs_root, common)
    if not common:
        raise ValueError(f"runs {', '.join(r.run_id for r in runs)} share no generated clip to compare")
    chosen = stratified_sample({c: (clip_rows.get(c) or {}).get("label") for c in common}, n_clips, seed)
    return chosen, clip_rows


def _clip_assets(chosen: list[str], clip_rows: dict, first: RunData, work: Path,
                 progress: bool) -> tuple[list[ClipAsset], dict[str, np.ndarray]]:
    """Each chosen clip's poster, real audio and its spectrogram on disk; (the assets, the real waves)."""
    from v2a.media import MediaError, read_clip

    clips: list[ClipAsset] = []
    reference_waves: dict[str, np.ndarray] = {}
    for cid in tqdm(chosen, desc="report clips", unit="clip", disable=not progress):
        raise_if_stopped()
        row = clip_rows.get(cid) or {}
        asset = ClipAsset(cid, row.get("label"), row.get("kind"), row.get("split"), row.get("uri"))
        folder = Path("assets", "clips", safe_name(cid))
        clips.append(asset)
        if not asset.uri:
            continue
        try:
            decoded = read_clip(asset.uri, num_frames=1, sample_rate=first.sample_rate, max_seconds=first.clip_seconds)
        except MediaError as err:
            log.warning("report: %s has no visual input or real audio on the page: %s", cid, err)
            continue
        asset.poster = str(folder / "poster.png")
        asset.poster_time = float(decoded.frame_times[0]) if asset.kind == "video" else None
        write_poster_png(decoded.frames[0], work / asset.poster)
        if decoded.audio is not None and decoded.audio.size:
            reference_waves[cid] = decoded.audio
            asset.reference_wav = str(folder / "reference.wav")
            asset.reference_mel = str(folder / "reference-mel.png")
            write_wave_file(work / asset.reference_wav, decoded.audio, first.sample_rate)
            write_mel_png(decoded.audio, first.sample_rate, work / asset.reference_mel)
    return clips, reference_waves


def _sample_assets(run: RunData, chosen: list[str], work: Path) -> tuple[list[np.ndarray], list[tuple[str, int]]]:
    """A run's generated samples of the chosen clips copied next to the page, with spectrograms; (waves, keys),
    a key being (clip id, index into run.samples[clip id])."""
    from v2a.io.audio import read_wave

    gens = run.generations[run.generations["clip_id"].isin(chosen)]
    waves, keys = [], []
    for cid, sample, uri in zip(gens["clip_id"], gens["sample"], gens["uri"]):
        rel = Path("assets", "runs", safe_name(run.run_id), f"{safe_name(cid)}__s{int(sample)}")
        wav, mel = str(rel) + ".wav", str(rel) + "-mel.png"
        copy_file(uri, work / wav)
        wave, sr = read_wave(uri)
        write_mel_png(wave, sr, work / mel)
        run.samples.setdefault(cid, []).append(SampleAsset(int(sample), wav, mel))
        waves.append(wave)
        keys.append((cid, len(run.samples[cid]) - 1))
    return waves, keys


def _score_samples(run: RunData, waves: list[np.ndarray], keys: list[tuple[str, int]], frames: dict,
                   cs_extractor) -> None:
    """CLIP-Score of each sample whose clip has frames, recomputed here (the results table holds the mean only)."""
    scored = [i for i, (cid, _) in enumerate(keys) if cid in frames]
    if not scored:
        return
    values = clip_scores(cs_extractor, [waves[i] for i in scored], run.sample_rate, run.clip_seconds,
                         [frames[keys[i][0]] for i in scored])
    for i, v in zip(scored, values):
        cid, j = keys[i]
        run.samples[cid][j].cs = v


def _soundtrack_videos(run: RunData, clips: list[ClipAsset], waves: list[np.ndarray], keys: list[tuple[str, int]],
                       work: Path) -> None:
    """Each video clip with the run's first sample as its soundtrack: the picture and its sound together."""
    import av

    from v2a.media.mux import mux_soundtrack

    for asset in clips:
        if not (asset.kind == "video" and asset.poster and asset.clip_id in run.samples):
            continue
        index = next(i for i, k in enumerate(keys) if k[0] == asset.clip_id)
        sample = run.samples[asset.clip_id][0].sample
        asset.video = str(Path("assets", "clips", safe_name(asset.clip_id), f"{safe_name(run.run_id)}-s{sample}.mp4"))
        try:
            mux_soundtrack(asset.uri, waves[index], run.sample_rate, str(work / asset.video))
        except (av.FFmpegError, OSError, ValueError) as err:
            log.warning("report: no video with soundtrack for %s: %s", asset.clip_id, err)
            asset.video = None


def _score_reference_audio(runs_root: str, clips: list[ClipAsset], reference_waves: dict[str, np.ndarray],
                           frames: dict, cs_extractor, first: RunData) -> None:
    """CLIP-Score of the real audio. Evaluate stores the real audio's Wav2CLIP embeddings with the reference
    statistics: they are read rather than computed again; only clips no stored set holds are embedded."""
    from v2a.metrics.reference_stats import stored_per_clip
    from v2a.metrics.scores import clip_score

    wanted = [a.clip_id for a in clips if a.clip_id in reference_waves and a.clip_id in frames]
    stored = stored_per_clip(RunLayout(runs_root).reference_stats, cs_extractor, wanted,
                             clip_seconds=first.clip_seconds)
    for a in clips:
        if a.clip_id in stored:
            a.reference_cs = clip_score(stored[a.clip_id][None], [frames[a.clip_id]])
    scored = [a for a in clips if a.clip_id in wanted and a.clip_id not in stored]
    values = clip_scores(cs_extractor, [reference_waves[a.clip_id] for a in scored], first.sample_rate,
                         first.clip_seconds, [frames[a.clip_id] for a in scored]) if scored else []
    for a, v in zip(scored, values):
        a.reference_cs = v


def _summary(runs: list[RunData], chosen: list[str], clips: list[ClipAsset]) -> dict:
    return {"runs": [r.run_id for r in runs], "clips": chosen,
            "metrics": {r.run_id: {k: r.metric(k) for k in metric_order() if r.metric(k) is not None} for r in runs},
            "cs": {r.run_id: {c: mean_or_none([s.cs for s in r.samples.get(c, [])]) for c in chosen} for r in runs},
            "reference_cs": {a.clip_id: a.reference_cs for a in clips},
            "headline": _headline(clips, runs)}


def _headline(clips: list[ClipAsset], runs: list[RunData], n: int = HEADLINE_CLIPS) -> list[dict]:
    """The first clips' pictures (paths inside the report folder), for the summary that shows the
    page at a glance (`markdown_summary`): the poster, the real audio's mel and each run's first sample's."""
    shown = []
    for asset in clips[:n]:
        mels = {run.run_id: run.samples[asset.clip_id][0].mel for run in runs if run.samples.get(asset.clip_id)}
        shown.append({"clip_id": asset.clip_id, "label": asset.label, "poster": asset.poster,
                      "reference_mel": asset.reference_mel, "mels": mels})
    return shown


def _collect_plots(runs_root: str, runs: list[RunData], work: Path, own: list[Path]) -> list[Plot]:
    plots: list[Plot] = []
    folder = Path("assets", "plots")
    reports = RunLayout(runs_root).reports
    for uri in storage.list_files(reports, ".png"):
        # A report written under reports/ must not pull its own pictures back in.
        if "://" not in uri and any(Path(uri).resolve().is_relative_to(p.resolve()) for p in own):
            continue
        rel = posixpath.relpath(uri.replace(os.sep, "/"), reports.replace(os.sep, "/"))
        dest = folder / ("reports-" + safe_name(rel))
        copy_file(uri, work / dest)
        words = Path(rel).stem.replace("_", " ").replace("-", " ")
        plots.append(Plot(str(dest), f"Plot from the run's reports folder: {words}",
                          f"{words} (reports/{rel})"))
    seen = set()
    for run in runs:
        if run.mapper_dir is None or run.mapper_dir in seen:
            continue
        seen.add(run.mapper_dir)
        curve = storage.join(run.mapper_dir, "training_curve.png")
        if not storage.exists(curve):
            continue
        name = posixpath.basename(run.mapper_dir.replace(os.sep, "/"))
        dest = folder / f"training-curve-{safe_name(name)}.png"
        copy_file(curve, work / dest)
        plots.append(Plot(str(dest), f"Training curve of mapper {name}: training loss and validation metrics "
                                     "per epoch",
                          f"Training curve of mapper {name} (mappers/{name}/training_curve.png)"))
    return plots


__all__ = ["DEFAULT_CLIPS", "build_report", "default_report_dir", "stratified_sample", "format_value",
           "markdown_summary", "load_run", "available_runs", "clip_scores", "RunData"]


# --------------------------------------------------------------------------- the stage's shape (v2a.stages.shape)
# StageRun.out: the folder holding the runs; args: run_ids, page (the report's folder; None: the default one)
# and seed (which clips are shown). One item: the page is built whole.

def _run(item: WorkItem, section, run: StageRun, models, report) -> dict:
    # Without a profile there is no Wav2CLIP to score clips with; the page then leaves CS blank.
    extractor = models.get("extractor:wav2clip") if run.profile else None
    summary = build_report(run.out, list(run.arg("run_ids")), out=run.arg("page"), clips=section.clips,
                           seed=run.arg("seed", 0), cs_extractor=extractor, progress=False)
    report(pages=1)
    return summary


def _summarize(results, section, run: StageRun, closing=None) -> dict:
    (result,) = results
    summary = {k: v for k, v in result.items() if k not in ("key", "units", "skipped")}
    return {**summary, "line": f"report: {len(summary['clips'])} clips → {summary['index']}"}


def _reads(section, run: StageRun) -> list[str]:
    layout = RunLayout(run.out)
    return [layout.clips, layout.embeddings, layout.mappers, storage.join(run.out, "generations"), layout.results]


STAGE = Stage(
    name="report", section="report", run=_run, summarize=_summarize, reads=_reads, task_label="page",
    mapped=False,
    plan=lambda section, run, models: [WorkItem("page", {}, {"pages": 1})],
    outputs=lambda item, section, run: [storage.join(run.arg("page") or default_report_dir(run.out, run.arg("run_ids")),
                                                     "index.html")],
)
