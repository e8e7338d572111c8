"""Stage 5 glue: generated audio + the real audio and CLIP frames of the split → metric rows in `results`.

The maths and the extractors live in v2a.metrics; this module gathers the inputs and the protocol.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone

import numpy as np

from v2a.core.rates import DECODE_SAMPLE_RATE
from storage_schemas import results as results_schema
from v2a import __version__
from v2a.core import storage
from v2a.core.fingerprint import short_digest
from v2a.io import clips as clips_io
from v2a.io import embeddings as embeddings_io
from v2a.io import parquet
from v2a.io.audio import read_wave
from v2a.io.layout import RunLayout
from v2a.media import MediaError, read_clip
from v2a.metrics.protocols import DEFAULT_PROTOCOL, Protocol, protocol as protocol_named
from v2a.metrics.reference_stats import id_list_sha256
from v2a.metrics.specs import SPECS, reference_rows

log = logging.getLogger(__name__)
IB_VIDEO_FPS = 0.5  # av-benchmark's ImageBind frame rate (av_bench/data/video_dataset.py _IMAGEBIND_FPS)
NO_FRAMES_FOR_IB = ("IB not computed: it needs each clip's video frames (ImageBind vision embedding), and a bare "
                    "audio folder has none; give --out a run folder whose clips table holds these clip ids")


@dataclass(frozen=True)
class Scoring:
    """How this evaluation reads and cuts audio: the protocol preset with what the caller overrode."""

    protocol: Protocol
    channel_rule: str
    clip_seconds: float | None

    @property
    def loading(self) -> str | None:
        """Names a non-default reading for the reference-statistics key (None: v2a's historical reading)."""
        if self.channel_rule == "mean" and self.protocol.pad_short:
            return None
        return f"{self.channel_rule},{'pad' if self.protocol.pad_short else 'cut'}"

    def columns(self) -> dict:
        return {"protocol": self.protocol.name, "channel_rule": self.channel_rule}


def scoring(protocol: str = DEFAULT_PROTOCOL, channel_rule: str | None = None,
            clip_seconds: float | None = None, default_seconds: float | None = None) -> Scoring:
    """The protocol's settings; `clip_seconds` / `channel_rule` override its defaults, and a protocol
    without its own length (v2a-mapper) scores `default_seconds` (the generation's length)."""
    from v2a.metrics.protocols import CHANNEL_RULES

    proto = protocol_named(protocol)
    rule = channel_rule or proto.channel_rule
    if rule not in CHANNEL_RULES:
        raise ValueError(f"unknown channel rule {rule!r}; accepted: {', '.join(CHANNEL_RULES)}")
    seconds = clip_seconds if clip_seconds is not None else (proto.clip_seconds or default_seconds)
    return Scoring(proto, rule, None if seconds is None else float(seconds))


def _rule_mono(wave: np.ndarray, rule: str) -> np.ndarray:
    """Mean removal of the two mean-removing rules on an already mono waveform."""
    return wave if rule == "mean" else (wave - wave.mean()).astype(np.float32)


class ReferenceAudio(Mapping):
    """The real audio of video clips (mono at `sample_rate`, the first `seconds`), decoded only when a
    value is read: with the extractor statistics of the set already stored, nothing is decoded.

    The keys are the clips whose embedding row has a CLAP audio embedding (they had sound when they
    were embedded); a clip that fails to decode now raises, naming it, instead of silently changing
    the reference set that the stored statistics were computed on."""

    def __init__(self, uris: dict[str, str], seconds: float, sample_rate: int = DECODE_SAMPLE_RATE,
                 channel_rule: str = "mean"):
        self._uris, self.seconds, self.sample_rate = dict(sorted(uris.items())), seconds, sample_rate
        self.channel_rule = channel_rule

    def __getitem__(self, clip_id: str) -> np.ndarray:
        uri = self._uris[clip_id]
        channels = "first" if self.channel_rule == "channel0-minus-mean" else "mean"
        try:
            clip = read_clip(uri, num_frames=1, sample_rate=self.sample_rate, max_seconds=self.seconds,
                             channels=channels)
        except MediaError as err:
            raise MediaError(f"reference audio of {clip_id} ({uri}): {err}") from err
        if clip.audio is None or not clip.audio.size:
            raise MediaError(f"reference audio of {clip_id} ({uri}): the file has no sound now")
        return _rule_mono(clip.audio, self.channel_rule)

    def __iter__(self):
        return iter(self._uris)

    def __len__(self) -> int:
        return len(self._uris)


def reference_audio(clips_uri: str, clip_ids, seconds: float, sample_rate: int = DECODE_SAMPLE_RATE,
                    embeddings_uri: str | None = None, channel_rule: str = "mean") -> ReferenceAudio:
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
        return ReferenceAudio({c: u for c, u in videos.items() if c in with_sound}, seconds, sample_rate,
                              channel_rule)
    found = {}
    for cid, uri in videos.items():
        try:
            clip = read_clip(uri, num_frames=1, sample_rate=sample_rate, max_seconds=seconds)
        except MediaError:
            continue
        if clip.audio is not None and clip.audio.size:
            found[cid] = uri
    return ReferenceAudio(found, seconds, sample_rate, channel_rule)


def video_frames(clips_uri: str, clip_ids, seconds: float | None, fps: float = IB_VIDEO_FPS) -> dict[str, np.ndarray]:
    """clip id -> (T, H, W, 3) frames at `fps` over the first `seconds` (ImageBind's video input, as
    av-benchmark samples it); images and clips that fail to decode are left out."""
    rows = clips_io.clip_rows(clips_uri, clip_ids, columns=["clip_id", "kind", "uri"])
    out = {}
    for cid, r in rows.items():
        try:
            clip = read_clip(r["uri"], frame_rate=fps, max_seconds=seconds, audio=False)
        except MediaError as err:
            log.warning("IB: %s left out: %s", cid, err)
            continue
        if clip.frames is not None and len(clip.frames):
            out[cid] = clip.frames
    return out


def _image_frames(embeddings_uri: str, clip_ids) -> dict[str, np.ndarray]:
    block = embeddings_io.read_block(embeddings_uri, ids=clip_ids, with_audio=False)
    return {cid: block.frames_of(i) for i, cid in enumerate(block.clip_ids)}


def evaluate_run(gen_dir: str, out: str, extractors: dict, split: str = "test", dataset: str = "vggsound",
                 metrics=None, progress: bool = False, provenance: dict | None = None,
                 protocol: str = DEFAULT_PROTOCOL, channel_rule: str | None = None,
                 clip_seconds: float | None = None) -> list[dict]:
    """Evaluate one generation run of the pipeline; write and return its rows of the results table.

    metrics: None = the protocol's list. protocol / channel_rule / clip_seconds: see v2a.metrics.protocols
    (clip_seconds None = the protocol's length, or the generation's own for v2a-mapper).
    provenance: what the caller knows of the run (v2a.core.provenance.PROVENANCE_KEYS), recorded in every row."""
    from v2a.metrics.scores import evaluate_audio

    inputs = evaluation_inputs(gen_dir, out, split)
    how = scoring(protocol, channel_rule, clip_seconds, inputs.seconds)
    metrics = list(metrics or how.protocol.metrics)
    gens, clip_ids, generated, images = inputs.gens, inputs.clip_ids, inputs.generated, inputs.images
    generated.channel_rule = how.channel_rule
    ref_rate = _reference_rate(extractors, inputs.sample_rate)
    reference = reference_audio(RunLayout(out).clips, clip_ids, how.clip_seconds, ref_rate,
                                embeddings_uri=RunLayout(out).embeddings, channel_rule=how.channel_rule)
    sample_rate, seconds, first = inputs.sample_rate, how.clip_seconds, gens.iloc[0]
    if not reference:
        # Images and silent videos have no real audio: only the reference-free metrics apply.
        metrics = [m for m in metrics if not SPECS[m].needs_reference]
    on_video = [m for m in metrics if SPECS[m].needs_video]
    frames = video_frames(RunLayout(out).clips, clip_ids, seconds) if on_video else None
    if on_video and not frames:
        log.warning("%s not computed: none of the run's clips has video frames (images only)",
                    ", ".join(SPECS[m].label for m in on_video))
        metrics = [m for m in metrics if m not in on_video]
    rows = evaluate_audio(generated, reference or None, sample_rate, images, extractors, clip_seconds=seconds,
                          stats_dir=RunLayout(out).reference_stats, metrics=list(metrics),
                          progress=progress, video_frames=frames, pad=how.protocol.pad_short,
                          loading=_loading_key(how, ref_rate, inputs.sample_rate), reference_sample_rate=ref_rate)
    return _finish_run(rows, gens, first, clip_ids, out, split, dataset, metrics, extractors, sample_rate, seconds,
                       provenance, how)


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

    def __init__(self, uris: dict[str, str], channel_rule: str = "mean"):
        self._uris = dict(sorted(uris.items()))
        self.channel_rule = channel_rule

    def __getitem__(self, key: str) -> np.ndarray:
        return _rule_mono(read_wave(self._uris[key])[0], self.channel_rule)

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
                provenance=None, how: Scoring | None = None):
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
        **(how or scoring()).columns(),
    }
    full = [_row(protocol, r, len(clip_ids)) for r in rows]
    write_results(layout.results, full, "evaluate-run", protocol["run_id"], split, dataset, sorted(metrics),
                  *_protocol_key(how),
                  protocol["id_list_sha256"], sorted(getattr(e, "model_id", str(e)) for e in extractors.values()))
    return full


def _protocol_key(how: Scoring | None) -> list:
    """Part-name key of a non-default scoring (the default adds nothing: earlier parts are still replaced)."""
    if how is None or (how.protocol.name == DEFAULT_PROTOCOL and how.loading is None):
        return []
    return [how.protocol.name, how.channel_rule, how.clip_seconds]


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


def _row(protocol: dict, metric_row: dict, n_clips: int) -> dict:
    # The metrics count what they scored (`n_clips` in their rows): samples for the generated audio.
    scored = metric_row.get("n_clips")
    # A reference row (cs_reference) scores the real audio, one item per clip; every other row scores samples.
    reference = metric_row["metric"] in reference_rows()
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
                    dataset: str = "external", clip_seconds: float | None = None, sample_rate: int | None = None,
                    metrics=None, stats_dir: str | None = None, provenance: dict | None = None,
                    protocol: str = DEFAULT_PROTOCOL, channel_rule: str | None = None) -> list[dict]:
    """Evaluate any folder of wav/flac files, e.g. another system's outputs, under a protocol.

    File stems are clip ids (a `__sK` suffix marks sample K). The reference is a folder of real audio
    with the same stems, or, with `run_dir`, the real audio of `split` from that run's clips table;
    CS needs `run_dir` too (its embeddings table holds the CLIP frames of each clip), and so does IB (its
    clips table locates each clip's video). Files of any length and rate are read as they are (the
    protocol's channel rule makes them mono) and every extractor resamples them once to its own rate;
    `sample_rate` forces one common rate first. clip_seconds None: the protocol's length (10 s for
    v2a-mapper). metrics None: the protocol's list.
    """
    from v2a.metrics.scores import clip_id_of_sample, evaluate_audio, load_audio_folder

    how = scoring(protocol, channel_rule, clip_seconds, 10.0)
    metrics = list(metrics or how.protocol.metrics)
    generated, gen_rate = _folder_audio(generated_dir, sample_rate, how.channel_rule)
    if not generated:
        raise ValueError(f"{generated_dir}: no .wav or .flac files")
    clip_ids = sorted({clip_id_of_sample(k) for k in generated})
    reference, ref_rate = None, None
    if reference_dir:
        reference, ref_rate = _folder_audio(reference_dir, sample_rate, how.channel_rule)
    elif run_dir:
        run = RunLayout(run_dir)
        in_split = set(clips_io.read_clips(run.clips, columns=["clip_id"], ids=clip_ids, split=split)
                       .column("clip_id").to_pylist())
        ref_rate = sample_rate or _reference_rate(extractors, DECODE_SAMPLE_RATE)
        reference = reference_audio(run.clips, sorted(in_split), how.clip_seconds, ref_rate,
                                    embeddings_uri=run.embeddings, channel_rule=how.channel_rule)
    images = None
    if run_dir and embeddings_io.exists(RunLayout(run_dir).embeddings):
        images = _image_frames(RunLayout(run_dir).embeddings, clip_ids) or None
    frames = None
    if any(SPECS[m].needs_video for m in metrics):
        if run_dir and storage.exists(RunLayout(run_dir).clips):
            frames = video_frames(RunLayout(run_dir).clips, clip_ids, how.clip_seconds) or None
        if frames is None:
            log.warning(NO_FRAMES_FOR_IB)
    metrics = [m for m in metrics if (reference or not SPECS[m].needs_reference)
               and (images or not SPECS[m].needs_frames) and (frames or not SPECS[m].needs_video)]
    if not metrics:
        raise ValueError("nothing to compute: give --reference (FD, FAD, KL) and/or a run folder with embeddings "
                         "(CS) and clips (IB)")
    rows = evaluate_audio(generated, reference or None, gen_rate, images, extractors, clip_seconds=how.clip_seconds,
                          stats_dir=stats_dir, metrics=metrics, progress=False, reference_sample_rate=ref_rate,
                          video_frames=frames, pad=how.protocol.pad_short, loading=how.loading)
    protocol_row = {
        "run_id": run_id or f"folder-{short_digest(str(generated_dir), 10)}",
        "created_at": datetime.now(timezone.utc), "dataset": dataset, "split": split,
        "id_list_sha256": id_list_sha256(clip_ids), "mapper_checkpoint_id": None, "mapper_kind": None,
        "generator_id": None, "mapper_guidance": None, "generator_guidance": None, "mapper_steps": None,
        "generator_steps": None, "aggregator": None, "v2a_version": __version__,
        "samples_per_clip": max(_samples_per_clip(generated)), "conditioning": None, "scheduler": None,
        **_provenance(provenance), **how.columns(),
    }
    full = [_row(protocol_row, r, len(clip_ids)) for r in rows]
    write_results(results_uri, full, "evaluate-folder", protocol_row["run_id"], split, dataset, sorted(metrics),
                  protocol_row["id_list_sha256"], str(reference_dir), str(run_dir),
                  sorted(getattr(e, "model_id", str(e)) for e in extractors.values()), *_protocol_key(how))
    return full


def _loading_key(how: Scoring, ref_rate: int, gen_rate: int) -> str | None:
    """Stored reference statistics are keyed by how the real audio was read: the channel rule and padding,
    and the decode rate when it is not the generation's."""
    parts = [p for p in (how.loading, None if ref_rate == gen_rate else f"decoded@{ref_rate}") if p]
    return ";".join(parts) or None


def _reference_rate(extractors: dict, floor: int) -> int:
    """The rate the real audio of video clips is decoded at: the highest any extractor runs at (PaSST's 32 kHz
    reference keeps its 8-16 kHz band, as av-benchmark's native-rate files do), and no lower than `floor`."""
    return max([int(floor)] + [int(getattr(e, "sample_rate", 0) or 0) for e in extractors.values()])


def _folder_audio(folder: str, sample_rate: int | None, channel_rule: str) -> tuple[dict[str, np.ndarray], int]:
    """(id -> mono waveform, its rate): the files' own rate when they share one (each extractor then resamples
    once, as av-benchmark does), else all resampled to the highest of them; `sample_rate` forces one."""
    from v2a.metrics import audio
    from v2a.metrics.scores import load_audio_folder

    loaded = load_audio_folder(folder, target_sample_rate=sample_rate, channel_rule=channel_rule)
    rates = {sr for _, sr in loaded.values()}
    if not rates:
        return {}, int(sample_rate or DECODE_SAMPLE_RATE)
    rate = max(rates)
    return {k: audio.resample(w, sr, rate) for k, (w, sr) in loaded.items()}, int(rate)
