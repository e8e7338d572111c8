"""`v2a compare`: two runs' metrics, B - A, with a paired bootstrap interval over the clips both runs scored.

Pairing: each resample draws the shared clips once, and both runs' samples of a drawn clip enter with the
same count (`v2a.metrics.bootstrap.paired_difference_replicates`), so what a clip does to both runs (an
easy clip, a hard one) cancels out of the difference. This needs each run's per-sample values, which the
evaluation stores in OUT/scores for every row that averages them (KL, CS, IB, DeSync, a `mean` kind). Set
statistics (Fréchet distances, Inception Score) have no per-sample values: they are paired the same way from
the vectors they were computed from, which the evaluation keeps in OUT/features when asked
(`evaluate.keep_features`): each resample weights both runs' rows by their clip's one count and recomputes
both statistics (`v2a.metrics.bootstrap.paired_set_replicates`). Without those vectors the row says how to get
them, and shows each run's own interval when it has one.

Set statistics take their own resample count (`set_resamples`): a paired Fréchet resample recomputes two
distances, about 16 s at 15k clips x 2048-d on 2 cores (benchmarks/README.md). 200 is the count the evaluation
suggests for its own Fréchet intervals (each end of the interval within about a tenth of its half-width) and
so costs about 52 min for FD at that size; fewer give a rougher interval sooner.

The runs must have been scored the same way on the same clips; anything else is refused in one line
(`CompareRefused`), since a difference between two protocols says nothing about the runs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from tqdm import tqdm

from storage_schemas import scores as scores_schema
from v2a.core import storage
from v2a.io import parquet
from v2a.io.features import read_features
from v2a.io.layout import RunLayout
from v2a.io.results import interval_text, read_results
from v2a.metrics import bootstrap
from v2a.metrics.specs import SET_KINDS, SPECS, label, row_order
from v2a.tools.set_statistics import MissingReference, weighted_statistic

SET_RESAMPLES = bootstrap.SET_RESAMPLES
KEEP_HINT = ("re-evaluate both runs with evaluate.keep_features (v2a evaluate --keep-features) to pair it")


class CompareRefused(ValueError):
    """Two runs that cannot be compared (another protocol, channel rule or clip set, or no rows)."""


@dataclass
class MetricDifference:
    metric: str
    a: float
    b: float
    difference: float                  # b - a (over the shared clips when paired)
    low: float | None                  # the paired 95 % interval of the difference; None: no paired interval
    high: float | None
    shared_clips: int | None
    note: str                          # which run is better, or why there is no interval

    @property
    def resolved(self) -> bool:
        return self.low is not None and (self.low > 0 or self.high < 0)


@dataclass
class Comparison:
    run_a: str
    run_b: str
    protocol: str
    channel_rule: str
    n_clips: int
    rows: list[MetricDifference]
    resamples: int = bootstrap.CLIP_RESAMPLES
    set_resamples: int = SET_RESAMPLES


def _key_of(rows: pd.DataFrame) -> set[tuple[str, str]]:
    return set(zip(rows["protocol"].fillna("v2a-mapper"), rows["channel_rule"].fillna("mean")))


def _latest(rows: pd.DataFrame) -> pd.DataFrame:
    return rows.sort_values("created_at").drop_duplicates("metric", keep="last").set_index("metric")


def _choose_key(run_a: str, a: pd.DataFrame, run_b: str, b: pd.DataFrame, protocol: str | None) -> tuple[str, str]:
    keys_a, keys_b = _key_of(a), _key_of(b)
    if protocol is not None:
        keys_a = {k for k in keys_a if k[0] == protocol}
        keys_b = {k for k in keys_b if k[0] == protocol}
        for run, keys in ((run_a, keys_a), (run_b, keys_b)):
            if not keys:
                raise CompareRefused(f"run {run} has no results under protocol {protocol}")
    common = keys_a & keys_b
    if len(common) == 1:
        return common.pop()
    if not common:
        protos_a, protos_b = {k[0] for k in keys_a}, {k[0] for k in keys_b}
        what = "channel rules" if protos_a & protos_b else "protocols"
        raise CompareRefused(f"runs of different {what}: {run_a} was scored as {_keys_text(keys_a)} and {run_b} "
                             f"as {_keys_text(keys_b)}; score both the same way (v2a evaluate --protocol ... "
                             "--channel-rule ...)")
    raise CompareRefused(f"both runs have results under several protocols ({_keys_text(common)}); "
                         "choose one with --protocol")


def _keys_text(keys) -> str:
    return ", ".join(f"{p} ({c})" for p, c in sorted(keys))


def _scores(out: str, run_id: str, protocol: str, channel_rule: str) -> pd.DataFrame:
    uri = RunLayout(out).scores
    if not storage.exists(uri):
        return pd.DataFrame(columns=scores_schema.SCHEMA.names)
    table = parquet.read_table(uri, scores_schema.SCHEMA, "scores",
                               filters=[("run_id", "==", run_id), ("protocol", "==", protocol),
                                        ("channel_rule", "==", channel_rule)])
    return table.to_pandas()


def compare_runs(out: str, run_a: str, run_b: str, protocol: str | None = None,
                 resamples: int = bootstrap.CLIP_RESAMPLES, set_resamples: int = SET_RESAMPLES,
                 progress: bool = False) -> Comparison:
    """B - A for every metric both runs have under one protocol (CompareRefused when they cannot be compared).
    set_resamples: the resamples of the set statistics' paired intervals (0: none); progress: a bar for them."""
    if run_a == run_b:
        raise CompareRefused(f"compare needs two different runs, got {run_a} twice")
    results = read_results(out)
    runs = {}
    for run in (run_a, run_b):
        rows = results[results["run_id"] == run]
        if rows.empty:
            raise CompareRefused(f"run {run} has no results in {RunLayout(out).results}; evaluate it first "
                                 "(v2a evaluate)")
        runs[run] = rows
    key = _choose_key(run_a, runs[run_a], run_b, runs[run_b], protocol)
    latest = {}
    for run, rows in runs.items():
        rows = rows[(rows["protocol"].fillna("v2a-mapper") == key[0]) & (rows["channel_rule"].fillna("mean") == key[1])]
        latest[run] = _latest(rows[rows["metric"].isin(list(SPECS))])
    sets = {run: set(latest[run]["id_list_sha256"]) for run in latest}
    if sets[run_a] != sets[run_b] or len(sets[run_a]) != 1:
        counts = {run: ", ".join(str(int(n)) for n in sorted(set(latest[run]["n_clips"]))) for run in latest}
        raise CompareRefused(f"runs of different clip sets: {run_a} scored {counts[run_a]} clip(s) and {run_b} "
                             f"{counts[run_b]} (their clip id lists differ); compare runs generated for the same "
                             "clips and split")
    scores = {run: _scores(out, run, *key) for run in latest}
    names = [m for m in row_order() if m in SPECS and m in latest[run_a].index and m in latest[run_b].index]
    if not names:
        raise CompareRefused(f"{run_a} and {run_b} share no metric under {key[0]} ({key[1]})")
    rows = []
    for m in names:
        if SPECS[m].kind in SET_KINDS:
            kept = [read_features(RunLayout(out).features, (run, *key), m) for run in (run_a, run_b)]
            rows.append(_set_difference(out, m, key[0], latest[run_a].loc[m], latest[run_b].loc[m], kept,
                                        set_resamples, progress))
        else:
            rows.append(_difference(m, latest[run_a].loc[m], latest[run_b].loc[m], scores[run_a], scores[run_b],
                                    resamples))
    n_clips = int(latest[run_a]["n_clips"].max())
    return Comparison(run_a, run_b, key[0], key[1], n_clips, rows, resamples, set_resamples)


def _unpaired(metric: str, a: pd.Series, b: pd.Series, why: str) -> MetricDifference:
    va, vb = float(a["value"]), float(b["value"])
    own = f"{interval_text(a['ci_low'], a['ci_high'])} and {interval_text(b['ci_low'], b['ci_high'])}"
    return MetricDifference(metric, va, vb, vb - va, None, None, None,
                            f"no paired interval: {why}; the runs' own intervals: {own}")


def _difference(metric: str, a: pd.Series, b: pd.Series, scores_a: pd.DataFrame, scores_b: pd.DataFrame,
                resamples: int) -> MetricDifference:
    va, vb = float(a["value"]), float(b["value"])
    per_a, per_b = (s[s["metric"] == metric] for s in (scores_a, scores_b))
    if per_a.empty or per_b.empty:
        return _unpaired(metric, a, b, "per-sample values not stored (scored before v2a stored them; re-evaluate "
                                       "both runs)")
    pair_a = (list(per_a["clip_id"]), per_a["value"].to_numpy())
    pair_b = (list(per_b["clip_id"]), per_b["value"].to_numpy())
    reps, shared = bootstrap.paired_difference_replicates(pair_a, pair_b, resamples)
    low, high = bootstrap.percentile_interval(reps)
    diff = bootstrap.per_clip_mean_difference(pair_a, pair_b)
    row = MetricDifference(metric, va, vb, diff, low, high, len(shared), "")
    row.note = _verdict(metric, row)
    return row


def _set_difference(out: str, metric: str, protocol: str, a: pd.Series, b: pd.Series, kept: list, resamples: int,
                    progress: bool) -> MetricDifference:
    """A set statistic's paired difference, recomputed from both runs' kept features."""
    # Vectors of another clip set (a part an older scoring left) would pair the wrong rows: as good as none.
    usable = [k is not None and k.id_list_sha256 == row["id_list_sha256"] for k, row in zip(kept, (a, b))]
    if not all(usable):
        lacking = " and ".join(r for r, ok in zip(("A", "B"), usable) if not ok)
        return _unpaired(metric, a, b, f"a set statistic, and {lacking} kept no features of it; {KEEP_HINT}")
    if resamples < 1:
        return _unpaired(metric, a, b, "a set statistic, and --set-resamples is 0")
    try:
        stats = [weighted_statistic(out, metric, protocol, k) for k in kept]
    except MissingReference as err:
        return _unpaired(metric, a, b, f"a set statistic, and {err}; re-evaluate both runs")
    with tqdm(total=resamples, desc=f"compare {label(metric)}", unit="resample", disable=not progress,
              leave=False) as bar:
        reps, diff, shared = bootstrap.paired_set_replicates((kept[0].clip_ids, stats[0]), (kept[1].clip_ids, stats[1]),
                                                             resamples, progress=bar.update)
    low, high = bootstrap.percentile_interval(reps)
    row = MetricDifference(metric, float(a["value"]), float(b["value"]), diff, low, high, len(shared), "")
    row.note = _verdict(metric, row)
    return row


def _verdict(metric: str, row: MetricDifference) -> str:
    direction = "lower" if SPECS[metric].lower_is_better else "higher"
    if not row.resolved:
        return f"no difference resolved (the interval holds 0; {direction} is better)"
    b_better = (row.difference < 0) == SPECS[metric].lower_is_better
    return f"{'B' if b_better else 'A'} better ({direction} is better)"


def _num(v) -> str:
    return "-" if v is None or (isinstance(v, float) and np.isnan(v)) else f"{v:.4g}"


def format_comparison(c: Comparison) -> str:
    table = pd.DataFrame([{"metric": label(r.metric), "A": _num(r.a), "B": _num(r.b), "B - A": _num(r.difference),
                           "95% CI of B - A": interval_text(r.low, r.high),
                           "clips": "-" if r.shared_clips is None else str(r.shared_clips)} for r in c.rows])
    lines = table.to_string(index=False).splitlines()
    # The verdicts are sentences: left-aligned after the numbers, not right-aligned in a column.
    lines = [lines[0] + "  verdict"] + [f"{line}  {r.note}" for line, r in zip(lines[1:], c.rows)]
    head = (f"compare: A = {c.run_a}, B = {c.run_b}; protocol {c.protocol}, channel rule {c.channel_rule}, "
            f"{c.n_clips} clips. B - A with a paired 95 % percentile bootstrap interval over the shared clips "
            f"({c.resamples} resamples of clips, {c.set_resamples} for set statistics, seed {bootstrap.SEED}); "
            "a run is called better only where the interval excludes 0.")
    return "\n".join([head, *lines])
