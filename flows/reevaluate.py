"""Flow: evaluate every generation set under an output location that has no results for this metric version.

Deployed as `v2a-reevaluate` with a cron schedule that ships switched off (see prefect.yaml).
"""

from __future__ import annotations

from prefect import flow

from flows.runners import bounded_thread_runner
from flows.evaluate import evaluate_flow
from v2a.io import clips as clips_io
from v2a.io.layout import RunLayout
from v2a.reevaluate import pending_evaluation


def _dataset(out: str, default: str = "vggsound") -> str:
    clips = clips_io.read_clips(RunLayout(out).clips, columns=["dataset"])
    names = clips.column("dataset").to_pylist()
    return names[0] if names else default


@flow(name="reevaluate", log_prints=True, task_runner=bounded_thread_runner())
def reevaluate_flow(out: str, profile: str = "paper", split: str = "test", metrics: list[str] | None = None,
                    device: str = "cpu") -> list[dict]:
    pending = pending_evaluation(out)
    print(f"reevaluate: {len(pending)} generation set(s) under {out} without results of this version")
    done = []
    for s in pending:
        rows = evaluate_flow(s.gen_dir, s.out, profile=profile, split=split, dataset=_dataset(s.out),
                             metrics=metrics, device=device)
        done.append({"run_id": s.run_id, "gen_dir": s.gen_dir, "rows": len(rows)})
    return done
