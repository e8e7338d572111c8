"""Prefect task over v2a.stages.train."""

import math
import sys

from prefect import get_run_logger, task

from tasks.caching import stage_cache
from tasks.operations import RESULTS, RETRIES, jsonable, made_by, model_slot
from tasks.progress import reporter
from v2a.core import storage
from v2a.stages import train
from v2a.core.fingerprint import fingerprints
from v2a.config import TrainStageConfig
from v2a.core.checkpoints import CONFIG_NAME, WEIGHTS_NAME

# At most this many epoch lines in a run's log: every epoch up to it, every N-th (and the last) past it.
MAX_EPOCH_LINES = 100
_SHOWN = ("train_loss", "val_loss", "val_cosine", "val_r1", "val_r10")


def epoch_line(record: dict, epochs: int) -> str:
    """`epoch 12/60: train_loss 0.01234, val_cosine 0.4120 (0.8 s)`."""
    values = ", ".join(f"{k} {record[k]:.4g}" for k in _SHOWN if isinstance(record.get(k), (int, float)))
    return f"epoch {record['epoch']}/{epochs}: {values} ({record.get('train_seconds', 0):.1f} s)"


def epoch_reporter(epochs: int, unit=0):
    """on_epoch_end for the trainer: moves the flow's progress artifact and logs a line per epoch
    (every N-th of a long run)."""
    report, logger = reporter(unit), get_run_logger()
    every = max(1, math.ceil(epochs / MAX_EPOCH_LINES))

    def on_epoch_end(record: dict) -> None:
        line = epoch_line(record, epochs)
        report.set(epochs=record["epoch"], note=line)
        if record["epoch"] % every == 0 or record["epoch"] >= epochs or record.get("early_stop"):
            logger.info("train: %s", line)

    return on_epoch_end


# Retried from its last epoch checkpoint: a retry resumes, it does not start over.
@task(name="train-mapper", cache_policy=stage_cache(reads=("embeddings_uri", "clips_uri")), **RETRIES, **RESULTS)
def train_task(embeddings_uri: str, out_dir: str, config: TrainStageConfig, restart_incompatible: bool = False,
               clips_uri: str | None = None) -> dict:
    with model_slot(config.device):
        metrics = train.train_stage(embeddings_uri, out_dir, config, aggregator=config.aggregator,
                                    restart_incompatible=restart_incompatible, clips_uri=clips_uri,
                                    progress=sys.stderr.isatty(), on_epoch_end=epoch_reporter(config.epochs))
    return {**jsonable(metrics), "made_by": made_by(),
            "outputs": fingerprints([storage.join(out_dir, WEIGHTS_NAME), storage.join(out_dir, CONFIG_NAME)])}
