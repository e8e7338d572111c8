"""Stage 5 glue: generated audio + the real audio and CLIP frames of the split → metric rows in `results`.

The maths and the extractors live in v2a.metrics; this module gathers the inputs and the protocol.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone

import numpy as np

from v2a.core.rates import DECODE_SAMPLE_RATE
from storage_schemas import results as results_schema
from v2a import __version__
from v2a.core import storage
from v2a.io import clips as clips_io
from v2a.io import embeddings as embeddings_io
from v2a.io import parquet
from v2a.io.audio import read_wave
from v2a.io.layout import RunLayout
from v2a.media import MediaError, read_clip
from v2a.metrics.reference_stats import id_list_sha256
from v2a.metrics.specs import METRICS, SPECS


class ReferenceAudio(Mapping):
    """The real audio of video clips (mono at `sample_rate`, the first `seconds`), decoded only when a
    value is read: with the extractor statistics of the set already stored, nothing is decoded.

    The keys are the clips whose embedding row has a CLAP audio embedding (they had sound when they
    were embedded); a clip that fails to decode now raises, naming it, instead of silently changing
    the reference set that the stored statistics were computed on."""

    def __init__(self, uris: dict[str, str], seconds: float, sample_rate: int = DECODE_SAMPLE_RATE):
        self._uris, self.seconds, self.sample_rate = dict(sorted(uris.items())), seconds, sample_rate

    def __getitem__(self, clip_id: str) -> np.ndarray:
        uri = self._uris[clip_id]
        try:
            clip = read_clip(uri, num_frames=1, sample_rate=self.sample_rate, max_seconds=self.seconds)
        except MediaError as err:
            raise MediaError(f"reference audio of {clip_id} ({uri}): {err}") from err
        if clip.audio is None or not clip.audio.size:
            raise MediaError(f"reference audio of {clip_id} ({uri}): the file has no sound now")
        return clip.audio

    def __iter__(self):
        return iter(self._uris)

    def __len__(self) -> int:
        return len(self._uris)


def reference_audio(clips_uri: str, clip_ids, seconds: float, sample_rate: int = DECODE_SAMPLE_RATE,
                    embeddings_uri: str | None = None) -> ReferenceAudio:
    """The real audio of the given video clips that have sound (lazily decoded, see ReferenceAudio).

    Which clips have sound comes from the embeddings table when given (its audio embeddings), else
    from decoding each clip once."""
    rows = clips_io.clip_rows(clips_uri, clip_ids, columns=["clip_id", "kind", "uri"])
    videos = {c: r["uri"] for c, r in rows.items() if r["kind"] == "video"}
    if embeddings_uri is not None and embeddings_io.exists(embeddings_uri):
        with_sound = set()
        for table in parquet.iter_tables(embeddings_uri, None, "embeddings", columns=["clip_id", "audio_emb"],
                                         ids=list(videos), check=embeddings_io.check_schema):
            valid = table.column("audio_emb").is_valid().to_pylist()
            with_sound.update(c for c, v in zip(table.column("clip_id").to_pylist(), valid) if v)
        return ReferenceAudio({c: u for c, u in videos.items() if c in with_sound}, seconds, sample_rate)
    found = {}
    for cid, uri in videos.items():
        try:
            clip = read_clip(uri, num_frames=1, sample_rate=sample_rate, max_seconds=seconds)
        except MediaError:
            continue
        if clip.audio is not None and clip.audio.size:
            found[cid] = uri
    return ReferenceAudio(found, seconds, sample_rate)


def _image_frames(embeddings_uri: str, clip_ids) -> dict[str, np.ndarray]:
    block = embeddings_io.read_block(embeddings_uri, ids=clip_ids, with_audio=False)
    return {cid: block.frames_of(i) for i, cid in enumerate(block.clip_ids)}


def evaluate_run(gen_dir: str, out: str, extractors: dict, split: str = "test", dataset: str = "vggsound",
                 metrics=METRICS, progress: bool = False, provenance: dict | None = None) -> list[dict]:
    """Evaluate one generation run of the pipeline; write and return its rows of the results table.

    provenance: what the caller knows of the run (v2a.core.provenance.PROVENANCE_KEYS), recorded in every row."""
    from v2a.metrics.scores import evaluate_audio

    inputs = evaluation_inputs(gen_dir, out, split)
    gens, clip_ids, generated, images, reference = (inputs.gens, inputs.clip_ids, inputs.generated, inputs.images,
                                                    inputs.reference)
    sample_rate, seconds, first = inputs.sample_rate, inputs.seconds, gens.iloc[0]
    if not reference:
        # Images and silent videos have no real audio: only the reference-free metrics apply.
        metrics = [m for m in metrics if m in ("cs", "is")]
    rows = evaluate_audio(generated, reference or None, sample_rate, images, extractors, clip_seconds=seconds,
                          stats_dir=RunLayout(out).reference_stats, metrics=list(metrics),
                          progress=progress)
    return _finish_run(rows, gens, first, clip_ids, out, split, dataset, metrics, extractors, sample_rate, seconds,
                       provenance)


@dataclass
class RunInputs:
    gens: object                 # the generations rows of the split (pandas)
    clip_ids: list[str]
    generated: Mapping           # sample id -> waveform, read on access
    images: dict                 # clip id -> (F, D) CLIP frames
    reference: Mapping           # clip id -> real audio, decoded on access
    sample_rate: int
    seconds: float


class GeneratedAudio(Mapping):
    """sample id (`clip__sK`) -> generated waveform, read from its file when accessed (a test split's
    audio is GBs; the metrics read it a chunk at a time)."""

    def __init__(self, uris: dict[str, str]):
        self._uris = dict(sorted(uris.items()))

    def __getitem__(self, key: str) -> np.ndarray:
        return read_wave(self._uris[key])[0]

    def __iter__(self):
        return iter(self._uris)

    def __len__(self) -> int:
        return len(self._uris)


def evaluation_inputs(gen_dir: str, out: str, split: str = "test") -> RunInputs:
    """What evaluating a run needs, gathered from the tables: nothing is decoded here."""
    from v2a.io.generations import read_generations

    layout = RunLayout(out)
    gens = read_generations(gen_dir)
    if gens.empty:
        raise ValueError(f"{gen_dir}: no generations to evaluate")
    # The split comes from the clips table: a clip moved to another split since generation is not scored here.
    in_split = set(clips_io.read_clips(layout.clips, columns=["clip_id"], ids=set(gens["clip_id"]),
                                       split=split).column("clip_id").to_pylist())
    gens = gens[gens["clip_id"].isin(in_split)]
    if gens.empty:
        raise ValueError(f"{gen_dir}: none of the generated clips is in split {split!r}")
    first = gens.iloc[0]
    sample_rate, seconds = int(first["sample_rate"]), float(first["seconds"])
    clip_ids = sorted(set(gens["clip_id"]))
    images = _image_frames(layout.embeddings, clip_ids)
    gens = gens[gens["clip_id"].isin(images)]
    generated = GeneratedAudio({f"{cid}__s{sample}": uri
                                for cid, sample, uri in zip(gens["clip_id"], gens["sample"], gens["uri"])})
    clip_ids = sorted(set(gens["clip_id"]))
    reference = reference_audio(layout.clips, clip_ids, seconds, sample_rate, embeddings_uri=layout.embeddings)
    return RunInputs(gens, clip_ids, generated, images, reference, sample_rate, seconds)


def _finish_run(rows, gens, first, clip_ids, out, split, dataset, metrics, extractors, sample_rate, seconds,
                provenance=None):
    layout = RunLayout(out)
    gen_time = float(gens["gen_time_s"].mean())
    rows.append({"metric": "gen_time_s", "value": gen_time, "extractor": None, "sample_rate": sample_rate,
                 "clip_seconds": seconds, "n_clips": len(gens)})
    params = _trainable_params_m(out, first["mapper_checkpoint_id"])
    if params is not None:
        rows.append({"metric": "trainable_params_m", "value": params, "extractor": None, "sample_rate": None,
                     "clip_seconds": None, "n_clips": None})
    # A regression mapper has no guidance or sampling steps: recorded as null, not as the unused setting.
    diffusion = first["conditioning"] == "mapper" and not str(first["mapper_kind"] or "").startswith("reg-")
    protocol = {
        "run_id": str(first["run_id"]), "created_at": datetime.now(timezone.utc), "dataset": dataset, "split": split,
        "id_list_sha256": id_list_sha256(clip_ids), "mapper_checkpoint_id": first["mapper_checkpoint_id"],
        "mapper_kind": first["mapper_kind"], "generator_id": first["generator_id"],
        "mapper_guidance": first["mapper_guidance"] if diffusion else None,
        "generator_guidance": first["generator_guidance"],
        "mapper_steps": first["mapper_steps"] if diffusion else None, "generator_steps": first["generator_steps"],
        "aggregator": first["aggregator"], "v2a_version": __version__,
        "samples_per_clip": int(gens.groupby("clip_id")["sample"].nunique().max()),
        "conditioning": first["conditioning"], "scheduler": first["scheduler"], **_provenance(provenance),
    }
    full = [_row(protocol, r, len(clip_ids)) for r in rows]
    write_results(layout.results, full, "evaluate-run", protocol["run_id"], split, dataset, sorted(metrics),
                  protocol["id_list_sha256"], sorted(getattr(e, "model_id", str(e)) for e in extractors.values()))
    return full


def write_results(results_uri: str, rows: list[dict], *key) -> str:
    """The rows as one part named by what was evaluated: re-running the same evaluation replaces it."""
    return parquet.write_part(results_uri, rows, results_schema.SCHEMA, "results", *key)


def _trainable_params_m(out: str, checkpoint_id) -> float | None:
    """The paper's 'trainable M' column: the mapper's own parameters (the frozen models do not count)."""
    if not isinstance(checkpoint_id, str):
        return None
    from v2a.io.mappers import find_mapper

    _, config, exact = find_mapper(out, checkpoint_id, None)
    if not exact or not config or "trainable_params" not in config:
        return None
    return config["trainable_params"] / 1e6


def _provenance(given: dict | None) -> dict:
    from v2a.core.provenance import PROVENANCE_KEYS, git_commit

    given = dict(given or {})
    unknown = sorted(set(given) - set(PROVENANCE_KEYS))
    if unknown:
        raise ValueError(f"provenance: unknown key(s) {unknown}; accepted: {list(PROVENANCE_KEYS)}")
    return {**{k: None for k in PROVENANCE_KEYS}, **given, "git_commit": git_commit()}


# Rows of these metrics score the real audio, one item per clip; every other metric scores generated samples.
_REFERENCE_METRICS = ("cs_reference",)


def _row(protocol: dict, metric_row: dict, n_clips: int) -> dict:
    # The metrics count what they scored (`n_clips` in their rows): samples for the generated audio.
    scored = metric_row.get("n_clips")
    reference = metric_row["metric"] in _REFERENCE_METRICS
    row = {**protocol, "n_clips": int(scored) if reference and scored is not None else int(n_clips),
           "n_samples": None if reference or scored is None else int(scored), "metric": metric_row["metric"],
           "value": float(metric_row["value"]), "extractor": metric_row.get("extractor"),
           "sample_rate": metric_row.get("sample_rate"), "clip_seconds": metric_row.get("clip_seconds")}
    return {k: (None if isinstance(v, float) and np.isnan(v) and k != "value" else v) for k, v in row.items()}


def _samples_per_clip(generated) -> list[int]:
    from collections import Counter

    from v2a.metrics.scores import clip_id_of_sample

    return list(Counter(clip_id_of_sample(k) for k in generated).values()) or [0]


def evaluate_folder(generated_dir: str, results_uri: str, extractors: dict, reference_dir: str | None = None,
                    run_dir: str | None = None, split: str = "test", run_id: str | None = None,
                    dataset: str = "external", clip_seconds: float = 10.0, sample_rate: int = DECODE_SAMPLE_RATE,
                    metrics=METRICS, stats_dir: str | None = None, provenance: dict | None = None) -> list[dict]:
    """Evaluate any folder of wav/flac files, e.g. another system's outputs.

    File stems are clip ids (a `__sK` suffix marks sample K). The reference is a folder of real audio
    with the same stems, or, with `run_dir`, the real audio of `split` from that run's clips table;
    CS needs `run_dir` too (its embeddings table holds the CLIP frames of each clip).
    """
    from v2a.metrics.scores import clip_id_of_sample, evaluate_audio, load_audio_folder

    generated = {k: w for k, (w, _) in load_audio_folder(generated_dir, target_sample_rate=sample_rate).items()}
    if not generated:
        raise ValueError(f"{generated_dir}: no .wav or .flac files")
    clip_ids = sorted({clip_id_of_sample(k) for k in generated})
    reference = None
    if reference_dir:
        reference = {k: w for k, (w, _) in load_audio_folder(reference_dir, target_sample_rate=sample_rate).items()}
    elif run_dir:
        run = RunLayout(run_dir)
        in_split = set(clips_io.read_clips(run.clips, columns=["clip_id"], ids=clip_ids, split=split)
                       .column("clip_id").to_pylist())
        reference = reference_audio(run.clips, sorted(in_split), clip_seconds, sample_rate,
                                    embeddings_uri=run.embeddings)
    images = None
    if run_dir and embeddings_io.exists(RunLayout(run_dir).embeddings):
        images = _image_frames(RunLayout(run_dir).embeddings, clip_ids) or None
    metrics = [m for m in metrics if (reference or not SPECS[m].needs_reference) and (images or not SPECS[m].needs_frames)]
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
        "samples_per_clip": max(_samples_per_clip(generated)), "conditioning": None, "scheduler": None,
        **_provenance(provenance),
    }
    full = [_row(protocol, r, len(clip_ids)) for r in rows]
    write_results(results_uri, full, "evaluate-folder", protocol["run_id"], split, dataset, sorted(metrics),
                  protocol["id_list_sha256"], str(reference_dir), str(run_dir),
                  sorted(getattr(e, "model_id", str(e)) for e in extractors.values()))
    return full
