"""Prefect task over v2a.stages.report."""

from __future__ import annotations

from prefect import task

from tasks.caching import stage_cache
from tasks.operations import RESULTS, RETRIES, made_by
from v2a.stages import report
from v2a.core.fingerprint import fingerprints
from v2a.runtime.model_cache import get_model


# Cached like the stage tasks: an unchanged pipeline re-run neither loads Wav2CLIP nor rebuilds the page.
@task(name="listening-report", **RESULTS, **RETRIES, cache_policy=stage_cache(
    reads=("runs_root/clips.parquet", "runs_root/embeddings", "runs_root/mappers", "runs_root/generations",
           "runs_root/results"), profile="profile"))
def report_task(runs_root: str, run_ids: list[str], out: str | None, profile: str | None, clips: int, seed: int,
                device: str) -> dict:
    # Without a profile there is no Wav2CLIP to score clips with; the page then leaves CS blank.
    extractor = get_model(profile, "extractor:wav2clip", device) if profile else None
    summary = report.build_report(runs_root, run_ids, out=out, clips=clips, seed=seed, cs_extractor=extractor,
                                  progress=False)
    return {**summary, "made_by": made_by(), "outputs": fingerprints([summary["index"]])}
