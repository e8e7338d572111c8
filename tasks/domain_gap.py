"""Prefect task over v2a.stages.domain_gap: the CLIP/CLAP gap pictures of an embeddings table."""

from __future__ import annotations

import dataclasses

from prefect import get_run_logger, task

from tasks.caching import stage_cache
from tasks.operations import RESULTS, jsonable, made_by
from v2a.stages import domain_gap
from v2a.core.fingerprint import fingerprints


# Cached on the shards' fingerprints (their file stats, not their bytes): an unchanged re-run draws nothing.
# The artifact showing the pictures is the flow's (flows/embed.py), so a cached re-run publishes it too.
@task(name="domain-gap-report", cache_policy=stage_cache(reads=("embeddings_uri",)),
      **RESULTS)
def domain_gap_report(embeddings_uri: str, reports_uri: str, aggregator: str = "mean",
                      method: str = "auto") -> dict | None:
    """Histogram + 2-D projection PNGs under reports_uri, and what they measured (`report`: a GapReport's fields).

    A table the report cannot be drawn from (no clip with sound, CLIP and CLAP of different widths)
    is logged, not raised: the embeddings themselves are fine.
    """
    try:
        report = domain_gap.domain_gap_report(embeddings_uri, reports_uri, aggregator=aggregator, method=method)
    except ValueError as err:
        get_run_logger().warning("domain-gap report skipped: %s", err)
        return None
    return {"images": report.images, "cosine_paired_mean": report.cosine_paired["mean"],
            "cosine_shuffled_mean": report.cosine_shuffled["mean"], "projection": report.projection,
            "report": jsonable(dataclasses.asdict(report)), "made_by": made_by(),
            "outputs": fingerprints(report.images.values())}
