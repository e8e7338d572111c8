"""Flow: evaluate every generation set under an output location that has no results for this metric version.

Deployed as `v2a-reevaluate` with a cron schedule that ships switched off (see prefect.yaml). An
`out` that holds no generation set at all is an error, not a green no-op: a wrong path would
otherwise pass silently every night.
"""

from __future__ import annotations

from prefect import flow

from flows.evaluate import evaluate_flow
from flows.naming import FLOW_OPTIONS, stage_run_name, tag_run
from flows.runners import bounded_thread_runner
from v2a.config import DEFAULT_PROFILE, DataConfig, EmbedConfig, EvaluateConfig, default
from v2a.io import clips as clips_io
from v2a.io.layout import RunLayout
from v2a.stages.reevaluate import generation_sets, pending_evaluation, unfinished


def _dataset(out: str, default_name: str = default(DataConfig, "dataset")) -> str:
    return clips_io.dataset_name(RunLayout(out).clips) or default_name


@flow(name="reevaluate", task_runner=bounded_thread_runner(), flow_run_name=stage_run_name("reevaluate"),
      **FLOW_OPTIONS)
def reevaluate_flow(out: str, profile: str = DEFAULT_PROFILE, evaluate: EvaluateConfig = EvaluateConfig(),
                    device: str = default(EmbedConfig, "device")) -> list[dict]:
    tag_run("reevaluate", profile=profile)
    if not generation_sets(out):
        raise ValueError(f"reevaluate: {out} holds no generation sets (OUT/generations/RUN/table, or one folder "
                         "below): is `out` the pipeline's output location?")
    pending, unfinished_sets = unfinished(pending_evaluation(out))
    for p in unfinished_sets:
        print(p.line())
    print(f"reevaluate: {len(pending)} generation set(s) under {out} without results of this version"
          + (f" ({len(unfinished_sets)} unfinished set(s) skipped)" if unfinished_sets else ""))
    done = []
    for s in pending:
        rows = evaluate_flow(s.gen_dir, s.out, profile=profile, evaluate=evaluate, dataset=_dataset(s.out),
                             device=device)
        done.append({"run_id": s.run_id, "gen_dir": s.gen_dir, "rows": len(rows)})
    return done
