"""`benchmarks/bench_scale.py` at a small size: the measurements that call flows and stages with many
arguments still run (the benchmark follows the library's signatures), and a failed one exits non-zero."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# The stages whose measurement calls into flows and stages with many arguments (where signatures drift).
STAGES = ["embed", "train-load", "gen-plan", "eval-inputs"]


def test_every_stage_of_the_scale_benchmark_runs_at_a_small_size(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "PREFECT_HOME": str(tmp_path / "prefect"), "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    env.pop("PREFECT_API_URL", None)
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_scale.py"), "--sizes", "600",
                           "--frames", "2", "--work", str(tmp_path / "work"), "--stages", *STAGES],
                          env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "FAILED" not in proc.stdout
    table = proc.stdout[proc.stdout.index("| stage |"):]
    for stage in STAGES:
        line = next(x for x in table.splitlines() if x.startswith(f"| {stage} |"))
        assert "failed" not in line, line
