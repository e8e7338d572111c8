"""Reference-set statistics per extractor, computed once and reused from a directory.

For each extractor the Gaussian fit (mean, covariance) of the real audio's features is stored
as `<stem>.safetensors` (float64 `mu`, `sigma`, plus per-clip outputs the paired metrics need:
PANNs `logits` for KL, Wav2CLIP `embeddings` for the reference CLIP-Score) and `<stem>.json`
(the key and the clip order). VGGish contributes all frames of all clips to its fit and keeps no
per-clip output.

The cache key is (extractor model id, extractor sample rate, clip seconds, sha256 of the sorted
clip-id list). The audio itself is not hashed: the ids name the reference set, and a different
recording under the same ids needs a different `stats_dir`. Because the values of `reference`
are only read when the statistics must be computed, a lazy Mapping (loading on access) lets a
cached run skip reading the audio at all.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from dataclasses import dataclass, field
from typing import Mapping

import numpy as np
from safetensors.numpy import load as load_safetensors
from safetensors.numpy import save as save_safetensors
from tqdm import tqdm

from v2a.core import storage
from v2a.core.fingerprint import short_digest
from v2a.metrics import audio
from v2a.metrics.frechet import gaussian_stats

log = logging.getLogger(__name__)

FORMAT_VERSION = 1


def id_list_sha256(ids) -> str:
    """sha256 of the sorted ids joined by newlines: names a clip set independent of its order."""
    return hashlib.sha256("\n".join(sorted(str(i) for i in ids)).encode("utf-8")).hexdigest()


@dataclass
class ReferenceStats:
    mu: np.ndarray
    sigma: np.ndarray
    n_vectors: int                 # vectors in the Gaussian fit (clips, or frames for VGGish)
    clip_ids: list[str]            # sorted; the row order of every per-clip array
    key: dict
    computed: bool                 # False when read back from stats_dir
    per_clip: dict[str, np.ndarray] = field(default_factory=dict)
    source: str | None = None      # the stored tensors' location (None: not stored), what `load_fit` reads back

    def row(self, name: str, clip_id: str) -> np.ndarray:
        return self.per_clip[name][self._index[clip_id]]

    def __post_init__(self) -> None:
        self._index = {c: i for i, c in enumerate(self.clip_ids)}


def cache_key(extractor, clip_ids, clip_seconds: float | None, loading: str | None = None) -> dict:
    """`loading` names a non-default way the audio was read (channel rule, no padding); the default adds
    nothing, so statistics stored before protocols existed are still found."""
    key = {
        "extractor": extractor.model_id,
        "sample_rate": int(extractor.sample_rate),
        "clip_seconds": None if clip_seconds is None else float(clip_seconds),
        "ids_sha256": id_list_sha256(clip_ids),
        "format_version": FORMAT_VERSION,
    }
    if loading:
        key["loading"] = loading
    return key


def _stem(key: dict) -> str:
    digest = short_digest(key, 16)
    readable = re.sub(r"[^A-Za-z0-9._-]+", "_", key["extractor"].split("@")[0])
    return f"{readable}-{digest}"


def _features(extractor, waves: list[np.ndarray]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Vectors for the Gaussian fit and per-clip outputs, dispatched on what the extractor offers."""
    if hasattr(extractor, "embed_and_logits"):
        emb, logits = extractor.embed_and_logits(waves)
        return emb, {"logits": logits}
    out = extractor.embed(waves)
    if isinstance(out, list):  # frame-level (VGGish): every frame of every clip enters the fit
        return np.concatenate(out), {}
    return out, {"embeddings": out}


def compute_reference_features(reference: Mapping[str, np.ndarray], sample_rate: int, extractor,
                               clip_seconds: float | None = 10.0, progress: bool = True,
                               chunk: int = 64, pad: bool = True) -> tuple[list[str], np.ndarray, dict[str, np.ndarray]]:
    """(sorted ids, fit vectors, per-clip outputs) for the reference set, read in chunks of clips."""
    ids = sorted(reference)
    vectors, per_clip = [], {}
    bar = tqdm(total=len(ids), desc=f"reference {extractor.name}", unit="clip", disable=not progress)
    for start in range(0, len(ids), chunk):
        part = ids[start:start + chunk]
        waves = [audio.prepare(reference[i], sample_rate, extractor.sample_rate, clip_seconds, pad) for i in part]
        vec, extra = _features(extractor, waves)
        vectors.append(vec)
        for k, v in extra.items():
            per_clip.setdefault(k, []).append(v)
        bar.update(len(part))
    bar.close()
    return ids, np.concatenate(vectors), {k: np.concatenate(v) for k, v in per_clip.items()}


def reference_stats(reference: Mapping[str, np.ndarray], sample_rate: int, extractor,
                    clip_seconds: float | None = 10.0, stats_dir: str | os.PathLike | None = None,
                    progress: bool = True, pad: bool = True, loading: str | None = None) -> ReferenceStats:
    """Gaussian fit of `extractor`'s features over the reference clips, loaded from `stats_dir` when present.

    `reference` maps clip id -> waveform at `sample_rate`. `stats_dir` is a path or URI (anything
    `v2a.core.storage` opens); with `stats_dir=None` nothing is stored.
    The returned `computed` flag (also logged) says whether the features were extracted now.
    """
    if len(reference) < 2:
        raise ValueError(f"reference statistics need at least 2 clips, got {len(reference)}")
    key = cache_key(extractor, reference.keys(), clip_seconds, loading)
    paths = None
    if stats_dir is not None:
        stem = _stem(key)
        paths = (storage.join(str(stats_dir), f"{stem}.safetensors"), storage.join(str(stats_dir), f"{stem}.json"))
        loaded = _load(paths, key)
        if loaded is not None:
            loaded.source = paths[0]
            log.info("reference stats for %s loaded from %s (%d vectors)", extractor.model_id, paths[0],
                     loaded.n_vectors)
            return loaded

    ids, vectors, per_clip = compute_reference_features(reference, sample_rate, extractor, clip_seconds, progress,
                                                        pad=pad)
    mu, sigma = gaussian_stats(vectors)
    stats = ReferenceStats(mu, sigma, int(vectors.shape[0]), ids, key, True, per_clip)
    if paths is not None:
        _save(paths, stats, sample_rate)
        stats.source = paths[0]
        log.info("reference stats for %s computed and stored in %s", extractor.model_id, paths[0])
    else:
        log.info("reference stats for %s computed (not stored: no stats_dir)", extractor.model_id)
    return stats


def _load(paths: tuple[str, str], key: dict) -> ReferenceStats | None:
    tensors_uri, meta_uri = paths
    if not (storage.exists(tensors_uri) and storage.exists(meta_uri)):
        return None
    fs, path = storage.filesystem(meta_uri)
    with fs.open(path, "r") as handle:
        meta = json.load(handle)
    if meta.get("key") != key:
        log.warning("ignoring %s: its key does not match this request", meta_uri)
        return None
    fs, path = storage.filesystem(tensors_uri)
    with fs.open(path, "rb") as handle:
        arrays = load_safetensors(handle.read())
    per_clip = {k[len("clip/"):]: v for k, v in arrays.items() if k.startswith("clip/")}
    return ReferenceStats(arrays["mu"], arrays["sigma"], int(meta["n_vectors"]), list(meta["clip_ids"]), key,
                          False, per_clip)


def _save(paths: tuple[str, str], stats: ReferenceStats, input_sample_rate: int) -> None:
    tensors_uri, meta_uri = paths
    arrays = {"mu": np.ascontiguousarray(stats.mu), "sigma": np.ascontiguousarray(stats.sigma)}
    arrays.update({f"clip/{k}": np.ascontiguousarray(v) for k, v in stats.per_clip.items()})
    meta = {"key": stats.key, "n_vectors": stats.n_vectors, "n_clips": len(stats.clip_ids),
            "input_sample_rate": int(input_sample_rate), "clip_ids": stats.clip_ids}
    # Tensors first, metadata last, each written atomically: whoever finds the JSON finds the tensors.
    with storage.atomic_write(tensors_uri) as handle:
        handle.write(save_safetensors(arrays))
    with storage.atomic_write(meta_uri) as handle:
        handle.write(json.dumps(meta, indent=1).encode("utf-8"))


def load_fit(tensors_uri: str) -> tuple[np.ndarray, np.ndarray]:
    """(mu, sigma) of stored reference statistics, as float64 as they were computed: a Fréchet distance
    recomputed against them (`v2a compare`) repeats the stored one."""
    fs, path = storage.filesystem(tensors_uri)
    with fs.open(path, "rb") as handle:
        arrays = load_safetensors(handle.read())
    return arrays["mu"], arrays["sigma"]


def stored_per_clip(stats_dir: str, extractor, clip_ids, name: str = "embeddings",
                    clip_seconds: float | None = None) -> dict[str, np.ndarray]:
    """Per-clip outputs (`name`) of `extractor` for the given clips, from any reference set stored in
    `stats_dir` that holds them (same extractor weights and rate; same clip length when given), so a
    reader of a run (the listening report) needs neither the real audio nor the extractor. Clips no
    stored set holds are left out."""
    wanted, found = set(map(str, clip_ids)), {}
    for meta_uri in storage.list_files(str(stats_dir), ".json"):
        if not wanted - set(found):
            break
        fs, path = storage.filesystem(meta_uri)
        with fs.open(path, "r") as handle:
            meta = json.load(handle)
        key = meta.get("key") or {}
        if key.get("extractor") != extractor.model_id or key.get("sample_rate") != int(extractor.sample_rate):
            continue
        if clip_seconds is not None and key.get("clip_seconds") not in (None, float(clip_seconds)):
            continue
        index = {c: i for i, c in enumerate(meta["clip_ids"]) if c in wanted and c not in found}
        if not index:
            continue
        loaded = _load((meta_uri[:-len(".json")] + ".safetensors", meta_uri), key)
        if loaded is None or name not in loaded.per_clip:
            continue
        for c, i in index.items():
            found[c] = loaded.per_clip[name][i]
    return found
