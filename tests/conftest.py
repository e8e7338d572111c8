import os

import tempfile

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# The suite neither reads nor fills the user's weights cache (v2a/weights/cache.py).
os.environ["V2A_WEIGHTS_DIR"] = tempfile.mkdtemp(prefix="v2a-test-weights-")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
# Spinning OpenMP threads starve each other when processes share the 2 cores (15 ms calls took 2 s).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
# OpenBLAS's pthreads spin as well, and OMP_WAIT_POLICY does not reach them. With two test workers and the
# processes some tests start, the 2048-d eigendecompositions of the Fréchet distance ran 11x slower (two
# processes, two threads each) and once took a killed-evaluation test from 15 s to 531 s. One BLAS thread
# per process is what Dask and Ray give their workers too. Set before anything imports numpy.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
# Flows run outside the harness start their own temporary server: give it time on a loaded machine.
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")

import pytest

# Peer tests fail instead of skipping under `make test` (V2A_REQUIRE_PEERS=1); a plain run names its skips.
from tests.peer_skips import pytest_make_collect_report, pytest_runtest_makereport, pytest_terminal_summary  # noqa: E402,F401


@pytest.fixture(scope="session")
def synth_dir(tmp_path_factory):
    """A small synthetic VGGSound-format set shared by the stage tests: 3 classes × 4 clips of 2 s."""
    from v2a.tools.synth import make_synthetic_dataset

    out = tmp_path_factory.mktemp("synth")
    make_synthetic_dataset(out, classes=3, clips_per_class=4, seconds=2.0, seed=1, images_per_class=1, progress=False)
    return out


@pytest.fixture(scope="session")
def prefect_harness():
    """One temporary Prefect server for the whole session: entering one costs ~12 s."""
    from prefect.testing.utilities import prefect_test_harness

    # A loaded machine (CI beside other jobs) can take longer than Prefect's 30 s to start the server.
    with prefect_test_harness(server_startup_timeout=180):
        yield
