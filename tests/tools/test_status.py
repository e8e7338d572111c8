"""`v2a status`: what an output location holds, and why clips or rows became errors."""

import pandas as pd

from storage_schemas import errors as errors_schema
from v2a.stages import ingest
from v2a.tools import status
from v2a.io import parquet


def test_status_lists_error_reasons_with_counts_per_kind(tmp_path):
    csv = tmp_path / "v.csv"
    csv.write_text("a,0,dog,train\nb,inf,c,test\nc,nan,c,test\nd,0,c,holdout\nonly,two\n")
    ingest.ingest(str(tmp_path / "clips.parquet"), csv=str(csv), videos=str(tmp_path), errors_uri=str(tmp_path / "errors"))
    parquet.write_part(str(tmp_path / "errors"), [
        {"clip_id": f"x{i}", "stage": "embed", "uri": f"/v/x{i}.mp4", "reason": "file is empty (0 bytes)"}
        for i in range(3)], errors_schema.SCHEMA, "errors", "embed", "shard-0")
    found = status.out_status(str(tmp_path))["error_reasons"]
    counts = {(r["stage"], r["count"]): r["reason"] for r in found}
    assert counts[("embed", 3)] == "file is empty (0 bytes)"
    assert "start_seconds" in counts[("ingest", 2)]  # inf and nan: one kind, two rows
    assert {r["count"] for r in found if r["stage"] == "ingest"} == {2, 1}
    text = status.format_status(status.out_status(str(tmp_path)))
    assert "errors by reason" in text and "file is empty (0 bytes)" in text and "unknown split" in text


def test_reasons_are_capped_per_stage_most_frequent_first():
    errors = pd.DataFrame({"stage": ["embed"] * 6, "clip_id": list("abcdef"), "uri": list("abcdef"),
                           "reason": ["one", "two", "two", "three", "three", "three"]})
    assert [(r["reason"], r["count"]) for r in status.error_reasons(errors, limit=2)] == [("three", 3), ("two", 2)]


def test_an_unreadable_mapper_config_is_shown_not_fatal(tmp_path):
    (tmp_path / "mappers" / "m").mkdir(parents=True)
    (tmp_path / "mappers" / "m" / "config.json").write_text("[1, 2]")
    train = next(s for s in status.out_status(str(tmp_path))["stages"] if s["stage"] == "train")
    assert "unreadable config.json" in train["detail"]
