"""A generation set's plan, and how far the set got against it."""

import json

from v2a.io import generations as generations_io
from v2a.io.layout import GenerationLayout


def _rows(run_id, clips, samples=1):
    return [{"run_id": run_id, "clip_id": c, "sample": s, "uri": f"/nowhere/{c}__s{s}.wav", "seed": 0,
             "conditioning": "mapper", "mapper_checkpoint_id": None, "mapper_kind": "diff-mlp", "aggregator": "mean",
             "mapper_guidance": 0.9, "mapper_steps": 5, "generator_id": "tiny", "generator_guidance": 2.5,
             "generator_steps": 3, "scheduler": "ddim", "seconds": 1.0, "sample_rate": 16000, "gen_time_s": 0.1}
            for c in clips for s in range(samples)]


def test_a_set_counts_the_planned_clips_with_all_their_samples(tmp_path):
    gen = tmp_path / "generations" / "run-a"
    generations_io.write_plan(str(gen), ["c4", "c1", "c2", "c3"], samples=2)
    assert json.loads((gen / "plan.json").read_text()) == {"clip_ids": ["c1", "c2", "c3", "c4"], "samples": 2}
    assert generations_io.progress(str(gen)) == generations_io.Progress("run-a", 0, 4)  # nothing yet
    rows = _rows("run-a", ["c1", "c2"], samples=2) + _rows("run-a", ["c3"], samples=1)  # c3 lacks sample 1
    generations_io.merge_shard(GenerationLayout(str(gen)), generations_io.shard_key("run-a", ["c1", "c2", "c3"], 2),
                               rows)
    done = generations_io.progress(str(gen))
    assert (done.generated, done.planned, done.complete) == (2, 4, False)
    assert done.line() == "run-a: 2 of 4 clips generated; run generate again"
    generations_io.merge_shard(GenerationLayout(str(gen)), generations_io.shard_key("run-a", ["c3", "c4"], 2),
                               _rows("run-a", ["c3", "c4"], samples=2))
    assert generations_io.progress(str(gen)).complete


def test_a_set_without_a_plan_has_unknown_progress(tmp_path):
    assert generations_io.progress(str(tmp_path / "generations" / "old-run")) is None


def test_reevaluation_sets_aside_the_unfinished_sets(tmp_path):
    from v2a.stages.reevaluate import GenerationSet, unfinished

    sets = []
    for run, generated in (("done", ["a", "b"]), ("half", ["a"]), ("old", ["a"])):
        gen = tmp_path / "generations" / run
        if run != "old":
            generations_io.write_plan(str(gen), ["a", "b"], samples=1)
        generations_io.merge_shard(GenerationLayout(str(gen)), generations_io.shard_key(run, generated, 1),
                                   _rows(run, generated))
        sets.append(GenerationSet(str(tmp_path), run, str(gen)))
    ready, skipped = unfinished(sets)
    assert [s.run_id for s in ready] == ["done", "old"]  # a set from before plans counts as finished
    assert [p.line() for p in skipped] == ["half: 1 of 2 clips generated; run generate again"]


def test_an_unchanged_plan_is_not_rewritten(tmp_path):
    # The set's fingerprint keys the evaluation's task cache: an unchanged re-run must leave the file alone.
    gen = tmp_path / "generations" / "run-a"
    generations_io.write_plan(str(gen), ["a", "b"], samples=1)
    before = (gen / "plan.json").stat().st_mtime_ns
    generations_io.write_plan(str(gen), ["b", "a"], samples=1)
    assert (gen / "plan.json").stat().st_mtime_ns == before
    generations_io.write_plan(str(gen), ["a", "b", "c"], samples=1)
    assert json.loads((gen / "plan.json").read_text())["clip_ids"] == ["a", "b", "c"]
