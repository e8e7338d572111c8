"""`benchmarks/gpu_suite.py --quick`: the GPU benchmark's every row runs on CPU (tiny profile) and prints one table."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_gpu_suite_runs_every_measurement_on_cpu_in_quick_mode(tmp_path):
    out = tmp_path / "suite.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TMPDIR": str(tmp_path)}
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_suite.py"), "--quick", "--json", str(out)],
                          env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    found = json.loads(out.read_text())
    rows = {r["measure"]: r for r in found["rows"]}
    for measure in ("embed", "generate", "extractor panns", "extractor vggish", "extractor wav2clip",
                    "extractors, all three", "mapper epoch"):
        assert rows[measure]["value"] > 0, measure
    assert rows["1 -> N GPU scaling"]["setting"].startswith("not measured")   # no GPU here
    table = proc.stdout[proc.stdout.index("v2a GPU suite"):]
    assert all(f"| {m}" in table for m in rows) and found["profile"] == "tiny" and found["device"] == "cpu"
