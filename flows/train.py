"""Flow: embeddings → trained mapper checkpoint (config.json + model.safetensors)."""

from __future__ import annotations

from prefect import flow
from prefect.artifacts import create_table_artifact

from tasks.caching import call
from tasks.train import train_task


@flow(name="train", log_prints=True)
def train_flow(embeddings: str, out_dir: str, mapper: str = "diff-transformer", aggregator: str = "mean",
               options: dict | None = None, restart_incompatible: bool = False) -> dict:
    """restart_incompatible: epoch checkpoints in out_dir from another configuration are discarded
    (the pipeline owns its mapper folder) instead of stopping the run."""
    metrics = call(train_task, embeddings, out_dir, mapper, aggregator, options or {}, restart_incompatible)
    shown = {k: v for k, v in metrics.items() if isinstance(v, (int, float, str))}
    create_table_artifact(key="mapper-training", table=[{"field": k, "value": str(v)} for k, v in shown.items()],
                          description=f"Final metrics of mapper {mapper} in {out_dir}")
    print(f"train: {mapper} → {out_dir}")
    return metrics
