"""The layering contracts of pyproject.toml (import-linter) hold, and they see imports made inside functions."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT = Path(sys.executable).with_name("lint-imports")
PACKAGES = ("v2a", "tasks", "flows", "storage_schemas")

pytestmark = pytest.mark.skipif(not LINT.exists(), reason="import-linter is not installed (make test installs it)")


def _lint(root: Path) -> subprocess.CompletedProcess:
    env = {"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"}
    return subprocess.run([str(LINT), "--no-cache"], cwd=root, env=env, capture_output=True, text=True, timeout=120)


@pytest.fixture
def copy_of_the_tree(tmp_path):
    for name in PACKAGES:
        shutil.copytree(ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def _add_function(path: Path, body: str) -> None:
    path.write_text(path.read_text() + f"\n\ndef _added_on_purpose():\n    {body}\n")


def test_the_tree_keeps_every_contract():
    result = _lint(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("module, body, broken", [
    ("v2a/stages/ingest.py", "from v2a.stages import generate  # noqa", "no stage imports another"),
    ("v2a/stages/report/assets.py", "from v2a.stages.evaluate import reference_audio  # noqa",
     "no stage imports another"),
    ("v2a/core/storage.py", "import prefect  # noqa", "no Prefect import"),
    ("v2a/core/storage.py", "from v2a.io import parquet  # noqa", "Layers"),
    ("v2a/io/results.py", "from v2a.stages import evaluate  # noqa", "Layers"),
    # The middle layer is ordered: the old weights -> models cycle, a sideways import between the metrics and
    # the mapper, and media reaching up to the metrics each break it.
    ("v2a/weights/cache.py", "from v2a.models import profile  # noqa", "Layers"),
    ("v2a/metrics/audio.py", "from v2a.mapper import settings  # noqa", "Layers"),
    ("v2a/media/resample.py", "from v2a.metrics import specs  # noqa", "Layers"),
])
def test_an_import_inside_a_function_that_breaks_a_contract_fails_the_linter(copy_of_the_tree, module, body,
                                                                             broken):
    _add_function(copy_of_the_tree / module, body)
    result = _lint(copy_of_the_tree)
    assert result.returncode != 0
    assert broken in result.stdout and "BROKEN" in result.stdout
