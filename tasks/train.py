"""Prefect task over v2a.train."""

from prefect import task

from v2a import train


@task(name="train-mapper", tags=["gpu"])
def train_task(embeddings_uri: str, out_dir: str, mapper: str, aggregator: str, options: dict) -> dict:
    return train.train_stage(embeddings_uri, out_dir, mapper=mapper, aggregator=aggregator, options=options)
