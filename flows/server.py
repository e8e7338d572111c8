"""The temporary Prefect server of a `v2a` command run without PREFECT_API_URL, started by v2a itself.

Prefect's own ephemeral mode starts the same server (uvicorn serving `prefect.server.api.server`)
as a plain child process. That child outlives a `v2a` process killed outright (SIGKILL, the OOM
killer), and, sharing the terminal's process group, it also receives the Ctrl-C or SIGTERM meant
for v2a, dies first, and leaves the dying run retrying connections to it for minutes.

Here the server is started with two differences:
- a parent-death signal (Linux `prctl(PR_SET_PDEATHSIG, SIGKILL)`, set in the child before it runs
  uvicorn): the kernel kills the server the moment the `v2a` process ends, however it ends;
- a session of its own (`setsid`): a signal sent to v2a's process group does not reach it, so it is
  still up while the stopping run reports its final state, and v2a stops it last.

Where prctl is not available (not Linux) the server is still v2a's child in its own session and is
stopped on every exit Python sees; only a SIGKILL of v2a can then leave it behind.
"""

from __future__ import annotations

import atexit
import importlib.util
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

# Prefect's own setting for how long its temporary server may take to start (the CLI raises it).
STARTUP_TIMEOUT_SETTING = "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"
_PR_SET_PDEATHSIG = 1

_current: "TemporaryServer | None" = None


class ServerStartError(RuntimeError):
    """The temporary Prefect server did not answer within the start-up timeout."""


def _die_with_parent(parent: int):
    """preexec_fn of the server: SIGKILL when the parent (this v2a process) ends; never run unwatched."""

    def arm() -> None:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
            os._exit(71)
        if os.getppid() != parent:  # the parent died before the signal was armed
            os._exit(72)
    return arm


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class TemporaryServer:
    """One temporary Prefect API server for this process: `start()`, then `wait()` until it answers."""

    def __init__(self) -> None:
        self.port = _free_port()
        self.process: subprocess.Popen | None = None

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    def start(self) -> "TemporaryServer":
        spec = importlib.util.find_spec("prefect")  # its folder, without importing Prefect (seconds)
        app_dir = os.path.dirname(os.path.dirname(spec.origin))
        # The environment Prefect gives its own temporary server: no UI, ephemeral services.
        env = {**os.environ, "PREFECT_UI_ENABLED": "0", "PREFECT__SERVER_EPHEMERAL": "1",
               "PREFECT__SERVER_FINAL": "1"}
        env.pop("PREFECT_API_URL", None)
        linux = sys.platform.startswith("linux")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "--app-dir", app_dir, "--factory", "prefect.server.api.server:create_app",
             "--host", "127.0.0.1", "--port", str(self.port), "--log-level", "error", "--lifespan", "on"],
            env=env, stdin=subprocess.DEVNULL, start_new_session=True,
            preexec_fn=_die_with_parent(os.getpid()) if linux else None)
        return self

    def wait(self, timeout: float | None = None) -> None:
        """Until /api/health answers; ServerStartError after the timeout or when the server exits."""
        timeout = timeout if timeout is not None else float(os.environ.get(STARTUP_TIMEOUT_SETTING, 20))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                if self.process.returncode == 3:  # uvicorn: the port was taken meanwhile; another one
                    self.port = _free_port()
                    self.start()
                    continue
                raise ServerStartError(f"Prefect's temporary server exited with status {self.process.returncode} "
                                       "while starting")
            try:
                with urllib.request.urlopen(f"{self.api_url}/health", timeout=1) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.1)
        self.stop()
        raise ServerStartError(f"Prefect's temporary server did not start within {timeout:g} s")

    def stop(self, grace: float = 5.0) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def kill(self) -> None:
        """At once, without waiting (a process about to exit hard)."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()


def start_temporary_server() -> TemporaryServer | None:
    """Start this process's temporary server unless PREFECT_API_URL names one; point Prefect at it.

    Returns at once: call `wait_until_up()` before the first flow runs (importing the flows meanwhile)."""
    global _current
    if os.environ.get("PREFECT_API_URL") or _current is not None or _configured_elsewhere():
        return None
    _current = TemporaryServer().start()
    os.environ["PREFECT_API_URL"] = _current.api_url
    # Registered before Prefect registers its own exit handlers, so it runs after them (atexit is last
    # in, first out): Prefect's log and event workers still reach the server while they drain.
    atexit.register(stop_temporary_server)
    return _current


def _configured_elsewhere() -> bool:
    """An API URL set in Prefect's own settings context (a test harness, `temporary_settings`). Only looked
    at when Prefect is already imported: the command itself gets here before importing it."""
    if "prefect" not in sys.modules:
        return False
    from prefect.settings import get_current_settings

    return bool(get_current_settings().api.url)


def wait_until_up() -> None:
    if _current is not None:
        try:
            _current.wait()
        except ServerStartError:
            stop_temporary_server()
            raise


def temporary_server() -> TemporaryServer | None:
    """The temporary server this process started, if any."""
    return _current


def stop_temporary_server(hard: bool = False) -> None:
    global _current
    server, _current = _current, None
    if server is None:
        return
    if os.environ.get("PREFECT_API_URL") == server.api_url:
        del os.environ["PREFECT_API_URL"]
    server.kill() if hard else server.stop()
