"""Prefect task over v2a.train."""

from prefect import task

from tasks.caching import stage_cache
from v2a import storage, train
from v2a.fingerprint import fingerprints
from v2a.mapper.checkpoint import CONFIG_NAME, WEIGHTS_NAME


@task(name="train-mapper", tags=["gpu"], cache_policy=stage_cache(reads=("embeddings_uri", "clips_uri")), persist_result=True)
def train_task(embeddings_uri: str, out_dir: str, mapper: str, aggregator: str, options: dict,
               restart_incompatible: bool = False, clips_uri: str | None = None) -> dict:
    metrics = train.train_stage(embeddings_uri, out_dir, mapper=mapper, aggregator=aggregator, options=options,
                                restart_incompatible=restart_incompatible, clips_uri=clips_uri)
    return {**metrics,
            "outputs": fingerprints([storage.join(out_dir, WEIGHTS_NAME), storage.join(out_dir, CONFIG_NAME)])}
