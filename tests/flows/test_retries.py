"""Tasks retry only what can succeed on a second try: network and remote-store errors and timeouts."""

import errno
import os

import pytest

from tasks.operations import RETRIES, is_transient


class ClientError(Exception):  # botocore's shape: a response carrying an S3 error code
    def __init__(self, code):
        super().__init__(code)
        self.response = {"Error": {"Code": code}}


def _caused(outer, inner):
    try:
        try:
            raise inner
        except Exception as err:
            raise outer from err
    except Exception as err:
        return err


TRANSIENT = {
    "timeout": TimeoutError("read timed out"),
    "connection reset": ConnectionResetError(errno.ECONNRESET, "reset"),
    "unreachable network": OSError(errno.ENETUNREACH, os.strerror(errno.ENETUNREACH)),
    "S3 slow down": ClientError("SlowDown"),
    "wrapped timeout": _caused(RuntimeError("read failed"), TimeoutError()),
}
PERMANENT = {
    "missing file": FileNotFoundError(errno.ENOENT, "no such file", "x.parquet"),
    "bad value": ValueError("generate.split = 'validate'"),
    "full disk": OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), "out/x"),
    "permission": PermissionError(errno.EACCES, os.strerror(errno.EACCES), "out"),
    "read-only disk": OSError(errno.EROFS, os.strerror(errno.EROFS), "out"),
    "S3 access denied": ClientError("AccessDenied"),
    "a bug": KeyError("x"),
}


@pytest.mark.parametrize("case", list(TRANSIENT))
def test_network_errors_and_timeouts_are_retried(case):
    assert is_transient(TRANSIENT[case])


@pytest.mark.parametrize("case", list(PERMANENT))
def test_errors_a_retry_cannot_mend_are_not(case):
    assert not is_transient(PERMANENT[case])


def test_a_task_retries_a_dropped_connection_and_not_a_missing_file(prefect_harness):
    from prefect import flow, task

    calls = []

    @task(**{**RETRIES, "retry_delay_seconds": 0, "retry_jitter_factor": None})
    def flaky(error: str) -> int:
        calls.append(error)
        if error == "network" and len(calls) < 3:
            raise ConnectionResetError(errno.ECONNRESET, "connection reset by peer")
        if error == "missing":
            raise FileNotFoundError(errno.ENOENT, "no such file", "clips.parquet")
        return len(calls)

    @flow
    def run(error: str):
        return flaky(error, return_state=True)

    assert run("network").result() == 3  # two retries, then it succeeded
    calls.clear()
    state = run("missing", return_state=True)
    assert state.is_failed() and calls == ["missing"]  # tried once
