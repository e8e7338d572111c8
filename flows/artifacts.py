"""The artifacts a person opens in the Prefect UI.

Each is published by its flow, not by a task, so a re-run served from the task cache publishes it
again, saying that it is unchanged and which flow run made it (with a link to that run where it is
on the same server, that server has a UI and it is not v2a's temporary one). Pictures are embedded
and locations are shown so that a browser can open them (v2a/core/markdown.py): no artifact holds a
local path as a link or an image source.
"""

from __future__ import annotations

from prefect.artifacts import create_markdown_artifact, create_table_artifact


def flow_run_link(flow_run_id: str | None, name: str | None) -> str:
    """`[name](UI address of the run)` where the run is on the server this artifact goes to, that server
    has a UI and outlives this process; else the name and id as text. A cached result can come from a run
    on another server (the demo's temporary one, say): a link to it there would open "Page not found".
    v2a's own temporary server (a command run without PREFECT_API_URL) is that server for every later
    look: its address, a port chosen for the one command, is dead once the command ends, even where a
    `prefect server` later opens the same database (a second `make demo`, then the UI)."""
    from prefect.utilities.urls import url_for

    from flows.server import temporary_server

    if not flow_run_id:
        return f"`{name}`" if name else "an earlier run"
    url = None
    try:
        if temporary_server() is None and run_exists(flow_run_id):
            url = url_for("flow-run", obj_id=flow_run_id)
    except Exception:  # noqa: BLE001 - no UI address configured: the run is named in words
        url = None
    label = name or flow_run_id
    return f"[{label}]({url})" if url else f"`{label}` (flow run {flow_run_id})"


def run_exists(flow_run_id: str) -> bool:
    """Whether the server this process talks to knows the flow run."""
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    try:
        with get_client(sync_client=True) as client:
            client.read_flow_run(flow_run_id)
    except (ObjectNotFound, ValueError):  # ValueError: not even a UUID
        return False
    return True


def cached_note(result: dict | None) -> str:
    """'' for work done by this run; for a result from the task cache, a line saying so and naming the run that made it."""
    if not result or not result.get("cached"):
        return ""
    made = result.get("made_by") or {}
    return (f"Unchanged since flow run {flow_run_link(made.get('flow_run_id'), made.get('flow_run_name'))} "
            "(served from the task cache).")


def markdown_artifact(key: str, markdown: str, description: str, result: dict | None = None):
    """A markdown artifact; from a cached result, it says so on its first line."""
    note = cached_note(result)
    return create_markdown_artifact(key=key, markdown=f"_{note}_\n\n{markdown}" if note else markdown,
                                    description=description + (f" {note}" if note else ""))


def table_artifact(key: str, table: list[dict], description: str, result: dict | None = None):
    note = cached_note(result)
    return create_table_artifact(key=key, table=table, description=description + (f" {note}" if note else ""))
