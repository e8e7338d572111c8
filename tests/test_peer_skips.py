"""Under `make test` (V2A_REQUIRE_PEERS=1) a peer test whose package is missing fails; a plain pytest run
skips it and says so in one summary line. Checked on a throwaway test folder run by a child pytest."""

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture()
def suite(tmp_path):
    (tmp_path / "peers").mkdir()
    (tmp_path / "peers" / "test_reference.py").write_text(textwrap.dedent("""
        import pytest

        def test_against_a_missing_package():
            pytest.importorskip("v2a_missing_peer_package")

        def test_that_runs():
            assert True
    """))
    (tmp_path / "peers" / "test_whole_module.py").write_text(textwrap.dedent("""
        import pytest

        pytest.importorskip("v2a_missing_peer_module")

        def test_never_collected():
            assert True
    """))
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "test_not_a_peer.py").write_text(textwrap.dedent("""
        import pytest

        def test_skips_for_its_own_reason():
            pytest.skip("no GPU here")
    """))
    return tmp_path


def _pytest(folder: Path, required: str | None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("V2A_REQUIRE_PEERS", "PYTEST_ADDOPTS",
                                                             "PYTEST_XDIST_WORKER")}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    if required is not None:
        env["V2A_REQUIRE_PEERS"] = required
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "tests.peer_skips", "-p", "no:cacheprovider",
                           "-p", "no:xdist", "-rA", str(folder)], cwd=folder, env=env, capture_output=True,
                          text=True, timeout=300)


def _outcomes(done: subprocess.CompletedProcess) -> dict[str, str]:
    """test or module -> PASSED / FAILED / SKIPPED / ERROR, from the -rA short summary."""
    found = {}
    for line in done.stdout.splitlines():
        m = re.match(r"(PASSED|FAILED|SKIPPED|ERROR) (?:\[\d+\] )?(\S+?)(?:::(\w+))?(?::\d+)?(?: - |:|$)", line)
        if m:
            found[m.group(3) or Path(m.group(2)).name] = m.group(1)
    return found


def test_a_plain_run_skips_peer_tests_and_says_so_in_one_line(suite):
    done = _pytest(suite, None)
    assert done.returncode == 0, done.stdout + done.stderr
    said = [line for line in done.stdout.splitlines() if line.startswith("peer tests skipped:")]
    assert len(said) == 1, done.stdout
    assert said[0].startswith("peer tests skipped: 2 (") and "v2a_missing_peer_package" in said[0]
    assert "v2a_missing_peer_module" in said[0] and "no GPU here" not in said[0]


def test_make_test_fails_a_peer_test_whose_package_is_missing(suite):
    (suite / "peers" / "test_whole_module.py").unlink()  # below: it stops the session
    done = _pytest(suite, "1")
    assert done.returncode == 1, done.stdout + done.stderr
    got = _outcomes(done)
    assert got["test_against_a_missing_package"] == "FAILED", done.stdout
    assert got["test_that_runs"] == "PASSED", done.stdout
    # -rA names a skip by its file and line: the other folder's skip stays a skip.
    assert got["test_not_a_peer.py"] == "SKIPPED" and "no GPU here" in done.stdout, done.stdout
    assert "V2A_REQUIRE_PEERS=1" in done.stdout and "v2a_missing_peer_package" in done.stdout
    assert not [line for line in done.stdout.splitlines() if line.startswith("peer tests skipped:")]


def test_make_test_stops_on_a_peer_module_that_skips_whole(suite):
    done = _pytest(suite, "1")
    assert done.returncode == 2, done.stdout + done.stderr  # pytest's exit status for a collection error
    assert _outcomes(done)["test_whole_module.py"] == "ERROR", done.stdout
    assert "V2A_REQUIRE_PEERS=1" in done.stdout and "v2a_missing_peer_module" in done.stdout


def test_the_makefile_runs_the_suite_with_peers_required():
    recipe = (ROOT / "Makefile").read_text().split("\ntest:", 1)[1].split("\n\n", 1)[0]
    runs = [line for line in recipe.splitlines() if "-m pytest" in line]
    assert runs and all("V2A_REQUIRE_PEERS=1 " in line for line in runs), runs
