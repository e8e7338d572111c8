"""Prefect task over v2a.ingest."""

from prefect import task

from v2a import ingest


@task(name="ingest", retries=1)
def ingest_task(out_uri: str, csv: str | None, videos: str | None, images: str | None, dataset: str,
                errors_uri: str | None) -> dict:
    summary = ingest.ingest(out_uri, csv=csv, videos=videos, images=images, dataset=dataset, errors_uri=errors_uri)
    summary.pop("errors", None)
    return summary
