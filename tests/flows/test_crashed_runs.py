"""Runs left Running by a killed v2a process are marked Crashed by the next command on the same home;
those of a live process, and untagged ones, are left alone."""

import subprocess
import sys

from prefect import flow, task
from prefect.client.orchestration import get_client
from prefect.states import Running

from flows.crashed_runs import mark_dead_runs_crashed, owner_tag


@flow
def _noop():
    pass


@task
def _step():
    pass


def _dead_process_tag() -> str:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        tag = owner_tag(proc.pid)  # read while it lives: its start time is part of the tag
    finally:
        proc.kill()
        proc.wait()
    return tag


def test_the_running_flow_runs_of_a_killed_process_are_marked_crashed(prefect_harness):
    dead, live = _dead_process_tag(), owner_tag()
    assert dead.rsplit(":", 1)[1] != "None"  # the start time was read
    with get_client(sync_client=True) as client:
        killed = client.create_flow_run(_noop, tags=[dead], state=Running())
        task = client.create_task_run(_step, flow_run_id=killed.id, dynamic_key="0", state=Running())
        alive = client.create_flow_run(_noop, tags=[live], state=Running())
        untagged = client.create_flow_run(_noop, state=Running())

        assert mark_dead_runs_crashed() >= 1
        state = {name: client.read_flow_run(run.id).state
                 for name, run in (("killed", killed), ("alive", alive), ("untagged", untagged))}
        assert state["killed"].type.value == "CRASHED" and "killed?" in state["killed"].message
        assert state["alive"].type.value == "RUNNING" and state["untagged"].type.value == "RUNNING"
        assert client.read_task_run(task.id).state.type.value == "CRASHED"
        assert mark_dead_runs_crashed() == 0  # nothing left to mark
