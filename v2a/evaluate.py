"""Stage 5 glue: generated audio + the real audio and CLIP frames of the split → metric rows in `results`.

The maths and the extractors live in v2a.metrics; this module gathers the inputs and the protocol.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timezone

import numpy as np
import soundfile as sf

from storage_schemas import clips as clips_schema
from storage_schemas import results as results_schema
from v2a import __version__, storage, tables
from v2a.embed import read_embeddings
from v2a.aggregate import frames_array
from v2a.media import MediaError, read_clip
from v2a.metrics.reference_stats import id_list_sha256


def read_wave(uri: str) -> tuple[np.ndarray, int]:
    fs, path = storage.filesystem(uri)
    with fs.open(path, "rb") as handle:
        wave, sr = sf.read(handle, dtype="float32", always_2d=True)
    return wave.mean(axis=1), sr


def reference_audio(clips_uri: str, clip_ids, seconds: float, sample_rate: int = 16000) -> dict[str, np.ndarray]:
    """The real audio of the clips (16 kHz mono, the first `seconds`); clips without sound are left out."""
    clips = {r["clip_id"]: r for r in tables.read_table(clips_uri, clips_schema.SCHEMA, "clips").to_pylist()}
    out = {}
    for cid in clip_ids:
        row = clips.get(cid)
        if row is None or row["kind"] != "video":
            continue
        try:
            clip = read_clip(row["uri"], num_frames=1, sample_rate=sample_rate, max_seconds=seconds)
        except MediaError:
            continue
        if clip.audio is not None and clip.audio.size:
            out[cid] = clip.audio
    return out


def evaluate_run(gen_dir: str, out: str, extractors: dict, split: str = "test", dataset: str = "vggsound",
                 metrics=("fd", "fad", "cs", "kl", "is"), progress: bool = False) -> list[dict]:
    """Evaluate one generation run of the pipeline; append and return its rows of the results table."""
    from v2a.generate import read_generations
    from v2a.metrics.evaluate import evaluate_audio

    gens = read_generations(gen_dir)
    if gens.empty:
        raise ValueError(f"{gen_dir}: no generations to evaluate")
    emb = read_embeddings(storage.join(out, "embeddings"), split=split).set_index("clip_id")
    gens = gens[gens["clip_id"].isin(emb.index)]
    if gens.empty:
        raise ValueError(f"{gen_dir}: none of the generated clips is in split {split!r}")
    first = gens.iloc[0]
    sample_rate, seconds = int(first["sample_rate"]), float(first["seconds"])
    generated, images = {}, {}
    for cid, sample, uri in zip(gens["clip_id"], gens["sample"], gens["uri"]):
        key = f"{cid}__s{sample}"
        wave, sr = read_wave(uri)
        generated[key] = wave
        images[cid] = frames_array(emb.loc[cid, "image_frames"])
    clip_ids = sorted(set(gens["clip_id"]))
    reference = reference_audio(storage.join(out, "clips.parquet"), clip_ids, seconds, sample_rate)
    if not reference:
        # Images and silent videos have no real audio: only the reference-free metrics apply.
        metrics = [m for m in metrics if m in ("cs", "is")]
    rows = evaluate_audio(generated, reference or None, sample_rate, images, extractors, clip_seconds=seconds,
                          stats_dir=storage.join(out, "reference_stats"), metrics=list(metrics),
                          progress=progress)
    gen_time = float(gens["gen_time_s"].mean())
    rows.append({"metric": "gen_time_s", "value": gen_time, "extractor": None, "sample_rate": sample_rate,
                 "clip_seconds": seconds, "n_clips": len(clip_ids)})
    params = _trainable_params_m(out, first["mapper_checkpoint_id"])
    if params is not None:
        rows.append({"metric": "trainable_params_m", "value": params, "extractor": None, "sample_rate": None,
                     "clip_seconds": None, "n_clips": len(clip_ids)})
    protocol = {
        "run_id": str(first["run_id"]), "created_at": datetime.now(timezone.utc), "dataset": dataset, "split": split,
        "id_list_sha256": id_list_sha256(clip_ids), "mapper_checkpoint_id": first["mapper_checkpoint_id"],
        "mapper_kind": first["mapper_kind"], "generator_id": first["generator_id"],
        "mapper_guidance": first["mapper_guidance"], "generator_guidance": first["generator_guidance"],
        "mapper_steps": first["mapper_steps"], "generator_steps": first["generator_steps"],
        "aggregator": first["aggregator"], "v2a_version": __version__,
    }
    full = [_row(protocol, r, len(clip_ids)) for r in rows]
    tables.append_rows(storage.join(out, "results"), full, results_schema.SCHEMA, "results")
    return full


def _trainable_params_m(out: str, checkpoint_id) -> float | None:
    """The paper's 'trainable M' column: the mapper's own parameters (the frozen models do not count)."""
    if not isinstance(checkpoint_id, str):
        return None
    from v2a.report.runs import find_mapper

    _, config, exact = find_mapper(out, checkpoint_id, None)
    if not exact or not config or "trainable_params" not in config:
        return None
    return config["trainable_params"] / 1e6


def _row(protocol: dict, metric_row: dict, n_clips: int) -> dict:
    row = {**protocol, "n_clips": int(metric_row.get("n_clips") or n_clips), "metric": metric_row["metric"],
           "value": float(metric_row["value"]), "extractor": metric_row.get("extractor"),
           "sample_rate": metric_row.get("sample_rate"), "clip_seconds": metric_row.get("clip_seconds")}
    return {k: (None if isinstance(v, float) and np.isnan(v) and k != "value" else v) for k, v in row.items()}


def evaluate_folder(generated_dir: str, results_uri: str, extractors: dict, reference_dir: str | None = None,
                    run_dir: str | None = None, split: str = "test", run_id: str | None = None,
                    dataset: str = "external", clip_seconds: float = 10.0, sample_rate: int = 16000,
                    metrics=("fd", "fad", "cs", "kl", "is"), stats_dir: str | None = None) -> list[dict]:
    """Evaluate any folder of wav/flac files, e.g. another system's outputs.

    File stems are clip ids (a `__sK` suffix marks sample K). The reference is a folder of real audio
    with the same stems, or, with `run_dir`, the real audio of `split` from that run's clips table;
    CS needs `run_dir` too (its embeddings table holds the CLIP frames of each clip).
    """
    from v2a.metrics.evaluate import clip_id_of_sample, evaluate_audio, load_audio_folder

    generated = {k: w for k, (w, _) in load_audio_folder(generated_dir, target_sample_rate=sample_rate).items()}
    if not generated:
        raise ValueError(f"{generated_dir}: no .wav or .flac files")
    clip_ids = sorted({clip_id_of_sample(k) for k in generated})
    reference = None
    if reference_dir:
        reference = {k: w for k, (w, _) in load_audio_folder(reference_dir, target_sample_rate=sample_rate).items()}
    elif run_dir:
        reference = reference_audio(storage.join(run_dir, "clips.parquet"), clip_ids, clip_seconds, sample_rate)
    images = None
    if run_dir and storage.list_files(storage.join(run_dir, "embeddings"), ".parquet"):
        emb = read_embeddings(storage.join(run_dir, "embeddings"))
        images = {cid: frames_array(frames)
                  for cid, frames in zip(emb["clip_id"], emb["image_frames"]) if cid in set(clip_ids)} or None
    metrics = [m for m in metrics if (reference or m not in ("fd", "fad", "kl")) and (images or m != "cs")]
    if not metrics:
        raise ValueError("nothing to compute: give --reference (FD, FAD, KL) and/or a run folder with embeddings (CS)")
    rows = evaluate_audio(generated, reference or None, sample_rate, images, extractors, clip_seconds=clip_seconds,
                          stats_dir=stats_dir, metrics=metrics, progress=False)
    protocol = {
        "run_id": run_id or f"folder-{hashlib.sha256(str(generated_dir).encode()).hexdigest()[:10]}",
        "created_at": datetime.now(timezone.utc), "dataset": dataset, "split": split,
        "id_list_sha256": id_list_sha256(clip_ids), "mapper_checkpoint_id": None, "mapper_kind": None,
        "generator_id": None, "mapper_guidance": None, "generator_guidance": None, "mapper_steps": None,
        "generator_steps": None, "aggregator": None, "v2a_version": __version__,
    }
    full = [_row(protocol, r, len(clip_ids)) for r in rows]
    tables.append_rows(results_uri, full, results_schema.SCHEMA, "results")
    return full
