"""Prefect task over v2a.stages.domain_gap: the CLIP/CLAP gap pictures of an embeddings table, as an artifact."""

from __future__ import annotations

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact

from tasks.caching import stage_cache
from tasks.operations import RESULTS, artifact_key
from v2a.stages import domain_gap
from v2a.core.fingerprint import fingerprints


# Cached on the shards' fingerprints (their file stats, not their bytes): an unchanged re-run draws nothing.
@task(name="domain-gap-report", cache_policy=stage_cache(reads=("embeddings_uri",)),
      **RESULTS)
def domain_gap_report(embeddings_uri: str, reports_uri: str, aggregator: str = "mean",
                      method: str = "auto") -> dict | None:
    """Histogram + 2-D projection PNGs under reports_uri, linked from a markdown artifact.

    A table the report cannot be drawn from (no clip with sound, CLIP and CLAP of different widths)
    is logged, not raised: the embeddings themselves are fine.
    """
    try:
        report = domain_gap.domain_gap_report(embeddings_uri, reports_uri, aggregator=aggregator, method=method)
    except ValueError as err:
        get_run_logger().warning("domain-gap report skipped: %s", err)
        return None
    create_markdown_artifact(report.markdown(), key=artifact_key("domain-gap", _run_of(reports_uri)),
                             description="Cosine similarity of paired CLIP/CLAP embeddings and a 2-D projection "
                                         "of both (V2A-Mapper Fig. 3)")
    return {"images": report.images, "cosine_paired_mean": report.cosine_paired["mean"],
            "cosine_shuffled_mean": report.cosine_shuffled["mean"], "projection": report.projection,
            "outputs": fingerprints(report.images.values())}


def _run_of(reports_uri: str) -> str:
    # OUT/reports: the run is OUT's last part.
    return str(reports_uri).rstrip("/").rsplit("/", 2)[-2]
