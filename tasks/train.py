"""Prefect task over v2a.stages.train."""

import sys

from prefect import task

from tasks.caching import stage_cache
from tasks.operations import RESULTS, RETRIES, jsonable, model_slot
from v2a.core import storage
from v2a.stages import train
from v2a.core.fingerprint import fingerprints
from v2a.config import TrainStageConfig
from v2a.core.checkpoints import CONFIG_NAME, WEIGHTS_NAME


# Retried from its last epoch checkpoint: a retry resumes, it does not start over.
@task(name="train-mapper", cache_policy=stage_cache(reads=("embeddings_uri", "clips_uri")), **RETRIES, **RESULTS)
def train_task(embeddings_uri: str, out_dir: str, config: TrainStageConfig, restart_incompatible: bool = False,
               clips_uri: str | None = None) -> dict:
    with model_slot(config.device):
        metrics = train.train_stage(embeddings_uri, out_dir, config, aggregator=config.aggregator,
                                    restart_incompatible=restart_incompatible, clips_uri=clips_uri,
                                    progress=sys.stderr.isatty())
    return {**jsonable(metrics),
            "outputs": fingerprints([storage.join(out_dir, WEIGHTS_NAME), storage.join(out_dir, CONFIG_NAME)])}
