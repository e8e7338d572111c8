"""A profile is part of the cache key of every task that builds its models: editing the file re-runs them."""

import shutil

import yaml

from v2a.stages import ingest


def test_editing_a_profile_file_reruns_the_tasks_that_use_it(synth_dir, tmp_path, prefect_harness):
    from prefect import flow

    from tasks.stage import plan_task
    from v2a.config import EmbedConfig
    from v2a.stages.shape import StageRun
    from v2a.models.profile import PROFILE_DIR

    profile = tmp_path / "mine.yaml"
    shutil.copy(PROFILE_DIR / "tiny.yaml", profile)
    clips = str(tmp_path / "clips.parquet")
    ingest.ingest(clips, csv=str(synth_dir / "vggsound.csv"), videos=str(synth_dir / "videos"))
    run = {"out": str(tmp_path), "profile": str(profile), "device": "cpu", "args": {}}

    @flow(name="plan-with-a-profile-file")
    def plan() -> str:
        return plan_task("embed", EmbedConfig(shard_size=4, num_frames=2, max_seconds=2.0), run,
                         return_state=True).name

    assert plan() == "Completed"
    assert plan() == "Cached"
    values = yaml.safe_load(profile.read_text())
    values["clip"]["seed"] = values["clip"].get("seed", 0) + 1  # other weights under the same name
    profile.write_text(yaml.safe_dump(values))
    assert plan() == "Completed"
