"""Flow runs of a killed `v2a` process, marked Crashed by the next command on the same PREFECT_HOME.

A process that ends in order reports its runs' final state (flows/interrupts.py). One killed outright
(SIGKILL, the OOM killer, a lost machine) reports nothing, and its temporary server dies with it
(flows/server.py), so its flow and task runs would stay Running in the database for good. Each run a
`v2a` command starts on its temporary server is tagged with the process that runs it (host, pid and
the process's start time, so a reused pid is not taken for it); the next command on the same home
marks Crashed the Running and Pending runs whose process is gone. Runs of other hosts, and runs without
the tag (a deployment's, an older v2a's), are left as they are: whether they are alive cannot be told.
"""

from __future__ import annotations

import logging
import os
import socket

log = logging.getLogger(__name__)

TAG_PREFIX = "v2a-process:"


def _start_time(pid: int) -> str | None:
    """The process's start time (clock ticks since boot, /proc/PID/stat field 22), None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            fields = handle.read().rsplit(b")", 1)[1].split()
        if fields[0] == b"Z":
            return None
        return fields[19].decode()
    except (OSError, IndexError):
        pass
    try:  # not Linux
        import psutil

        return str(int(psutil.Process(pid).create_time()))
    except Exception:  # noqa: BLE001 - psutil missing, or no such process
        return None


def owner_tag(pid: int | None = None) -> str:
    pid = os.getpid() if pid is None else pid
    return f"{TAG_PREFIX}{socket.gethostname()}:{pid}:{_start_time(pid)}"


def _is_dead(tag: str) -> bool:
    try:
        host, pid, started = tag[len(TAG_PREFIX):].rsplit(":", 2)
        pid = int(pid)
    except ValueError:
        return False
    if host != socket.gethostname():
        return False
    if started == "None":  # its start time could not be read: only a pid that is free now tells
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        except OSError:
            return False
        return False
    return _start_time(pid) != started


def mark_dead_runs_crashed(limit: int = 200) -> int:
    """Mark Crashed the Running/Pending flow runs (and their Running/Pending task runs) whose v2a
    process is gone; the count of flow runs marked. Never stops the command that calls it."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (FlowRunFilter, FlowRunFilterId, FlowRunFilterState,
                                                FlowRunFilterStateType, TaskRunFilter, TaskRunFilterState,
                                                TaskRunFilterStateType)
    from prefect.client.schemas.objects import StateType
    from prefect.states import Crashed

    unfinished = [StateType.RUNNING, StateType.PENDING]
    try:
        with get_client(sync_client=True) as client:
            runs = client.read_flow_runs(flow_run_filter=FlowRunFilter(
                state=FlowRunFilterState(type=FlowRunFilterStateType(any_=unfinished))), limit=limit)
            dead = {}
            for run in runs:
                owner = next((t for t in run.tags or [] if t.startswith(TAG_PREFIX)), None)
                if owner is not None and _is_dead(owner):
                    dead[run.id] = owner
            if not dead:
                return 0
            tasks = client.read_task_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=list(dead))),
                task_run_filter=TaskRunFilter(state=TaskRunFilterState(type=TaskRunFilterStateType(any_=unfinished))))
            for task in tasks:
                client.set_task_run_state(task.id, Crashed(message=_message(dead.get(task.flow_run_id, ""))),
                                          force=True)
            for run_id, owner in dead.items():
                client.set_flow_run_state(run_id, Crashed(message=_message(owner)), force=True)
            return len(dead)
    except Exception as err:  # noqa: BLE001 - bookkeeping of earlier runs; this run goes on
        log.warning("could not mark the runs of killed v2a processes Crashed: %s", err)
        return 0


def _message(owner: str) -> str:
    host, pid = (owner[len(TAG_PREFIX):].rsplit(":", 2) + ["?", "?"])[:2]
    return (f"the v2a process that ran it (pid {pid} on {host}) ended without reporting (killed?); "
            "marked by the next v2a command on this PREFECT_HOME")
