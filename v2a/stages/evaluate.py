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
from v2a import __version__
from v2a.core import storage
from v2a.core.fingerprint import short_digest
from v2a.io import clips as clips_io
from v2a.io import embeddings as embeddings_io
from v2a.io import parquet
from v2a.io.audio import read_channels
from v2a.io.features import part_uri as features_part_uri, write_features
from v2a.io.layout import RunLayout
from v2a.media import MediaError, read_clip
from v2a.metrics.protocols import DEFAULT_PROTOCOL, Protocol, protocol as protocol_named
from v2a.metrics.reference_stats import id_list_sha256
from v2a.metrics.specs import SET_KINDS, SPECS, names, reference_rows
from v2a.stages.results_parts import part_key, write_results, write_scores
from v2a.stages.shape import Stage, StageRun, WorkItem

log = logging.getLogger(__name__)
IB_VIDEO_FPS = 0.5  # av-benchmark's ImageBind frame rate (av_bench/data/video_dataset.py _IMAGEBIND_FPS)
SYNC_VIDEO_FPS = 25.0  # av-benchmark's Synchformer frame rate (av_bench/data/video_dataset.py _SYNC_FPS)
DESYNC_MIN_SECONDS = 4.8  # one Synchformer window: 14 segments of 0.64 s every 0.32 s
NO_FRAMES_FOR_DESYNC = ("DeSync not computed: it needs each clip's video (Synchformer's 25-fps frames), and none of "
                        "these clips has one; give --out a run folder whose clips table holds these clip ids")
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
        key = f"{self.channel_rule},{'pad' if self.protocol.pad_short else 'cut'}"
        return key + (f",min{self.protocol.min_seconds:g}s" if self.protocol.min_seconds else "")

    def at_least_min_length(self, audio: Mapping, sample_rate: int) -> Mapping:
        """`audio` zero-padded to the protocol's shortest length (audioldm_eval's `pad_short_audio`), if it has one."""
        if not self.protocol.min_seconds:
            return audio
        return MinLength(audio, int(round(self.protocol.min_seconds * sample_rate)))

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
    if clip_seconds is not None:
        seconds = clip_seconds
    else:
        seconds = None if proto.whole_file else (proto.clip_seconds or default_seconds)
    return Scoring(proto, rule, None if seconds is None else float(seconds))


class MinLength(Mapping):
    """id -> waveform of another mapping, zero-padded at the end to at least `samples` (read on access)."""

    def __init__(self, audio: Mapping, samples: int):
        self.audio, self.samples = audio, int(samples)

    def __getitem__(self, key: str) -> np.ndarray:
        wave = self.audio[key]
        return wave if len(wave) >= self.samples else np.pad(wave, (0, self.samples - len(wave)))

    def __iter__(self):
        return iter(self.audio)

    def __len__(self) -> int:
        return len(self.audio)


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
    """clip id -> (T, H, W, 3) frames as av-benchmark reads ImageBind's video input: FFmpeg's `fps` filter at
    `fps` (v2a.media.fps_filter), the first int(fps x seconds) of them (at least one; all without `seconds`);
    images and clips that fail to decode are left out."""
    from v2a.media.fps_filter import read_fps_frames

    count = None if seconds is None else max(1, int(fps * seconds))
    rows = clips_io.clip_rows(clips_uri, clip_ids, columns=["clip_id", "kind", "uri"])
    out = {}
    for cid, r in rows.items():
        if r["kind"] != "video":
            continue
        try:
            frames, _ = read_fps_frames(r["uri"], fps, count)
        except MediaError as err:
            log.warning("IB: %s left out: %s", cid, err)
            continue
        if len(frames):
            out[cid] = frames
    return out


class VideoFrames(Mapping):
    """clip id -> (T, H, W, 3) uint8 frames at `fps` over the first `seconds`, decoded when read: 25-fps frames of
    a whole test set do not fit in memory, so DeSync reads them one clip at a time. A clip that fails to decode
    raises, naming it."""

    def __init__(self, uris: dict[str, str], seconds: float | None, fps: float):
        self._uris, self.seconds, self.fps = dict(uris), seconds, fps

    def __getitem__(self, cid: str) -> np.ndarray:
        try:
            clip = read_clip(self._uris[cid], frame_rate=self.fps, max_seconds=self.seconds, audio=False)
        except MediaError as err:
            raise MediaError(f"{cid}: its video frames could not be decoded for DeSync: {err}") from err
        return clip.frames

    def __iter__(self):
        return iter(self._uris)

    def __len__(self) -> int:
        return len(self._uris)


def desync_inputs(clips_uri: str | None, clip_ids, seconds: float | None, metrics: list[str], extractors: dict,
                  asked: bool) -> tuple[list[str], VideoFrames | None]:
    """(metrics, Synchformer's frames): DeSync is dropped, with one line saying why, when the clips are shorter
    than one Synchformer window, no clip has a video, or (from a protocol's default list, not `asked` for) no
    Synchformer extractor was given."""
    if "desync" not in metrics:
        return metrics, None
    rest = [m for m in metrics if m != "desync"]
    if not asked and "synchformer" not in extractors:
        log.warning("DeSync not computed: no synchformer extractor was given")
        return rest, None
    if seconds is not None and seconds < DESYNC_MIN_SECONDS:
        log.warning("DeSync not computed: %g-s clips are shorter than one Synchformer window (%g s)", seconds,
                    DESYNC_MIN_SECONDS)
        return rest, None
    videos = {}
    if clips_uri and storage.exists(clips_uri):
        rows = clips_io.clip_rows(clips_uri, clip_ids, columns=["clip_id", "kind", "uri"])
        videos = {c: r["uri"] for c, r in rows.items() if r["kind"] == "video"}
    if not videos:
        log.warning(NO_FRAMES_FOR_DESYNC)
        return rest, None
    return metrics, VideoFrames(videos, seconds, SYNC_VIDEO_FPS)


def _image_frames(embeddings_uri: str, clip_ids) -> dict[str, np.ndarray]:
    block = embeddings_io.read_block(embeddings_uri, ids=clip_ids, with_audio=False)
    return {cid: block.frames_of(i) for i, cid in enumerate(block.clip_ids)}


class ImageFrames(Mapping):
    """clip id -> (F, D) CLIP frames of the given clips that have an embedding row. The ids come from one column;
    the frames are read on the first value asked for: of a run's evaluation units and its final write, only the
    unit scoring CS reads them."""

    def __init__(self, embeddings_uri: str, clip_ids):
        self._uri = embeddings_uri
        self._ids = sorted(set(clip_ids) & set(embeddings_io.embedded_ids(embeddings_uri)))
        self._keys = set(self._ids)
        self._frames: dict[str, np.ndarray] | None = None

    def __getitem__(self, clip_id: str) -> np.ndarray:
        if self._frames is None:
            self._frames = _image_frames(self._uri, self._ids)
        return self._frames[clip_id]

    def __contains__(self, clip_id) -> bool:  # without reading the frames
        return clip_id in self._keys

    def __iter__(self):
        return iter(self._ids)

    def __len__(self) -> int:
        return len(self._ids)


class IncompleteGenerations(ValueError):
    """A generation set whose plan is not fully generated, scored without `allow_partial`."""


def check_complete(gen_dir: str, allow_partial: bool = False) -> bool | None:
    """Whether the set is fully generated (None: its plan is unknown); IncompleteGenerations for a
    half-finished set unless `allow_partial`. A partial score is easily mistaken for a finished one."""
    from v2a.io.generations import progress as generation_progress

    done = generation_progress(gen_dir)
    if done is None:
        return None
    if not done.complete and not allow_partial:
        raise IncompleteGenerations(done.line() + " (or score it as it is with --allow-partial)")
    return done.complete


def evaluate_run(gen_dir: str, out: str, extractors: dict, split: str = "test", dataset: str = "vggsound",
                 metrics=None, progress: bool = False, provenance: dict | None = None,
                 protocol: str = DEFAULT_PROTOCOL, channel_rule: str | None = None,
                 clip_seconds: float | None = None, allow_partial: bool = False, bootstrap: int = 0,
                 keep_features: bool = False) -> list[dict]:
    """Evaluate one generation run of the pipeline; write and return its rows of the results table.

    metrics: None = the protocol's list. protocol / channel_rule / clip_seconds: see v2a.metrics.protocols
    (clip_seconds None = the protocol's length, or the generation's own for v2a-mapper).
    provenance: what the caller knows of the run (v2a.core.provenance.PROVENANCE_KEYS), recorded in every row.
    allow_partial: score a set whose generation is unfinished (its rows say `complete` = false); without
    it such a set raises IncompleteGenerations. bootstrap: resamples of the Fréchet rows' intervals (0: none; the
    other rows always get theirs, `v2a.metrics.specs.INTERVALS`). keep_features: store the set statistics' inputs
    in OUT/features (storage_schemas/features.py), what `v2a compare` pairs them with.

    The flow runs the same steps as tasks: `evaluation_units` side by side through `score_unit`, then `write_run`."""
    complete = check_complete(gen_dir, allow_partial)
    how_metrics = list(metrics or protocol_named(protocol).metrics)
    ref_rate = reference_decode_rate(_rates(extractors), _generation_rate(gen_dir))
    scored = [score_unit(gen_dir, out, {n: extractors[n] for n in {SPECS[m].extractor for m in unit}
                                        if n in extractors}, unit,
                         split=split, protocol=protocol, channel_rule=channel_rule, clip_seconds=clip_seconds,
                         reference_rate=ref_rate, progress=progress, asked=bool(metrics), bootstrap=bootstrap,
                         keep_features=keep_features)
              for unit in evaluation_units(how_metrics)]
    return write_run(gen_dir, out, scored, split=split, dataset=dataset, provenance=provenance, protocol=protocol,
                     channel_rule=channel_rule, clip_seconds=clip_seconds, complete=complete)


def evaluation_units(metrics) -> list[list[str]]:
    """The metrics grouped by the extractor they read, in the table's order. A group is the evaluation's unit
    of work (one task): its extractor runs once over the audio for all of its metrics, and the groups of
    one run are independent of each other, so they run side by side."""
    groups: dict[str, list[str]] = {}
    for m in metrics:
        groups.setdefault(SPECS[m].extractor, []).append(m)
    return list(groups.values())


def reference_decode_rate(extractor_rates, floor: int) -> int:
    """The rate the real audio of video clips is decoded at: the highest any extractor of the run runs at
    (PaSST's 32 kHz reference keeps its 8-16 kHz band, as av-benchmark's native-rate files do), and no lower
    than `floor` (the generation's rate). Taken over every extractor of the run, not a unit's, so splitting a
    run into units changes no number."""
    return max([int(floor)] + [int(r or 0) for r in extractor_rates])


def _rates(extractors: dict) -> list[int]:
    return [int(getattr(e, "sample_rate", 0) or 0) for e in extractors.values()]


def _generation_rate(gen_dir: str) -> int:
    from v2a.io.generations import read_generations

    rates = read_generations(gen_dir, columns=["sample_rate"])["sample_rate"]
    if rates.empty:
        raise ValueError(f"{gen_dir}: no generations to evaluate")
    return int(rates.iloc[0])


def score_unit(gen_dir: str, out: str, extractors: dict, metrics, split: str = "test",
               protocol: str = DEFAULT_PROTOCOL, channel_rule: str | None = None, clip_seconds: float | None = None,
               reference_rate: int | None = None, progress: bool = False, asked: bool = True,
               bootstrap: int = 0, keep_features: bool = False) -> dict:
    """One unit of a run's evaluation: {"metrics": those it could compute, "rows": their metric rows,
    "extractors": the model ids}. Nothing is written. reference_rate: the run's (`reference_decode_rate`); None:
    from these extractors alone. asked: the metrics were named by the caller, not a protocol's default list
    (see `desync_inputs`). bootstrap, keep_features: see `evaluate_run`. The rows carry their per-sample values
    (`samples`), which `write_run` stores. The set statistics' features are the one thing a unit writes itself
    (`store_features`): units run side by side, and what they return travels as JSON."""
    from v2a.metrics.scores import evaluate_audio

    inputs = evaluation_inputs(gen_dir, out, split)
    how = scoring(protocol, channel_rule, clip_seconds, inputs.seconds)
    metrics = list(metrics)
    clip_ids, generated, images = inputs.clip_ids, inputs.generated, inputs.images
    generated.channel_rule = how.channel_rule
    ref_rate = reference_rate or reference_decode_rate(_rates(extractors), inputs.sample_rate)
    reference = reference_audio(RunLayout(out).clips, clip_ids, how.clip_seconds, ref_rate,
                                embeddings_uri=RunLayout(out).embeddings, channel_rule=how.channel_rule)
    sample_rate, seconds = inputs.sample_rate, how.clip_seconds
    if not reference:
        # Images and silent videos have no real audio: only the reference-free metrics apply.
        metrics = [m for m in metrics if not SPECS[m].needs_reference]
    frames = video_frames(RunLayout(out).clips, clip_ids, seconds) if "ib" in metrics else None
    if "ib" in metrics and not frames:
        log.warning("IB not computed: none of the run's clips has video frames (images only)")
        metrics = [m for m in metrics if m != "ib"]
    metrics, sync = desync_inputs(RunLayout(out).clips, clip_ids, seconds, metrics, extractors, asked)
    rows = evaluate_audio(how.at_least_min_length(generated, sample_rate),
                          how.at_least_min_length(reference, ref_rate) if reference else None, sample_rate, images,
                          extractors, clip_seconds=seconds, stats_dir=RunLayout(out).reference_stats,
                          metrics=list(metrics), progress=progress, video_frames=frames, pad=how.protocol.pad_short,
                          loading=_loading_key(how, ref_rate, inputs.sample_rate), reference_sample_rate=ref_rate,
                          ib_audio=StoredAudio(generated.uris) if frames else None, kl_formula=how.protocol.kl,
                          fd_offset=how.protocol.fd_offset, sync_frames=sync,
                          bootstrap_resamples=bootstrap, keep_features=keep_features) if metrics else []
    key = part_key({"run_id": inputs.gens.iloc[0]["run_id"], **how.columns()})
    store_features(RunLayout(out).features, key, id_list_sha256(clip_ids), metrics, rows)
    return {"metrics": metrics, "rows": rows,
            "extractors": [getattr(e, "model_id", str(e)) for e in extractors.values()]}


def _row_order(row: dict) -> float:
    # The order evaluate_audio gives when all metrics are computed at once: the table's, a reference row
    # (cs_reference) right after its metric.
    order = names()
    of_reference = {r[0]: s.name for s in (SPECS[m] for m in order) if (r := s.reference_row)}
    name = row["metric"]
    return order.index(of_reference[name]) + 0.5 if name in of_reference else order.index(name)


def write_run(gen_dir: str, out: str, units: list[dict], split: str = "test", dataset: str = "vggsound",
              provenance: dict | None = None, protocol: str = DEFAULT_PROTOCOL, channel_rule: str | None = None,
              clip_seconds: float | None = None, complete: bool | None = None) -> list[dict]:
    """The rows of a run's scored units (`score_unit`), with the run's protocol columns, written as one part
    of the results table; returned."""
    inputs = evaluation_inputs(gen_dir, out, split)
    how = scoring(protocol, channel_rule, clip_seconds, inputs.seconds)
    rows = sorted((r for u in units for r in u["rows"]), key=_row_order)
    metrics = [m for u in units for m in u["metrics"]]
    extractor_ids = [i for u in units for i in u["extractors"]]
    return _finish_run(rows, inputs.gens, inputs.gens.iloc[0], inputs.clip_ids, out, split, dataset, metrics,
                       extractor_ids, inputs.sample_rate, how.clip_seconds, provenance, how, complete)


@dataclass
class RunInputs:
    gens: object                 # the generations rows of the split (pandas)
    clip_ids: list[str]
    generated: Mapping           # sample id -> waveform, read on access
    images: Mapping              # clip id -> (F, D) CLIP frames, read on first access
    sample_rate: int
    seconds: float


class GeneratedAudio(Mapping):
    """sample id (`clip__sK`) -> generated waveform, read from its file when accessed (a test split's
    audio is GBs; the metrics read it a chunk at a time) and made mono by the channel rule."""

    def __init__(self, uris: dict[str, str], channel_rule: str = "mean"):
        self.uris = dict(sorted(uris.items()))
        self.channel_rule = channel_rule

    def __getitem__(self, key: str) -> np.ndarray:
        from v2a.metrics.audio import channel_rule_mono

        return channel_rule_mono(read_channels(self.uris[key])[0], self.channel_rule)

    def __iter__(self):
        return iter(self.uris)

    def __len__(self) -> int:
        return len(self.uris)


class StoredAudio(GeneratedAudio):
    """id -> (wave as stored, (channels, samples), its rate), read when accessed: IB's input (av-benchmark's
    ImageBind loader reads the file itself, every channel, at its own rate)."""

    def __getitem__(self, key: str) -> tuple[np.ndarray, int]:
        return read_channels(self.uris[key])


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
    images = ImageFrames(layout.embeddings, clip_ids)
    gens = gens[gens["clip_id"].isin(list(images))]
    generated = GeneratedAudio({f"{cid}__s{sample}": uri
                                for cid, sample, uri in zip(gens["clip_id"], gens["sample"], gens["uri"])})
    clip_ids = sorted(set(gens["clip_id"]))
    # No real audio here: each unit decodes it at the run's reference rate (`reference_audio`), which is not
    # the generation's rate when an extractor runs higher.
    return RunInputs(gens, clip_ids, generated, images, sample_rate, seconds)


def _finish_run(rows, gens, first, clip_ids, out, split, dataset, metrics, extractor_ids, sample_rate, seconds,
                provenance=None, how: Scoring | None = None, complete: bool | None = None):
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
        **(how or scoring()).columns(), "complete": complete,
    }
    full = [_row(protocol, r, len(clip_ids)) for r in rows]
    write_results(layout.results, full)
    _write_scores(layout.scores, full, rows)
    return full


def store_features(features_uri: str, key: tuple[str, str, str], id_sha256: str, metrics, rows: list[dict]) -> None:
    """Each set statistic's kept inputs (a row's `features`, taken out of it) as its part of OUT/features; the part
    of one computed without them is removed, since a re-score may have changed what the old vectors gave."""
    kept = {r["metric"]: r.pop("features", None) for r in rows}
    for m in metrics:
        if SPECS[m].kind in SET_KINDS:
            write_features(features_uri, key, m, kept.get(m), id_sha256)


def _features_of_item(item: WorkItem, section, run: StageRun) -> list[str]:
    """The parts of OUT/features a unit writes when it keeps features: a cached unit whose parts changed since
    (removed, say) runs again, as one whose results did."""
    wanted = [m for m in item.inputs["metrics"] if SPECS[m].kind in SET_KINDS]
    if not section.keep_features or not wanted:
        return []
    from v2a.io.generations import read_generations

    run_id = read_generations(run.arg("generations"), columns=["run_id"])["run_id"].iloc[0]
    key = part_key({"run_id": run_id, **scoring(**scoring_of(section)).columns()})
    return [features_part_uri(RunLayout(run.out).features, key, m) for m in wanted]


def _write_scores(scores_uri: str, full: list[dict], metric_rows: list[dict]) -> None:
    """The per-sample values of the rows that have them, as the part of the rows' (run, protocol, channel rule)."""
    if not full:
        return
    first = full[0]
    key = part_key(first)
    common = {"run_id": key[0], "protocol": key[1], "channel_rule": key[2], "id_list_sha256": first["id_list_sha256"]}
    values = [{**common, "metric": r["metric"], "clip_id": c, "sample_id": i, "value": float(v)}
              for r in metric_rows if r.get("samples")
              for i, c, v in zip(r["samples"]["sample_id"], r["samples"]["clip_id"], r["samples"]["value"])]
    write_scores(scores_uri, key, [r["metric"] for r in full], values)


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
           "sample_rate": metric_row.get("sample_rate"), "clip_seconds": metric_row.get("clip_seconds"),
           "ci_low": metric_row.get("ci_low"), "ci_high": metric_row.get("ci_high"),
           "ci_resamples": metric_row.get("ci_resamples")}
    return {k: (None if isinstance(v, float) and np.isnan(v) and k != "value" else v) for k, v in row.items()}


def _samples_per_clip(generated) -> list[int]:
    from collections import Counter

    from v2a.metrics.scores import clip_id_of_sample

    return list(Counter(clip_id_of_sample(k) for k in generated).values()) or [0]


def evaluate_folder(generated_dir: str, results_uri: str, extractors: dict, reference_dir: str | None = None,
                    run_dir: str | None = None, split: str = "test", run_id: str | None = None,
                    dataset: str = "external", clip_seconds: float | None = None, sample_rate: int | None = None,
                    metrics=None, stats_dir: str | None = None, provenance: dict | None = None,
                    protocol: str = DEFAULT_PROTOCOL, channel_rule: str | None = None, bootstrap: int = 0,
                    scores_uri: str | None = None, keep_features: bool = False,
                    features_uri: str | None = None) -> list[dict]:
    """Evaluate any folder of wav/flac files, e.g. another system's outputs, under a protocol.

    File stems are clip ids (a `__sK` suffix marks sample K). The reference is a folder of real audio
    with the same stems, or, with `run_dir`, the real audio of `split` from that run's clips table;
    CS needs `run_dir` too (its embeddings table holds the CLIP frames of each clip), and so does IB (its
    clips table locates each clip's video). Files of any length and rate are read as they are (the
    protocol's channel rule makes them mono) and every extractor resamples them once to its own rate;
    `sample_rate` forces one common rate first. clip_seconds None: the protocol's length (10 s for
    v2a-mapper). metrics None: the protocol's list. bootstrap, keep_features: see `evaluate_run`. The per-sample
    values go to `scores_uri`, the kept features to `features_uri` (default: the `scores` and `features` folders
    beside `results_uri`).
    """
    from v2a.metrics.scores import clip_id_of_sample, evaluate_audio

    how = scoring(protocol, channel_rule, clip_seconds, 10.0)
    asked = bool(metrics)
    metrics = list(metrics or how.protocol.metrics)
    sample_rate = sample_rate or how.protocol.read_rate
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
        ref_rate = sample_rate or reference_decode_rate(_rates(extractors), DECODE_SAMPLE_RATE)
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
    metrics, sync = desync_inputs(RunLayout(run_dir).clips if run_dir else None, clip_ids, how.clip_seconds, metrics,
                                  extractors, asked)
    metrics = [m for m in metrics if (reference or not SPECS[m].needs_reference)
               and (images or not SPECS[m].needs_frames)
               and ((sync if m == "desync" else frames) or not SPECS[m].needs_video)]
    if not metrics:
        raise ValueError("nothing to compute: give --reference (FD, FAD, KL) and/or a run folder with embeddings "
                         "(CS) and clips (IB)")
    rows = evaluate_audio(how.at_least_min_length(generated, gen_rate),
                          how.at_least_min_length(reference, ref_rate) if reference else None, gen_rate, images,
                          extractors, clip_seconds=how.clip_seconds, stats_dir=stats_dir, metrics=metrics,
                          progress=False, reference_sample_rate=ref_rate, video_frames=frames,
                          pad=how.protocol.pad_short, loading=how.loading,
                          ib_audio=StoredAudio(_folder_files(generated_dir)) if "ib" in metrics else None,
                          kl_formula=how.protocol.kl,
                          fd_offset=how.protocol.fd_offset, sync_frames=sync, bootstrap_resamples=bootstrap,
                          keep_features=keep_features)
    protocol_row = {
        "run_id": run_id or f"folder-{short_digest(str(generated_dir), 10)}",
        "created_at": datetime.now(timezone.utc), "dataset": dataset, "split": split,
        "id_list_sha256": id_list_sha256(clip_ids), "mapper_checkpoint_id": None, "mapper_kind": None,
        "generator_id": None, "mapper_guidance": None, "generator_guidance": None, "mapper_steps": None,
        "generator_steps": None, "aggregator": None, "v2a_version": __version__,
        "samples_per_clip": max(_samples_per_clip(generated)), "conditioning": None, "scheduler": None,
        **_provenance(provenance), **how.columns(),
    }
    store_features(features_uri or _beside(results_uri, "features"), part_key(protocol_row),
                   protocol_row["id_list_sha256"], metrics, rows)
    full = [_row(protocol_row, r, len(clip_ids)) for r in rows]
    write_results(results_uri, full)
    _write_scores(scores_uri or _beside(results_uri, "scores"), full, rows)
    return full


def _beside(uri: str, name: str) -> str:
    """The location `name` in the folder holding `uri` (a run's tables sit side by side)."""
    import posixpath

    head = str(uri).rstrip("/")
    if "://" in head:
        return posixpath.join(posixpath.dirname(head), name)
    from pathlib import Path

    return str(Path(head).parent / name)


def _folder_files(folder: str) -> dict[str, str]:
    """{stem: path} of a folder's audio files, the ones `load_audio_folder` reads."""
    from pathlib import Path

    from v2a.metrics.scores import AUDIO_SUFFIXES

    return {p.stem: str(p) for p in sorted(Path(folder).iterdir())
            if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES}


def _loading_key(how: Scoring, ref_rate: int, gen_rate: int) -> str | None:
    """Stored reference statistics are keyed by how the real audio was read: the channel rule and padding,
    and the decode rate when it is not the generation's."""
    parts = [p for p in (how.loading, None if ref_rate == gen_rate else f"decoded@{ref_rate}") if p]
    return ";".join(parts) or None


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


# --------------------------------------------------------------------------- the stage's shape (v2a.stages.shape)
# Run arguments (StageRun.args): generations (the generation set's folder), dataset, complete (check_complete's
# answer, asked by the flow before any task) and provenance (what the caller knows of the run).

def scoring_of(section) -> dict:
    """The protocol settings of an EvaluateConfig, as the evaluation functions take them."""
    return {"protocol": section.protocol, "channel_rule": section.channel_rule, "clip_seconds": section.clip_seconds}


def _plan(section, run: StageRun, models) -> list[WorkItem]:
    """One item per extractor and its metrics, each with the run's decode rate of the real audio, read from the
    profile without building a model."""
    from v2a.metrics.extractors import sample_rate_of
    from v2a.models.profile import load_profile

    units = evaluation_units(section.metric_list())
    sections = load_profile(run.profile).get("extractors") or {}
    rate = reference_decode_rate([sample_rate_of(n, sections.get(n)) for n in sorted({SPECS[m].extractor
                                                                              for u in units for m in u})],
                          _generation_rate(run.arg("generations")))
    return [WorkItem(u[0], {"metrics": list(u), "reference_rate": rate}, {"extractors": 1}) for u in units]


def _run(item: WorkItem, section, run: StageRun, models, report) -> dict:
    import sys

    unit = item.inputs["metrics"]
    extractors = {n: models.get(f"extractor:{n}") for n in sorted({SPECS[m].extractor for m in unit})}
    scored = score_unit(run.arg("generations"), run.out, extractors, unit, split=section.split,
                        reference_rate=item.inputs["reference_rate"], progress=sys.stderr.isatty(),
                        bootstrap=section.bootstrap, keep_features=section.keep_features, **scoring_of(section))
    report(extractors=1)
    return scored


def _close(results, section, run: StageRun, models, origin: dict) -> dict:
    """The units' rows as one part of OUT/results: {"rows": its rows, "outputs": the files it changed}."""
    from v2a.core import devices
    from v2a.core.fingerprint import fingerprints

    layout = RunLayout(run.out)

    def parts() -> list[str]:  # the results, their per-sample values and kept features: a cache hit needs all there
        return [f for folder in (layout.results, layout.scores, layout.features)
                for f in storage.list_files(folder, ".parquet")]

    before = fingerprints(parts())
    units = [{k: r[k] for k in ("metrics", "rows", "extractors") if k in r} for r in results]
    provenance = {**(run.arg("provenance") or {}), **origin, **devices.provenance(run.device)}
    rows = write_run(run.arg("generations"), run.out, units, split=section.split, dataset=run.arg("dataset"),
                     provenance=provenance, complete=run.arg("complete"), **scoring_of(section))
    # Parts are named by what they hold, so a re-run replaces its own file: changed files count as written.
    after = fingerprints(parts())
    return {"rows": rows, "outputs": sorted(u for u, fp in after.items() if before.get(u) != fp)}


def _summarize(results, section, run: StageRun, closing) -> dict:
    return {"rows": closing["rows"], "units": len(results)}


STAGE = Stage(
    name="evaluate", section="evaluate", plan=_plan, run=_run, summarize=_summarize, close=_close,
    outputs=_features_of_item, task_label="unit",
    reads=lambda section, run: [run.arg("generations"), RunLayout(run.out).clips, RunLayout(run.out).embeddings],
)
