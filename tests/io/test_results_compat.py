"""A results file written before the provenance columns existed still reads, with those columns null."""

import datetime as dt

import pyarrow as pa
import pyarrow.parquet as pq

from storage_schemas import results as results_schema
from v2a.io import parquet


def test_an_older_results_file_reads_with_the_added_columns_null(tmp_path):
    older = pa.schema([f for f in results_schema.SCHEMA if f.name not in results_schema.ADDED])
    row = {f.name: None for f in older}
    row.update(run_id="r", created_at=dt.datetime.now(dt.timezone.utc), dataset="d", split="test", n_clips=3,
               metric="fd", value=1.5, id_list_sha256="x", v2a_version="0.0.1")
    (tmp_path / "results").mkdir()
    pq.write_table(pa.Table.from_pylist([row], schema=older), tmp_path / "results" / "part-old.parquet")

    table = parquet.read_table(str(tmp_path / "results"), results_schema.SCHEMA, "results")
    assert table.schema.names == results_schema.SCHEMA.names
    got = table.to_pylist()[0]
    assert got["value"] == 1.5 and all(got[c] is None for c in results_schema.ADDED)
    picked = parquet.read_table(str(tmp_path / "results"), results_schema.SCHEMA, "results",
                                columns=["run_id", "git_commit"])
    assert picked.to_pylist() == [{"run_id": "r", "git_commit": None}]


def test_a_results_file_written_before_the_interval_columns_reads_with_them_null(tmp_path):
    # The files of every release before issue 27: all of today's columns but ci_low, ci_high and ci_resamples.
    interval = ("ci_low", "ci_high", "ci_resamples")
    older = pa.schema([f for f in results_schema.SCHEMA if f.name not in interval])
    row = {f.name: None for f in older}
    row.update(run_id="r", created_at=dt.datetime.now(dt.timezone.utc), dataset="d", split="test", n_clips=3,
               metric="kl", value=0.25, id_list_sha256="x", v2a_version="0.1.0", protocol="v2a-mapper")
    (tmp_path / "results").mkdir()
    pq.write_table(pa.Table.from_pylist([row], schema=older), tmp_path / "results" / "part-old.parquet")

    got = parquet.read_table(str(tmp_path / "results"), results_schema.SCHEMA, "results").to_pylist()[0]
    assert got["value"] == 0.25 and got["protocol"] == "v2a-mapper" and all(got[c] is None for c in interval)
    from v2a.io.results import format_results

    text = format_results(str(tmp_path))
    assert "95% CI" in text and "0.25" in text  # printed, with '-' for the interval it never had
