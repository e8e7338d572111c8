"""Flow: embeddings → trained mapper checkpoint (config.json + model.safetensors)."""

from __future__ import annotations

import base64

from prefect import flow

from flows.runners import bounded_thread_runner
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from tasks.caching import call
from tasks.train import train_task
from v2a import storage
from v2a.mapper.train import CURVE_NAME

# The curve is inlined as a data URI so the Prefect UI shows it without a file server; a PNG past this
# size (none the trainer draws) is linked by path only, to keep artifacts out of the database's way.
MAX_INLINE_BYTES = 512 * 1024


@flow(name="train", log_prints=True, task_runner=bounded_thread_runner())
def train_flow(embeddings: str, out_dir: str, mapper: str = "diff-transformer", aggregator: str = "mean",
               options: dict | None = None, restart_incompatible: bool = False, clips: str | None = None) -> dict:
    """restart_incompatible: epoch checkpoints in out_dir from another configuration are discarded
    (the pipeline owns its mapper folder) instead of stopping the run. clips: the clips table the
    splits are read from (default: the one beside the embeddings folder)."""
    metrics = call(train_task, embeddings, out_dir, mapper, aggregator, options or {}, restart_incompatible,
                   clips_uri=clips)
    shown = {k: v for k, v in metrics.items() if isinstance(v, (int, float, str))}
    create_table_artifact(key="mapper-training", table=[{"field": k, "value": str(v)} for k, v in shown.items()],
                          description=f"Final metrics of mapper {mapper} in {out_dir}")
    _attach_training_curve(out_dir, mapper)
    print(f"train: {mapper} → {out_dir}")
    return metrics


def _attach_training_curve(out_dir: str, mapper: str) -> None:
    uri = storage.join(out_dir, CURVE_NAME)
    if not storage.exists(uri):
        return
    fs, path = storage.filesystem(uri)
    with fs.open(path, "rb") as handle:
        png = handle.read(MAX_INLINE_BYTES + 1)
    image = (f"![training curve](data:image/png;base64,{base64.b64encode(png).decode('ascii')})\n\n"
             if len(png) <= MAX_INLINE_BYTES else "")
    create_markdown_artifact(key="mapper-training-curve", markdown=f"{image}`{uri}`",
                             description=f"Training curve of mapper {mapper}")
