"""Flow: embeddings → trained mapper checkpoint (config.json + model.safetensors)."""

from __future__ import annotations

import base64

from prefect import flow

from prefect.artifacts import create_markdown_artifact, create_table_artifact

from flows.naming import artifact_key, location_run_id, stage_run_name
from flows.runners import bounded_thread_runner
from tasks.caching import call
from tasks.train import train_task
from v2a.core import storage
from v2a.config import TrainStageConfig
from v2a.mapper.trainer import CURVE_NAME

# The curve is inlined as a data URI so the Prefect UI shows it without a file server; a PNG past this
# size (none the trainer draws) is linked by path only, to keep artifacts out of the database's way.
MAX_INLINE_BYTES = 512 * 1024


@flow(name="train", log_prints=True, task_runner=bounded_thread_runner(), flow_run_name=stage_run_name("train"))
def train_flow(embeddings: str, out_dir: str, train: TrainStageConfig = TrainStageConfig(),
               restart_incompatible: bool = False, clips: str | None = None) -> dict:
    """restart_incompatible: epoch checkpoints in out_dir from another configuration are discarded
    (the pipeline owns its mapper folder) instead of stopping the run. clips: the clips table the
    splits are read from (default: the one beside the embeddings folder)."""
    mapper = train.mapper
    metrics = call(train_task, embeddings, out_dir, train, restart_incompatible, clips_uri=clips)
    shown = {k: v for k, v in metrics.items() if isinstance(v, (int, float, str))}
    key = artifact_key("mapper-training", _run_of(out_dir))
    create_table_artifact(key=key, table=[{"field": k, "value": str(v)} for k, v in shown.items()],
                          description=f"Final metrics of mapper {mapper} in {out_dir}")
    _attach_training_curve(out_dir, mapper, key)
    print(f"train: {mapper} → {out_dir}" + (" (from the task cache)" if metrics.get("cached") else ""))
    return metrics


def _run_of(out_dir: str) -> str:
    # OUT/mappers/NAME: the run is OUT's name and the mapper's.
    parts = str(out_dir).rstrip("/").rsplit("/", 3)
    return "-".join(p for p in (parts[-3] if len(parts) >= 3 else "", location_run_id(out_dir)) if p)


def _attach_training_curve(out_dir: str, mapper: str, key: str) -> None:
    uri = storage.join(out_dir, CURVE_NAME)
    if not storage.exists(uri):
        return
    fs, path = storage.filesystem(uri)
    with fs.open(path, "rb") as handle:
        png = handle.read(MAX_INLINE_BYTES + 1)
    image = (f"![training curve](data:image/png;base64,{base64.b64encode(png).decode('ascii')})\n\n"
             if len(png) <= MAX_INLINE_BYTES else "")
    create_markdown_artifact(key=f"{key}-curve", markdown=f"{image}`{uri}`",
                             description=f"Training curve of mapper {mapper}")
