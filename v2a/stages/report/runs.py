"""The run folder as the report reads it: generations, results, mapper checkpoint, clips and their sample."""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from v2a.core import storage
from v2a.io import clips as clips_io
from v2a.io import embeddings as embeddings_io
from v2a.io.layout import RunLayout
from v2a.io.mappers import find_mapper


@dataclass
class RunData:
    run_id: str
    generations: pd.DataFrame
    metrics: pd.DataFrame                  # the latest results row per metric (may be empty)
    mapper_dir: str | None = None
    mapper_config: dict | None = None
    mapper_exact: bool = True              # False: the folder now holds another checkpoint than the run used
    samples: dict = field(default_factory=dict)   # clip id -> [SampleAsset]
    av_benchmark: pd.DataFrame | None = None      # the latest row per metric under the av-benchmark protocol

    @property
    def first(self) -> pd.Series:
        return self.generations.iloc[0]

    @property
    def sample_rate(self) -> int:
        return int(self.first["sample_rate"])

    @property
    def clip_seconds(self) -> float:
        # CS is scored on clips fitted to the evaluation's length; use the same length as its rows.
        if not self.metrics.empty and "cs" in set(self.metrics["metric"]):
            value = self.metrics.set_index("metric").loc["cs", "clip_seconds"]
            if value is not None and not pd.isna(value):
                return float(value)
        return float(self.first["seconds"])

    def metric(self, name: str) -> float | None:
        if self.metrics.empty or name not in set(self.metrics["metric"]):
            return None
        return float(self.metrics.set_index("metric").loc[name, "value"])


@dataclass
class SampleAsset:
    sample: int
    wav: str             # relative to the report folder
    mel: str
    cs: float | None = None


@dataclass
class ClipAsset:
    clip_id: str
    label: str | None
    kind: str | None
    split: str | None
    uri: str | None
    poster: str | None = None
    poster_time: float | None = None
    reference_wav: str | None = None
    reference_mel: str | None = None
    reference_cs: float | None = None
    video: str | None = None             # the input video with the first run's sample 0 as soundtrack


def available_runs(runs_root: str) -> list[str]:
    fs, path = storage.filesystem(RunLayout(runs_root).generations_root)
    if not fs.exists(path):
        return []
    return sorted(posixpath.basename(p.rstrip("/")) for p in fs.ls(path, detail=False) if fs.isdir(p))


def latest_metrics(results: pd.DataFrame, protocol: str = "v2a-mapper") -> pd.DataFrame:
    """One row per metric of one protocol: a re-evaluated run keeps its older rows in the table; the newest
    one counts. Rows written before protocols were recorded are v2a-mapper's."""
    if results.empty:
        return results
    if "protocol" in results:
        results = results[results["protocol"].fillna("v2a-mapper") == protocol]
    return (results.sort_values("created_at").groupby("metric", as_index=False).tail(1)
            .sort_values("metric").reset_index(drop=True))


def load_run(runs_root: str, run_id: str) -> RunData:
    from v2a.io.generations import read_generations
    from v2a.io.results import read_results

    gen_dir = RunLayout(runs_root).generations(run_id).root
    gens = read_generations(gen_dir)
    if gens.empty:
        runs = available_runs(runs_root)
        raise FileNotFoundError(f"run {run_id!r} has no generations under {storage.join(runs_root, 'generations')}"
                                f"; runs there: {', '.join(runs) or 'none'}")
    gens = gens.sort_values(["clip_id", "sample"]).reset_index(drop=True)
    try:
        results = read_results(runs_root, run_id)
    except FileNotFoundError:
        results = pd.DataFrame()
    first = gens.iloc[0]
    mapper_dir = mapper_config = None
    exact = True
    if first["conditioning"] == "mapper":
        mapper_dir, mapper_config, exact = find_mapper(runs_root, first["mapper_checkpoint_id"], first["mapper_kind"])
    return RunData(run_id, gens, latest_metrics(results), mapper_dir, mapper_config, exact,
                   av_benchmark=latest_metrics(results, "av-benchmark"))


def read_clip_rows(runs_root: str, clip_ids=None) -> dict[str, dict]:
    """Rows of the clips table (only `clip_ids` when given: a run's clips, not the whole data set)."""
    uri = RunLayout(runs_root).clips
    if not storage.exists(uri):
        return {}
    return {r["clip_id"]: r for r in clips_io.read_clips(uri, ids=clip_ids).to_pylist()}


def read_frames(runs_root: str, clip_ids) -> dict[str, np.ndarray]:
    """Per-frame CLIP embeddings of the given clips only: the full table can be large."""
    uri = RunLayout(runs_root).embeddings
    if not embeddings_io.exists(uri):
        return {}
    block = embeddings_io.read_block(uri, ids=clip_ids, with_audio=False)
    return {cid: block.frames_of(i) for i, cid in enumerate(block.clip_ids)}


def stratified_sample(labels: dict[str, str | None], n: int, seed: int = 0) -> list[str]:
    """Up to n clip ids, spread over the labels as evenly as the counts allow.

    Labels take turns (in a seeded random order, so the first labels alphabetically are not always
    the ones heard when n is below the number of labels), each giving a seeded random clip of its
    own. Returned sorted by (label, clip id) so the page groups a label's clips together.
    """
    if n <= 0:
        raise ValueError(f"clips must be positive, got {n}")
    rng = np.random.default_rng(seed)
    groups: dict[str, list[str]] = {}
    for cid in sorted(labels):
        groups.setdefault(labels[cid] or "", []).append(cid)
    order = sorted(groups)
    order = [order[i] for i in rng.permutation(len(order))]
    pools = {g: [groups[g][i] for i in rng.permutation(len(groups[g]))] for g in order}
    chosen: list[str] = []
    while len(chosen) < n and any(pools.values()):
        for g in order:
            if pools[g] and len(chosen) < n:
                chosen.append(pools[g].pop(0))
    return sorted(chosen, key=lambda c: (labels[c] or "", c))
