"""Peer tests (tests/peers: our code against the reference packages) skip when a package is missing.

Under `make test`, which installs every peer package, such a skip would hide exactly the bugs these
tests exist to catch, so the Makefile sets V2A_REQUIRE_PEERS=1 and each skip of a peer test is
reported as a failure that names its reason. A plain `pytest` still skips them, and the run ends with
one line saying how many peer tests skipped and why. Loaded by tests/conftest.py (or `-p tests.peer_skips`).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REQUIRE = "V2A_REQUIRE_PEERS"
PEERS_FOLDER = "peers"  # a test module in a folder of this name is a peer test


def _is_peer(path) -> bool:
    return Path(str(path)).parent.name == PEERS_FOLDER


def _required() -> bool:
    return os.environ.get(REQUIRE, "") not in ("", "0")


def _reason(report) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2]).removeprefix("Skipped: ")
    return str(longrepr)


def _fail(report, where: str) -> None:
    report.outcome = "failed"
    report.longrepr = (f"{where} skipped, and {REQUIRE}=1 (make test) forbids a peer test to skip: "
                       f"{_reason(report)}. Install the peer packages (Makefile, install target).")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.skipped and _required() and _is_peer(item.path) and not hasattr(report, "wasxfail"):
        _fail(report, item.nodeid)


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    outcome = yield
    report = outcome.get_result()
    # A module-level importorskip skips the whole module at collection.
    if report.skipped and _required() and _is_peer(getattr(collector, "path", "")):
        _fail(report, collector.nodeid)


def pytest_terminal_summary(terminalreporter):
    skipped = [r for r in terminalreporter.stats.get("skipped", []) if _is_peer(r.nodeid.split("::")[0])]
    if not skipped:
        return
    reasons = sorted({_reason(r) for r in skipped})
    terminalreporter.write_line(
        f"peer tests skipped: {len(skipped)} ({'; '.join(reasons)}); `make test` ({REQUIRE}=1) fails on these",
        yellow=True)
