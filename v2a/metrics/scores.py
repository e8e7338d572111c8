"""FD / FAD / CLIP-Score / KL / IS of generated audio, one row per metric with its protocol.

Keys. `generated` is keyed by *sample* id, `reference` and `image_embeddings` by *clip* id;
`clip_id_of(sample_id)` says which clip a sample belongs to. The default strips the
`__s<k>` suffix that `v2a.stages.generate` gives the k-th sample of a clip (`abc_000030__s1` ->
`abc_000030`) and leaves other keys unchanged, so one sample per clip can simply use the clip
id. Pass `clip_id_of=lambda k: k` (or your own mapping) to decide otherwise.

With several samples per clip:
  - FD / FAD fit one Gaussian over all generated samples (all their frames for FAD);
  - KL averages over all (reference clip, sample) pairs, IS runs over all samples;
  - CS averages over samples (each sample scored against its clip's image embeddings).
With the same number of samples for every clip these equal av-benchmark's per-sample-index
averages.

Metric definitions (REFERENCE.md section 4): FD = squared Fréchet distance on PANNs Cnn14
`embedding` (one vector per clip); FAD = the same on VGGish frames; CS = 100 x cosine between
the CLIP image embedding and the Wav2CLIP audio embedding, averaged over the frames of a clip
(one row for an image), then over clips; KL / IS as in `v2a.metrics.classification`.
`cs_reference` scores the real audio the same way (the paper's Reference row, 8.925).
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import Callable, Mapping

import numpy as np
from tqdm import tqdm

from v2a.core.stopping import raise_if_stopped
from v2a.core.threads import pins_threads
from v2a.metrics import audio, bootstrap
from v2a.metrics.classification import KL_FORMULAS, KL_ROW_FORMULAS, inception_score, inception_splits
from v2a.metrics.frechet import DEFAULT_EPS, frechet_distance_from_stats, gaussian_stats, singular_offset
from v2a.metrics.reference_stats import reference_stats

log = logging.getLogger(__name__)

from v2a.metrics.specs import INTERVALS, SPECS, names  # noqa: E402  (the one metric table)
AUDIO_SUFFIXES = (".wav", ".flac")
_SAMPLE_SUFFIX = re.compile(r"__s\d+$")



def clip_id_of_sample(sample_id: str) -> str:
    """`<clip_id>__s<k>` -> `<clip_id>`; any other key is returned unchanged."""
    return _SAMPLE_SUFFIX.sub("", sample_id)


def load_audio_folder(path: str | os.PathLike, target_sample_rate: int | None = None,
                      recursive: bool = False, channel_rule: str = "mean") -> dict[str, tuple[np.ndarray, int]]:
    """{file stem: (mono float32 waveform, sample rate)} for the .wav / .flac files of a folder.

    With `target_sample_rate`, every file is resampled to it (through `v2a.metrics.audio`). `channel_rule`
    says how a multi-channel file becomes mono (`v2a.metrics.protocols.CHANNEL_RULES`).
    """
    import soundfile as sf  # only this reader needs it; the metrics themselves do not

    root = Path(path)
    if not root.is_dir():
        raise FileNotFoundError(f"audio folder not found: {root}")
    files = sorted(p for p in (root.rglob("*") if recursive else root.iterdir())
                   if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES)
    out: dict[str, tuple[np.ndarray, int]] = {}
    for f in files:
        if f.stem in out:
            raise ValueError(f"two audio files share the id {f.stem!r} under {root}")
        wave, sr = sf.read(str(f), dtype="float32", always_2d=True)
        wave = audio.channel_rule_mono(wave.T, channel_rule)  # soundfile gives (samples, channels)
        if target_sample_rate is not None:
            wave, sr = audio.resample(wave, sr, target_sample_rate), int(target_sample_rate)
        out[f.stem] = (wave, int(sr))
    return out


def _row(metric: str, value: float, extractor, clip_seconds, n_clips: int) -> dict:
    return {"metric": metric, "value": float(value), "extractor": extractor.model_id,
            "sample_rate": int(extractor.sample_rate),
            "clip_seconds": None if clip_seconds is None else float(clip_seconds), "n_clips": int(n_clips),
            "ci_low": None, "ci_high": None, "ci_resamples": None, "samples": None}


def _extract(extractor, waves: Mapping[str, np.ndarray], ids: list[str], sample_rate: int, clip_seconds,
             progress: bool, chunk: int = 64, pad: bool = True):
    """{output name: values in `ids` order}: `extractor` run over `ids` in chunks, so only one chunk of
    resampled audio is in memory."""
    parts = []
    bar = tqdm(total=len(ids), desc=f"generated {extractor.name}", unit="clip", disable=not progress)
    for start in range(0, len(ids), chunk):
        raise_if_stopped()
        batch = [audio.prepare(waves[i], sample_rate, extractor.sample_rate, clip_seconds, pad)
                 for i in ids[start:start + chunk]]
        parts.append(outputs(extractor, batch))
        bar.update(len(batch))
    bar.close()
    if not parts:
        return {}
    return {k: ([x for p in parts for x in p[k]] if isinstance(parts[0][k], list) else
                np.concatenate([p[k] for p in parts])) for k in parts[0]}


def outputs(extractor, batch: list[np.ndarray]) -> dict:
    """{output name: per-clip values} of one batch: what the metric table's `reads` names.

    An extractor may say itself (`outputs(batch)`); otherwise a classifier gives `embedding` and `logits`,
    a frame-level one (a list of per-clip arrays) `frames`, any other `embedding`."""
    if hasattr(extractor, "outputs"):
        return extractor.outputs(batch)
    if hasattr(extractor, "embed_and_logits"):
        emb, logits = extractor.embed_and_logits(batch)
        return {"embedding": emb, "logits": logits}
    out = extractor.embed(batch)
    return {"frames": out} if isinstance(out, list) else {"embedding": out}


def clip_score(audio_embeddings: np.ndarray, image_embeddings: list[np.ndarray]) -> float:
    """100 x mean over items of (mean over an item's frames of cosine(frame, audio embedding))."""
    return 100.0 * float(np.mean(_clip_cosines(audio_embeddings, image_embeddings)))


def clip_scores(audio_embeddings: np.ndarray, image_embeddings: list[np.ndarray]) -> np.ndarray:
    """100 x each item's mean cosine: the values `clip_score` averages."""
    return 100.0 * np.asarray(_clip_cosines(audio_embeddings, image_embeddings), dtype=np.float64)


def _clip_cosines(audio_embeddings: np.ndarray, image_embeddings: list[np.ndarray]) -> list:
    scores = []
    for a, img in zip(audio_embeddings, image_embeddings):
        frames = np.atleast_2d(np.asarray(img, dtype=np.float64))
        if frames.shape[1] != a.shape[0]:
            raise ValueError(
                f"CLIP image embeddings are {frames.shape[1]}-d but Wav2CLIP gives {a.shape[0]}-d; "
                "set extractors.wav2clip.embed_dim to the profile's CLIP embedding size")
        a64 = np.asarray(a, dtype=np.float64)
        denom = np.linalg.norm(frames, axis=1) * np.linalg.norm(a64)
        cos = (frames @ a64) / np.maximum(denom, 1e-12)
        scores.append(cos.mean())
    return scores


def _pairs(sample_ids, clip_id_of, available, what: str) -> tuple[list[int], list[str]]:
    """Indices of samples whose clip is in `available`, and those clip ids; logs what is left out."""
    idx, clips = [], []
    for i, sid in enumerate(sample_ids):
        cid = clip_id_of(sid)
        if cid in available:
            idx.append(i)
            clips.append(cid)
    missing = len(sample_ids) - len(idx)
    if missing:
        log.warning("%s: %d of %d generated samples have no matching clip and are left out", what, missing,
                    len(sample_ids))
    if not idx:
        raise ValueError(f"{what}: no generated sample matches a clip id (check clip_id_of)")
    return idx, clips


def _frames_for(m: str, video_frames, sync_frames):
    """The decoded frames a video metric reads: Synchformer's 25-fps ones for DeSync, ImageBind's otherwise."""
    return sync_frames if m == "desync" else video_frames


def _wanted(metrics, reference, image_embeddings, extractors, video_frames=None, sync_frames=None) -> list[str]:
    if metrics is None:
        chosen = [m for m in names() if SPECS[m].extractor in extractors
                  and (reference is not None or not SPECS[m].needs_reference)
                  and (image_embeddings is not None or not SPECS[m].needs_frames)
                  and (_frames_for(m, video_frames, sync_frames) is not None or not SPECS[m].needs_video)]
        if not chosen:
            raise ValueError("nothing to compute: give extractors and reference audio or image embeddings")
        return chosen
    chosen = []
    for m in metrics:
        if m not in SPECS:
            raise ValueError(f"unknown metric {m!r}; accepted: {', '.join(names())}")
        ext, needs_ref = SPECS[m].extractor, SPECS[m].needs_reference
        if ext not in extractors:
            raise ValueError(f"metric {m!r} needs the {ext!r} extractor; extractors given: {sorted(extractors)}")
        if needs_ref and reference is None:
            raise ValueError(f"metric {m!r} needs reference audio")
        if SPECS[m].needs_frames and image_embeddings is None:
            raise ValueError(f"metric {m!r} needs image_embeddings")
        if SPECS[m].needs_video and _frames_for(m, video_frames, sync_frames) is None:
            raise ValueError(f"metric {m!r} needs the clips' video frames at {SPECS[m].video_fps:g} fps "
                             f"({'sync_frames' if m == 'desync' else 'video_frames'})")
        chosen.append(m)
    return chosen


def _extractors_device(arguments: dict) -> str:
    devices = {str(getattr(e, "device", "cpu")) for e in arguments["extractors"].values()}
    return "cpu" if all(d.startswith("cpu") for d in devices) else "cuda"


# An extractor's embeddings, and so the metrics, depend on the CPU thread count, which must not depend on
# what ran before in the process (v2a/core/threads.py).
@pins_threads(_extractors_device)
def evaluate_audio(generated: Mapping[str, np.ndarray], reference: Mapping[str, np.ndarray] | None,
                   sample_rate: int, image_embeddings: Mapping[str, np.ndarray] | None, extractors: Mapping,
                   clip_seconds: float | None = 10.0, stats_dir: str | os.PathLike | None = None,
                   metrics=None, clip_id_of: Callable[[str], str] = clip_id_of_sample,
                   score_reference_cs: bool = True, reference_sample_rate: int | None = None,
                   progress: bool = True, video_frames: Mapping[str, np.ndarray] | None = None,
                   pad: bool = True, loading: str | None = None,
                   sync_frames: Mapping[str, np.ndarray] | None = None,
                   ib_audio: Mapping[str, tuple[np.ndarray, int]] | None = None,
                   kl_formula: str = "av-benchmark", fd_offset: str = "if-singular",
                   bootstrap_resamples: int = 0, keep_features: bool = False) -> list[dict]:
    """Metric rows {metric, value, extractor, sample_rate, clip_seconds, n_clips, ci_low, ci_high, ci_resamples,
    samples} for the generated audio.

    generated / reference: id -> mono waveform at `sample_rate` (see the module docstring for keys);
    `reference_sample_rate` gives the reference's rate when it differs.
    image_embeddings: clip id -> (F, D) CLIP image embeddings, one row per video frame (or (D,)
    / (1, D) for an image). extractors: the metric table's extractor names -> built extractors.
    metrics: names from the metric table (`v2a.metrics.specs`); None = every one the inputs allow.
    stats_dir: where reference statistics are cached (see `reference_stats`).
    video_frames: clip id -> (T, H, W, 3) uint8 frames at ImageBind's 0.5 fps, for IB; sync_frames: the same at
    Synchformer's 25 fps, for DeSync (a lazy mapping is read one clip at a time).
    ib_audio: sample id -> (wave, rate) as the generated file stores it ((channels, N) or (N,)): IB's audio
    tower hears the whole file, all channels resampled, as av-benchmark reads it; None: the whole `generated`
    waveform (never cut to clip_seconds).
    kl_formula: the `kl` / `kl_passt` rows' formula (`KL_FORMULAS`: av-benchmark's, or audioldm_eval's epsilon one).
    fd_offset: when the Fréchet distances regularise a singular covariance (`v2a.metrics.frechet.OFFSET_RULES`).
    pad: zero-pad clips shorter than clip_seconds (False: cut only, as av-benchmark); loading: a name for a
    non-default way the audio was read (channel rule, no padding), part of the reference-statistics key.
    Rows come in the table's order, a reference row (cs_reference) after its metric. `extractor` is the
    extractor's model id (weights included); `sample_rate` is the rate it ran at.
    ci_low / ci_high: the row's 95 % bootstrap interval over clips and ci_resamples its resample count (None: no
    interval), as the metric table's `INTERVALS` says for the row's kind; bootstrap_resamples: the resamples of
    the kinds that have one only on request (Fréchet; 0: none). samples: {"sample_id", "clip_id", "value"} lists
    of a row that averages per-sample values (what a paired comparison of two runs resamples), else None.
    keep_features: a set statistic's row (Fréchet, inception) also carries `features`, what it was computed from
    ({"sample_id", "clip_id": one per vector, "vectors": (rows, dim) in the order read, "reference_stats": where
    a Fréchet row's reference fit is stored}), which the caller stores for a paired comparison of set statistics.
    """
    if not generated:
        raise ValueError("no generated audio to evaluate")
    if kl_formula not in KL_FORMULAS:
        raise ValueError(f"unknown KL formula {kl_formula!r}; accepted: {', '.join(KL_FORMULAS)}")
    kl_divergence = KL_FORMULAS[kl_formula]
    if reference is not None and len(reference) == 0:
        reference = None
    chosen = _wanted(metrics, reference, image_embeddings, extractors, video_frames, sync_frames)
    sample_ids = sorted(generated)
    rows: list[dict] = []

    ref_cache = {}

    def ref_stats(name: str):
        if name not in ref_cache:
            ref_cache[name] = reference_stats(reference, reference_sample_rate or sample_rate, extractors[name],
                                              clip_seconds, stats_dir, progress, pad=pad, loading=loading)
        return ref_cache[name]

    run = _Run(generated, reference, sample_rate, reference_sample_rate or sample_rate, image_embeddings,
               video_frames, extractors, clip_seconds, clip_id_of, sample_ids, progress, pad, ref_stats,
               score_reference_cs)
    run.kl_divergence, run.fd_offset, run.ib_audio, run.sync_frames = kl_divergence, fd_offset, ib_audio, sync_frames
    run.kl_rows, run.bootstrap_resamples = KL_ROW_FORMULAS[kl_formula], int(bootstrap_resamples)
    run.keep_features = bool(keep_features)
    # One extraction per extractor, over the samples its chosen metrics read, shared by all of them.
    specs = [SPECS[m] for m in names() if m in chosen]
    for s in specs:
        needs_all = any(not o.needs_video for o in specs if o.extractor == s.extractor)
        run.ids.setdefault(s.extractor, sample_ids if needs_all or video_frames is None else
                           [i for i in sample_ids if clip_id_of(i) in video_frames])
    for s in specs:  # the table's order: the rows come out in it
        if s.kind not in KINDS:
            raise ValueError(f"metric {s.name!r}: unknown kind {s.kind!r}; accepted: {', '.join(KINDS)}")
        rows += KINDS[s.kind](s, run)
    return rows


class _Run:
    """What the kind functions read: the inputs, each extractor's outputs (extracted on first use) and the
    real audio's statistics."""

    def __init__(self, generated, reference, sample_rate, reference_sample_rate, image_embeddings, video_frames,
                 extractors, clip_seconds, clip_id_of, sample_ids, progress, pad, ref_stats, score_reference_cs):
        self.generated, self.reference, self.sample_rate = generated, reference, sample_rate
        self.reference_sample_rate, self.image_embeddings, self.video_frames = (reference_sample_rate,
                                                                                image_embeddings, video_frames)
        self.extractors, self.clip_seconds, self.clip_id_of = extractors, clip_seconds, clip_id_of
        self.sample_ids, self.progress, self.pad, self.ref_stats = sample_ids, progress, pad, ref_stats
        self.score_reference_cs = score_reference_cs
        # Protocol details some kinds read (evaluate_audio's keywords of the same names).
        self.kl_divergence, self.fd_offset = KL_FORMULAS["av-benchmark"], "if-singular"
        self.ib_audio, self.sync_frames = None, None
        self.kl_rows, self.bootstrap_resamples = KL_ROW_FORMULAS["av-benchmark"], 0
        self.keep_features = False
        self.ids: dict[str, list[str]] = {}
        self._outputs: dict[str, dict] = {}

    def extractor(self, s) -> object:
        return self.extractors[s.extractor]

    def output(self, s, ids: list[str] | None = None):
        """The extractor output `s.reads` of the samples `ids` (all extracted ones when None), in that order."""
        if s.extractor not in self._outputs:
            self._outputs[s.extractor] = _extract(self.extractor(s), self.generated, self.ids[s.extractor],
                                                  self.sample_rate, self.clip_seconds, self.progress, pad=self.pad)
        outputs = self._outputs[s.extractor]
        if s.reads not in outputs:
            raise ValueError(f"metric {s.name!r} reads {s.reads!r}, but the {s.extractor!r} extractor gives "
                             f"{sorted(outputs)}")
        value = outputs[s.reads]
        if ids is None or ids == self.ids[s.extractor]:
            return value
        at = {k: i for i, k in enumerate(self.ids[s.extractor])}
        if isinstance(value, list):
            return [value[at[k]] for k in ids]
        return value[[at[k] for k in ids]]

    def kept(self, row_ids: list[str], vectors, reference_stats: str | None = None) -> dict:
        """A set statistic's inputs as `evaluate_audio` returns them (`features`): float32, as they are stored."""
        return {"sample_id": list(row_ids), "clip_id": [self.clip_id_of(i) for i in row_ids],
                "vectors": np.asarray(vectors, dtype=np.float32), "reference_stats": reference_stats}

    def resamples(self, s) -> int:
        """How many resamples the interval of `s`'s rows takes, as the table's INTERVALS say for its kind (0: none)."""
        rule = INTERVALS.get(s.kind)
        if rule is None:
            return 0
        return self.bootstrap_resamples if rule == "set-on-request" else bootstrap.CLIP_RESAMPLES

    def row(self, s, value: float, n: int, name: str | None = None, samples=None, resample=None) -> dict:
        """A metric row with its interval. samples: (sample ids, their values) of a row that averages per-sample
        values; for a reference row the ids are clip ids. resample: (each item's clip id, statistic of (b, items)
        weights) of a row that is a statistic of the whole set. The table's INTERVALS say whether and how often
        to resample."""
        row = _row(name or s.name, value, self.extractor(s), self.clip_seconds, n)
        rule, count = INTERVALS.get(s.kind), self.resamples(s)
        if samples is not None:
            ids, values = list(samples[0]), np.asarray(samples[1], dtype=np.float64)
            clips = ids if name else [self.clip_id_of(i) for i in ids]  # a named (reference) row scores clips
            row["samples"] = {"sample_id": ids, "clip_id": clips, "value": values.tolist()}
            resample = (clips, bootstrap.weighted_mean(values)) if rule == "per-sample" else None
        if resample is not None and count > 0:
            row["ci_low"], row["ci_high"] = bootstrap.interval(resample[0], resample[1], count)
            row["ci_resamples"] = int(count)
        return row


def _frechet(s, run: _Run) -> list[dict]:
    out = run.output(s)
    ref = run.ref_stats(s.extractor)
    features = np.concatenate(out) if isinstance(out, list) else out
    mu, sigma = gaussian_stats(features)
    fd = frechet_distance_from_stats(mu, sigma, ref.mu, ref.sigma, offset=run.fd_offset)
    ids = run.ids[s.extractor]
    # One row per sample, or per frame (VGGish): each row belongs to its sample.
    row_ids = [i for i, f in zip(ids, out) for _ in range(len(f))] if isinstance(out, list) else list(ids)
    resample = None
    if run.resamples(s) > 0:  # built only when used: it maps every feature row through S_ref^(1/2)
        eps = DEFAULT_EPS if singular_offset(sigma, ref.sigma, run.fd_offset) else 0.0
        resample = ([run.clip_id_of(i) for i in row_ids],
                    bootstrap.FrechetResampler(features, ref.mu, ref.sigma, eps=eps))
    row = run.row(s, fd, len(run.sample_ids), resample=resample)
    if run.keep_features:
        row["features"] = run.kept(row_ids, features, getattr(ref, "source", None))
    return [row]


def _kl(s, run: _Run) -> list[dict]:
    logits = run.output(s)
    ref = run.ref_stats(s.extractor)
    idx, clips = _pairs(run.sample_ids, run.clip_id_of, set(ref.clip_ids), s.name)
    ref_logits = np.stack([ref.row("logits", c) for c in clips])
    per_pair = run.kl_rows(logits[idx], ref_logits)
    return [run.row(s, run.kl_divergence(logits[idx], ref_logits), len(idx),
                    samples=([run.sample_ids[i] for i in idx], per_pair))]


def _inception(s, run: _Run) -> list[dict]:
    logits = run.output(s)
    splits = inception_splits(len(logits))
    mean, std = inception_score(logits, splits=splits)
    log.info("%s: inception score %.4f +- %.4f over %d samples", s.name, mean, std, len(logits))
    clips = [run.clip_id_of(i) for i in run.ids[s.extractor]]
    row = run.row(s, mean, len(logits), resample=(clips, bootstrap.InceptionResampler(logits, splits)))
    if run.keep_features:
        row["features"] = run.kept(run.ids[s.extractor], logits)
    return [row]


def _clip_cosine(s, run: _Run) -> list[dict]:
    emb = run.output(s)
    images = run.image_embeddings
    idx, clips = _pairs(run.sample_ids, run.clip_id_of, images, s.name)
    scored_ids = [run.sample_ids[i] for i in idx]
    rows = [run.row(s, clip_score(emb[idx], [images[c] for c in clips]), len(idx),
                    samples=(scored_ids, clip_scores(emb[idx], [images[c] for c in clips])))]
    if s.reference_row and run.score_reference_cs and run.reference is not None:
        scored = sorted(c for c in run.reference if c in images)
        if len(run.reference) >= 2:  # cached with the other reference statistics
            ref = run.ref_stats(s.extractor)
            ref_emb = np.stack([ref.row("embeddings", c) for c in scored]) if scored else None
        else:  # one clip has no Gaussian fit to cache; embed it directly
            ref_emb = _extract(run.extractor(s), run.reference, scored, run.reference_sample_rate, run.clip_seconds,
                               run.progress, pad=run.pad)[s.reads] if scored else None
        if scored:
            rows.append(run.row(s, clip_score(ref_emb, [images[c] for c in scored]), len(scored),
                                name=s.reference_row[0],
                                samples=(scored, clip_scores(ref_emb, [images[c] for c in scored]))))
    return rows


def _video_cosine(s, run: _Run) -> list[dict]:
    """IB: each generated sample's audio embedding against the extractor's embedding of its clip's video.

    The audio is the whole generated file, not the protocol's clip (av-benchmark's `ImageBindAudioDataset`
    reads the file without its `audio_length` cut); `clip_seconds` only says how many frames were taken."""
    from v2a.metrics.extractors.imagebind import ib_score, ib_scores

    idx, clips = _pairs(run.sample_ids, run.clip_id_of, run.video_frames, s.name)
    extractor = run.extractor(s)
    audio_emb = []
    for start in range(0, len(idx), 64):  # a chunk of files in memory at a time
        raise_if_stopped()
        ids = [run.sample_ids[i] for i in idx[start:start + 64]]
        items = ([run.ib_audio[i] for i in ids] if run.ib_audio is not None
                 else [(run.generated[i], run.sample_rate) for i in ids])
        audio_emb.append(extractor.embed_channels(items))
    audio_emb = np.concatenate(audio_emb)
    video_of = {c: extractor.embed_frames([run.video_frames[c]])[0] for c in sorted(set(clips))}
    video_emb = np.stack([video_of[c] for c in clips])
    return [run.row(s, ib_score(video_emb, audio_emb), len(idx),
                    samples=([run.sample_ids[i] for i in idx], ib_scores(video_emb, audio_emb)))]


def _desync(s, run: _Run) -> list[dict]:
    """DeSync: Synchformer's offset between each generated sample and its clip's video, one clip's frames in
    memory at a time. A sample whose audio and video share fewer than the 14 segments of a window is left out;
    no row (with a warning) when none is long enough."""
    sync, frames_of = run.extractor(s), run.sync_frames
    idx, clips = _pairs(run.sample_ids, run.clip_id_of, frames_of, s.name)
    samples_of: dict[str, list[str]] = {}
    for i, cid in zip(idx, clips):
        samples_of.setdefault(cid, []).append(run.sample_ids[i])
    need = sync.model.window_segments
    min_frames = sync.cfg["segment_frames"] + sync.cfg["segment_step_frames"] * (need - 1)
    per_sample, scored, short = [], [], 0
    for cid in tqdm(sorted(samples_of), desc="DeSync", unit="clip", disable=not run.progress):
        raise_if_stopped()
        frames = frames_of[cid]
        if frames is None or len(frames) < min_frames:  # a video shorter than one window: no features needed
            short += len(samples_of[cid])
            continue
        video = sync.video_features([frames])[0]
        waves = [audio.prepare(run.generated[x], run.sample_rate, sync.sample_rate, run.clip_seconds, run.pad)
                 for x in samples_of[cid]]
        for sid, feats in zip(samples_of[cid], sync.embed(waves)):
            n = min(len(video), len(feats))  # a generation shorter than its video: the common start
            if n < need:
                short += 1
                continue
            per_sample.append(float(np.abs(sync.offsets([video[:n]], [feats[:n]])[0]).mean()))
            scored.append(sid)
    if short:
        log.warning("desync: %d sample(s) share fewer than %d segments (4.8 s) with their video and are left out",
                    short, need)
    if not per_sample:
        log.warning("DeSync not computed: no generated sample shares 4.8 s of audio and video with its clip")
        return []
    return [run.row(s, float(np.mean(per_sample)), len(per_sample), samples=(scored, per_sample))]


def _mean(s, run: _Run) -> list[dict]:
    values = np.asarray(run.output(s), dtype=np.float64)
    return [run.row(s, float(values.mean()), len(run.sample_ids), samples=(run.ids[s.extractor], values))]


# kind (v2a.metrics.specs.KINDS) -> (spec, run) -> rows.
KINDS: dict[str, Callable] = {"frechet": _frechet, "kl": _kl, "inception": _inception,
                              "clip_cosine": _clip_cosine, "video_cosine": _video_cosine, "desync": _desync,
                              "mean": _mean}
