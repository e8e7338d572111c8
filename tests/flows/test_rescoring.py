"""Scoring a run again, by whichever path, leaves one results row per (run, metric, protocol, channel rule).

The pipeline scores its run; then the README's `v2a evaluate --generations OUT/generations/RUN --out OUT`
scores it again (with the command's own dataset default, which differs from the pipeline's), and
`v2a reevaluate` re-scores rows an earlier release left under an older part name. Each re-score
replaces the part named by the key; none adds a second copy."""

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from storage_schemas import results as results_schema
from v2a import __version__

KEY = ["run_id", "metric", "protocol", "channel_rule"]


@pytest.fixture(scope="module")
def scored_run(synth_dir, tmp_path_factory, prefect_harness):
    from flows.pipeline import pipeline_flow

    out = tmp_path_factory.mktemp("rescored")
    config = {
        "out": str(out), "profile": "tiny",
        "data": {"csv": str(synth_dir / "vggsound.csv"), "videos": str(synth_dir / "videos"), "dataset": "synthetic"},
        "embed": {"num_frames": 3, "max_seconds": 2.0, "shard_size": 6},
        "train": {"mapper": "reg-mlp", "epochs": 1, "batch_size": 8},
        "generate": {"seconds": 1.0, "steps": 3, "batch_size": 4},
    }
    summary = pipeline_flow(config)
    return out, summary


def _results(out) -> pd.DataFrame:
    return pd.read_parquet(out / "results")


def _parts(out) -> list[str]:
    return sorted(p.name for p in (out / "results").glob("*.parquet"))


def _one_row_per_key(df: pd.DataFrame) -> None:
    counts = df.fillna({"protocol": "v2a-mapper", "channel_rule": "mean"}).groupby(KEY).size()
    assert (counts == 1).all(), counts[counts > 1]


def test_the_pipeline_then_v2a_evaluate_on_its_run_leaves_one_row_per_key(scored_run, capsys):
    from flows.cli import main

    out, summary = scored_run
    first, parts = _results(out), _parts(out)
    _one_row_per_key(first)
    assert len(parts) == 1 and set(first["dataset"]) == {"synthetic"}

    gen_dir = out / "generations" / summary["run_id"]
    assert main(["evaluate", "--generations", str(gen_dir), "--out", str(out), "--profile", "tiny"]) == 0
    again = _results(out)
    _one_row_per_key(again)
    # The same part, rewritten: its name comes from (run, protocol, channel rule), not from what the path passed.
    assert _parts(out) == parts and len(again) == len(first)
    assert sorted(again["metric"]) == sorted(first["metric"])
    assert (again["created_at"].min() > first["created_at"].max())  # replaced, not kept

    # Another channel rule is another key: its rows sit beside the first, once each.
    assert main(["evaluate", "--generations", str(gen_dir), "--out", str(out), "--profile", "tiny",
                 "--metrics", "fd", "--channel-rule", "av-benchmark"]) == 0
    both = _results(out)
    _one_row_per_key(both)
    assert len(_parts(out)) == 2
    rule = both[both["channel_rule"] == "av-benchmark"]
    assert set(rule["metric"]) == {"fd", "gen_time_s", "trainable_params_m"}

    # A re-score of some metrics of a key replaces those and keeps the key's others.
    assert main(["evaluate", "--generations", str(gen_dir), "--out", str(out), "--profile", "tiny",
                 "--metrics", "kl"]) == 0
    after = _results(out)
    _one_row_per_key(after)
    assert len(after) == len(both) and len(_parts(out)) == 2


def test_reevaluate_replaces_an_earlier_releases_rows_under_an_older_part_name(scored_run, capsys):
    from flows.cli import main

    out, summary = scored_run
    current = sorted((out / "results").glob("*.parquet"))
    default_part = next(p.name for p in current if set(pq.read_table(p).column("channel_rule").to_pylist()) == {"mean"})
    # What an earlier release left: the same rows, of an older version, in a part named the old way.
    table = pa.concat_tables([pq.read_table(p) for p in current])
    older = table.set_column(table.schema.get_field_index("v2a_version"), "v2a_version",
                             pa.array(["0.0.1"] * table.num_rows))
    for p in current:
        p.unlink()
    pq.write_table(older.cast(results_schema.SCHEMA), out / "results" / "part-0123456789abcdef.parquet")

    assert main(["reevaluate", "--out", str(out), "--profile", "tiny"]) == 0
    df = _results(out)
    _one_row_per_key(df)
    mine = df[df["run_id"] == summary["run_id"]]
    scored = mine[mine["channel_rule"].fillna("mean") == "mean"]
    assert set(scored["v2a_version"]) == {__version__}  # the default key's rows were re-scored and replaced
    # The older part keeps only what was not re-scored (the other channel rule's rows), under its old name.
    kept = pd.read_parquet(out / "results" / "part-0123456789abcdef.parquet")
    assert set(kept["channel_rule"]) == {"av-benchmark"} and set(kept["v2a_version"]) == {"0.0.1"}
    assert _parts(out) == sorted([default_part, "part-0123456789abcdef.parquet"])
