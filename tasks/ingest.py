"""Prefect task over v2a.stages.ingest."""

from prefect import task

from tasks.caching import stage_cache
from tasks.operations import RESULTS, RETRIES
from v2a.stages import ingest
from v2a.core.fingerprint import fingerprints


# The CSV and the image folder are what ingest reads; the video folder only prefixes the clips' URIs.
@task(name="ingest", cache_policy=stage_cache(reads=("csv", "images")), **RETRIES,
      **RESULTS)
def ingest_task(out_uri: str, csv: str | None, videos: str | None, images: str | None, dataset: str,
                errors_uri: str | None) -> dict:
    summary = ingest.ingest(out_uri, csv=csv, videos=videos, images=images, dataset=dataset, errors_uri=errors_uri)
    summary.pop("errors", None)
    return {**summary, "outputs": fingerprints([out_uri])}
