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
from v2a.metrics import audio
from v2a.metrics.classification import inception_score, kl_divergence
from v2a.metrics.frechet import frechet_distance_from_stats, gaussian_stats
from v2a.metrics.reference_stats import reference_stats

log = logging.getLogger(__name__)

from v2a.metrics.specs import METRICS, SPECS  # noqa: E402  (the one metric table)
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
            "clip_seconds": None if clip_seconds is None else float(clip_seconds), "n_clips": int(n_clips)}


def _extract(extractor, waves: Mapping[str, np.ndarray], ids: list[str], sample_rate: int, clip_seconds,
             progress: bool, chunk: int = 64, pad: bool = True):
    """Run `extractor` over `ids` in chunks so only one chunk of resampled audio is in memory."""
    parts = []
    bar = tqdm(total=len(ids), desc=f"generated {extractor.name}", unit="clip", disable=not progress)
    for start in range(0, len(ids), chunk):
        raise_if_stopped()
        batch = [audio.prepare(waves[i], sample_rate, extractor.sample_rate, clip_seconds, pad)
                 for i in ids[start:start + chunk]]
        if hasattr(extractor, "embed_and_logits"):
            parts.append(extractor.embed_and_logits(batch))
        else:
            parts.append(extractor.embed(batch))
        bar.update(len(batch))
    bar.close()
    if parts and isinstance(parts[0], tuple):
        return tuple(np.concatenate(p) for p in zip(*parts))
    if parts and isinstance(parts[0], list):
        return [x for p in parts for x in p]
    return np.concatenate(parts)


def clip_score(audio_embeddings: np.ndarray, image_embeddings: list[np.ndarray]) -> float:
    """100 x mean over items of (mean over an item's frames of cosine(frame, audio embedding))."""
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
    return 100.0 * float(np.mean(scores))


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


def _wanted(metrics, reference, image_embeddings, extractors, video_frames=None) -> list[str]:
    if metrics is None:
        chosen = [m for m in METRICS if SPECS[m].extractor in extractors
                  and (reference is not None or not SPECS[m].needs_reference)
                  and (image_embeddings is not None or not SPECS[m].needs_frames)
                  and (video_frames is not None or not SPECS[m].needs_video)]
        if not chosen:
            raise ValueError("nothing to compute: give extractors and reference audio or image embeddings")
        return chosen
    chosen = []
    for m in metrics:
        if m not in SPECS:
            raise ValueError(f"unknown metric {m!r}; accepted: {', '.join(METRICS)}")
        ext, needs_ref = SPECS[m].extractor, SPECS[m].needs_reference
        if ext not in extractors:
            raise ValueError(f"metric {m!r} needs the {ext!r} extractor; extractors given: {sorted(extractors)}")
        if needs_ref and reference is None:
            raise ValueError(f"metric {m!r} needs reference audio")
        if SPECS[m].needs_frames and image_embeddings is None:
            raise ValueError(f"metric {m!r} needs image_embeddings")
        if SPECS[m].needs_video and video_frames is None:
            raise ValueError(f"metric {m!r} needs the clips' video frames (video_frames)")
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
                   pad: bool = True, loading: str | None = None) -> list[dict]:
    """Metric rows {metric, value, extractor, sample_rate, clip_seconds, n_clips} for the generated audio.

    generated / reference: id -> mono waveform at `sample_rate` (see the module docstring for keys);
    `reference_sample_rate` gives the reference's rate when it differs.
    image_embeddings: clip id -> (F, D) CLIP image embeddings, one row per video frame (or (D,)
    / (1, D) for an image). extractors: {"panns", "vggish", "wav2clip"} -> built extractors.
    metrics: subset of ("fd", "fad", "cs", "kl", "is"); None = every one the inputs allow.
    stats_dir: where reference statistics are cached (see `reference_stats`).
    video_frames: clip id -> (T, H, W, 3) uint8 frames at ImageBind's 0.5 fps, for IB.
    pad: zero-pad clips shorter than clip_seconds (False: cut only, as av-benchmark); loading: a name for a
    non-default way the audio was read (channel rule, no padding), part of the reference-statistics key.
    Rows come in the order fd, fad, cs, cs_reference, kl, is (those computed). `extractor` is the
    extractor's model id (weights included); `sample_rate` is the rate it ran at.
    """
    if not generated:
        raise ValueError("no generated audio to evaluate")
    if reference is not None and len(reference) == 0:
        reference = None
    chosen = _wanted(metrics, reference, image_embeddings, extractors, video_frames)
    sample_ids = sorted(generated)
    rows: list[dict] = []

    ref_cache = {}

    def ref_stats(name: str):
        if name not in ref_cache:
            ref_cache[name] = reference_stats(reference, reference_sample_rate or sample_rate, extractors[name],
                                              clip_seconds, stats_dir, progress, pad=pad, loading=loading)
        return ref_cache[name]

    panns_out = None
    if {"fd", "kl", "is"} & set(chosen):
        panns_out = _extract(extractors["panns"], generated, sample_ids, sample_rate, clip_seconds, progress, pad=pad)

    if "fd" in chosen:
        panns = extractors["panns"]
        ref = ref_stats("panns")
        mu, sigma = gaussian_stats(panns_out[0])
        rows.append(_row("fd", frechet_distance_from_stats(mu, sigma, ref.mu, ref.sigma), panns, clip_seconds,
                         len(sample_ids)))

    if "fad" in chosen:
        vgg = extractors["vggish"]
        frames = _extract(vgg, generated, sample_ids, sample_rate, clip_seconds, progress, pad=pad)
        ref = ref_stats("vggish")
        mu, sigma = gaussian_stats(np.concatenate(frames))
        rows.append(_row("fad", frechet_distance_from_stats(mu, sigma, ref.mu, ref.sigma), vgg, clip_seconds,
                         len(sample_ids)))

    if "cs" in chosen:
        w2c = extractors["wav2clip"]
        emb = _extract(w2c, generated, sample_ids, sample_rate, clip_seconds, progress, pad=pad)
        idx, clips = _pairs(sample_ids, clip_id_of, image_embeddings, "cs")
        rows.append(_row("cs", clip_score(emb[idx], [image_embeddings[c] for c in clips]), w2c, clip_seconds,
                         len(idx)))
        if score_reference_cs and reference is not None:
            scored = sorted(c for c in reference if c in image_embeddings)
            if len(reference) >= 2:  # cached with the other reference statistics
                ref = ref_stats("wav2clip")
                ref_emb = np.stack([ref.row("embeddings", c) for c in scored]) if scored else None
            else:  # one clip has no Gaussian fit to cache; embed it directly
                ref_emb = _extract(w2c, reference, scored, reference_sample_rate or sample_rate, clip_seconds,
                                   progress, pad=pad) if scored else None
            if scored:
                rows.append(_row("cs_reference", clip_score(ref_emb, [image_embeddings[c] for c in scored]), w2c,
                                 clip_seconds, len(scored)))

    if "kl" in chosen:
        panns = extractors["panns"]
        ref = ref_stats("panns")
        idx, clips = _pairs(sample_ids, clip_id_of, set(ref.clip_ids), "kl")
        ref_logits = np.stack([ref.row("logits", c) for c in clips])
        rows.append(_row("kl", kl_divergence(panns_out[1][idx], ref_logits), panns, clip_seconds, len(idx)))

    if "is" in chosen:
        panns = extractors["panns"]
        logits = panns_out[1]
        # torch-fidelity's 10 splits need at least 10 samples; with fewer, one split over all of them
        # (one split per sample would make every score exactly 1).
        mean, std = inception_score(logits, splits=10 if len(logits) >= 10 else 1)
        log.info("inception score %.4f +- %.4f over %d samples", mean, std, len(logits))
        rows.append(_row("is", mean, panns, clip_seconds, len(logits)))

    rows += _passt_rows(chosen, generated, sample_ids, sample_rate, extractors, clip_seconds, progress, pad,
                        ref_stats, clip_id_of)
    if "ib" in chosen:
        rows.append(_ib_row(generated, sample_ids, sample_rate, extractors["imagebind"], video_frames, clip_seconds,
                            progress, pad, clip_id_of))
    return rows


def _passt_rows(chosen, generated, sample_ids, sample_rate, extractors, clip_seconds, progress, pad, ref_stats,
                clip_id_of) -> list[dict]:
    """FD / KL / IS on PaSST, as av-benchmark computes FD-PASST, KL-PASST-softmax and ISC-PASST."""
    wanted = [m for m in ("fd_passt", "kl_passt", "is_passt") if m in chosen]
    if not wanted:
        return []
    passt = extractors["passt"]
    feats, logits = _extract(passt, generated, sample_ids, sample_rate, clip_seconds, progress, pad=pad)
    rows = []
    if "fd_passt" in wanted:
        ref = ref_stats("passt")
        mu, sigma = gaussian_stats(feats)
        rows.append(_row("fd_passt", frechet_distance_from_stats(mu, sigma, ref.mu, ref.sigma), passt, clip_seconds,
                         len(sample_ids)))
    if "kl_passt" in wanted:
        ref = ref_stats("passt")
        idx, clips = _pairs(sample_ids, clip_id_of, set(ref.clip_ids), "kl_passt")
        ref_logits = np.stack([ref.row("logits", c) for c in clips])
        rows.append(_row("kl_passt", kl_divergence(logits[idx], ref_logits), passt, clip_seconds, len(idx)))
    if "is_passt" in wanted:
        mean, _ = inception_score(logits, splits=10 if len(logits) >= 10 else 1)
        rows.append(_row("is_passt", mean, passt, clip_seconds, len(logits)))
    return rows


def _ib_row(generated, sample_ids, sample_rate, imagebind, video_frames, clip_seconds, progress, pad,
            clip_id_of) -> dict:
    """IB: each generated sample's ImageBind audio embedding against its clip's ImageBind video embedding."""
    from v2a.metrics.extractors.imagebind import ib_score

    idx, clips = _pairs(sample_ids, clip_id_of, video_frames, "ib")
    audio_emb = _extract(imagebind, generated, [sample_ids[i] for i in idx], sample_rate, clip_seconds, progress,
                         pad=pad)
    video_of = {c: imagebind.embed_frames([video_frames[c]])[0] for c in sorted(set(clips))}
    return _row("ib", ib_score(np.stack([video_of[c] for c in clips]), audio_emb), imagebind, clip_seconds, len(idx))
