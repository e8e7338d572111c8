"""Flow: embeddings → trained mapper checkpoint (config.json + model.safetensors)."""

from __future__ import annotations

from prefect import flow

from flows.artifacts import markdown_artifact, table_artifact
from flows.naming import FLOW_OPTIONS, artifact_key, run_key, stage_run_name, tagged_run
from flows.runners import bounded_thread_runner
from flows.stage import run_stage
from v2a.core import storage
from v2a.config import TrainStageConfig
from v2a.io.embeddings import sibling_clips
from v2a.mapper.trainer import CURVE_NAME
from v2a.core.markdown import inline_png, location
from v2a.stages.shape import StageRun


@flow(name="train", task_runner=bounded_thread_runner(), flow_run_name=stage_run_name("train"), **FLOW_OPTIONS)
def train_flow(embeddings: str, out_dir: str, train: TrainStageConfig = TrainStageConfig(),
               restart_incompatible: bool = False, clips: str | None = None) -> dict:
    """restart_incompatible: epoch checkpoints in out_dir from another configuration are discarded
    (the pipeline owns its mapper folder) instead of stopping the run. clips: the clips table the
    splits are read from (default: the one beside the embeddings folder)."""
    mapper = train.mapper
    with tagged_run("train", clips=clips or sibling_clips(embeddings)):
        # The mapper folder's own key: two folders (two outputs, two mappers) never share an artifact history.
        key = run_key(out_dir)
        run = StageRun(out_dir, device=train.device, args={"embeddings": embeddings, "mapper_dir": out_dir,
                                                           "clips": clips, "restart_incompatible": restart_incompatible})
        outcome = run_stage("train", train, run, key, title=f"train {mapper}")
        metrics = {**outcome.summary, "cached": outcome.results[0]["cached"],
                   "made_by": outcome.results[0].get("made_by")}
        shown = {k: v for k, v in metrics.items() if isinstance(v, (int, float, str))}
        table_artifact(artifact_key("mapper-training", key), [{"field": k, "value": str(v)} for k, v in shown.items()],
                       f"Final metrics of mapper {mapper} in {out_dir}", result=metrics)
        _attach_training_curve(out_dir, mapper, artifact_key("mapper-training-curve", key), metrics)
        return metrics


def _attach_training_curve(out_dir: str, mapper: str, key: str, metrics: dict) -> None:
    uri = storage.join(out_dir, CURVE_NAME)
    if not storage.exists(uri):
        return
    # Inlined as a data URI so the Prefect UI shows it without a file server (a PNG past
    # v2a.core.markdown.MAX_INLINE_BYTES, which the trainer never draws, is only named).
    image = inline_png(uri, "training curve")
    markdown_artifact(key, (f"{image}\n\n" if image else "") + location(uri, "training curve"),
                      f"Training curve of mapper {mapper}", result=metrics)
