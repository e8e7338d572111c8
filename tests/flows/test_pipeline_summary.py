"""The pipeline's closing summary is made of what its stage flows returned (issue 26), not re-read from the tables."""

from __future__ import annotations

from flows.pipeline import summary_markdown
from v2a.config import config_from_dict

STAGES = {  # each stage flow's return value, in the shape it returns it
    "ingest": {"n_clips": 12, "n_errors": 1, "by_split": {"train": 9, "test": 3}, "cached": False},
    "embed": {"shards": 2, "skipped": 1, "rows": 5, "errors": 0, "errors_total": 2, "rows_total": 11,
              "domain_gap": None},
    "train": {"epochs_completed": 3, "out_dir": "m"},
    "generate": {"gen_dir": "/nowhere/out/generations/run-1", "generated": 2, "skipped": 1},
    "evaluate": [{"metric": "fd", "value": 12.5, "extractor": "panns@x", "n_clips": 3},
                 {"metric": "gen_time_s", "value": 0.25, "extractor": None, "n_clips": 3}],
    "report": {"index": "/nowhere/out/listening/run-1/index.html", "clips": ["a", "b"], "runs": ["run-1"]},
}


def test_the_summary_says_what_each_stage_returned(tmp_path):
    cfg = config_from_dict({"out": str(tmp_path / "out"), "data": {"csv": "a.csv", "videos": "v"}, "profile": "tiny"})
    # Nothing exists under out: every number below can only come from the stage summaries.
    text = summary_markdown(cfg, "run-1", STAGES)

    assert "| ingest | yes | 12 | 1 |" in text
    assert "| embed | yes | 11 | 2 |" in text and "5 new rows; 1 of 2 shards already done" in text
    assert "| train | yes | 1 | - |" in text and "3 epochs" in text
    assert "| generate | yes | 3 | - |" in text and "2 files written, 1 already there" in text
    assert "| evaluate | yes | 2 | - |" in text
    assert "| report | yes | 2 | - |" in text
    assert "| fd | 12.5000 | panns@x | 3 |" in text and "| gen_time_s | 0.2500 | - | 3 |" in text
    assert "listening report: `/nowhere/out/listening/run-1/index.html`" in text


def test_a_run_without_a_mapper_says_train_did_not_run(tmp_path):
    cfg = config_from_dict({"out": str(tmp_path / "out"), "data": {"csv": "a.csv", "videos": "v"},
                            "generate": {"conditioning": "no-mapper"}})
    text = summary_markdown(cfg, "run-1", {**STAGES, "train": None})
    assert "| train | no | - | - | not run (no mapper) |" in text and "mapper checkpoint" not in text
