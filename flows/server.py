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

Its start-up, too:
- v2a binds the port and hands uvicorn the socket (`--fd`): no other process can take the port
  between choosing and binding it, so the server never moves and its URL, set before Prefect is
  imported, is the one every client of the run uses;
- a server that will create or migrate the database of its PREFECT_HOME holds an exclusive lock
  on `PREFECT_HOME/.v2a-server-start.lock` until it answers; other v2a processes on that home wait
  for it before starting theirs: two servers creating one database at once break each other
  (`NoSuchTableError`). On a database that is ready, servers start side by side;
- a server that exits while starting is not retried: with the port already ours, what is left is
  a permanent fault, such as a corrupt or locked database. It is reported in one line naming
  PREFECT_HOME and the remedy (ServerHomeError); `--debug` adds the server's own log.
"""

from __future__ import annotations

import atexit
import collections
import importlib.util
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

# Prefect's own setting for how long its temporary server may take to start (the CLI raises it).
STARTUP_TIMEOUT_SETTING = "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"
_PR_SET_PDEATHSIG = 1

_current: "TemporaryServer | None" = None


class ServerStartError(RuntimeError):
    """The temporary Prefect server did not answer within the start-up timeout."""


class ServerHomeError(ServerStartError):
    """The temporary server exited while starting: a fault of its PREFECT_HOME (its database), which
    a second try would meet again. The message is the one line to print."""

    def __init__(self, message: str, log: str = "") -> None:
        super().__init__(message)
        self.log = log


LOCK_NAME = ".v2a-server-start.lock"
# Lines of the server's own output kept for the error message (and --debug).
_LOG_LINES = 400


def prefect_home() -> str:
    """The folder of Prefect's settings and database, as Prefect resolves it."""
    return os.path.abspath(os.path.expanduser(os.environ.get("PREFECT_HOME") or "~/.prefect"))


def _database(home: str) -> str:
    url = os.environ.get("PREFECT_API_DATABASE_CONNECTION_URL") or os.environ.get("PREFECT_SERVER_DATABASE_CONNECTION_URL")
    return url or os.path.join(home, "prefect.db")


def _home_fault(home: str, log: str, status: int) -> str:
    """One line for a server that exited while starting: what its log says went wrong, and the remedy."""
    lines = [line.strip() for line in log.splitlines() if line.strip()]
    errors = [line for line in lines if line.split(":", 1)[0].endswith(("Error", "Exception"))]
    reason = errors[-1] if errors else (lines[-1] if lines else f"exit status {status}")
    db = _database(home)
    low = log.lower()
    if "database is locked" in low:
        remedy = f"another process holds {db}: stop it, or set PREFECT_HOME to another folder"
    elif any(w in low for w in ("not a database", "malformed", "nosuchtable", "no such table", "alembic",
                                "migration", "disk image", "unable to open database")):
        remedy = (f"move {db} aside (Prefect's run history there is lost) or set PREFECT_HOME to another "
                  "folder; v2a's own outputs are not in it")
    else:
        remedy = "set PREFECT_HOME to another folder, or start `prefect server start` and set PREFECT_API_URL"
    if len(reason) > 300:
        reason = reason[:300] + "..."
    debug = " (--debug prints the server's log)" if status else ""
    return f"Prefect's temporary server could not start with PREFECT_HOME={home} ({reason}); {remedy}{debug}"


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


def _check_database_file(home: str) -> None:
    """ServerHomeError now, rather than after the seconds a server takes to find out, for a
    PREFECT_HOME whose SQLite database is not one (overwritten, truncated, corrupt)."""
    import sqlite3

    db = _database(home)
    if not os.path.isfile(db):  # no file yet (the server makes it), or a database URL
        return
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
        try:
            con.execute("select count(*) from sqlite_master").fetchone()
        finally:
            con.close()
    except sqlite3.OperationalError:  # busy, locked or unreadable: the server may yet manage, or says why
        return
    except sqlite3.DatabaseError as err:
        raise ServerHomeError(_home_fault(home, f"sqlite3.DatabaseError: {err}", 0)) from None


def _database_ready(home: str) -> bool:
    """Whether the database exists with a schema revision (so a server starting now only checks it).
    Asked with the start lock held: a server that is creating it holds the lock until it answers."""
    import sqlite3

    db = _database(home)
    if "://" in db:  # a database server of the user's: it serialises its own clients
        return True
    if not os.path.isfile(db):
        return False
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
        try:
            return con.execute("select count(*) from alembic_version").fetchone()[0] > 0
        finally:
            con.close()
    except sqlite3.Error:
        return False


def _bound_socket() -> socket.socket:
    """A socket bound to a free local port, not yet listening: the server's, handed over by descriptor."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    return sock


class TemporaryServer:
    """One temporary Prefect API server for this process: `start()`, then `wait()` until it answers."""

    def __init__(self) -> None:
        self.home = prefect_home()
        self._socket = _bound_socket()
        self.port = self._socket.getsockname()[1]
        self.process: subprocess.Popen | None = None
        self._lock: int | None = None
        self._log: collections.deque[str] = collections.deque(maxlen=_LOG_LINES)
        self._up = False

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    def start(self) -> "TemporaryServer":
        """Start the server now if no other v2a process is starting one on this PREFECT_HOME; else
        `wait()` starts it once that one is up. A database file that is not one is refused at once."""
        _check_database_file(self.home)
        if self._take_lock(blocking=False):
            self._launch_locked()
        return self

    def _launch_locked(self) -> None:
        """Launch, holding the start lock. Kept until the server answers only when the database is
        still to be created or migrated; past that, servers start side by side."""
        if _database_ready(self.home):
            self._release_lock()
        self._launch()

    def _take_lock(self, blocking: bool, timeout: float = 0.0) -> bool:
        import fcntl

        if self._lock is None:
            os.makedirs(self.home, exist_ok=True)
            self._lock = os.open(os.path.join(self.home, LOCK_NAME), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return True
            except BlockingIOError:
                if not blocking or time.monotonic() >= deadline:
                    return False
                time.sleep(0.1)

    def _release_lock(self) -> None:
        lock, self._lock = self._lock, None
        if lock is not None:
            os.close(lock)  # closing the descriptor releases the flock

    def _launch(self) -> None:
        spec = importlib.util.find_spec("prefect")  # its folder, without importing Prefect (seconds)
        app_dir = os.path.dirname(os.path.dirname(spec.origin))
        # The environment Prefect gives its own temporary server: no UI, ephemeral services.
        env = {**os.environ, "PREFECT_UI_ENABLED": "0", "PREFECT__SERVER_EPHEMERAL": "1",
               "PREFECT__SERVER_FINAL": "1"}
        env.pop("PREFECT_API_URL", None)
        linux = sys.platform.startswith("linux")
        fd = self._socket.fileno()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "--app-dir", app_dir, "--factory", "prefect.server.api.server:create_app",
             "--fd", str(fd), "--log-level", "error", "--lifespan", "on"],
            env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            start_new_session=True, pass_fds=(fd,),
            preexec_fn=_die_with_parent(os.getpid()) if linux else None)
        self._socket.close()  # the server's copy is the one that listens
        self._reader = threading.Thread(target=self._pump, args=(self.process.stderr,), name="v2a-server-log",
                                        daemon=True)
        self._reader.start()

    def _pump(self, stream) -> None:
        """The server's output: kept while it starts (the error message reads it), passed on after."""
        for raw in iter(stream.readline, b""):
            line = raw.decode(errors="replace")
            self._log.append(line)
            if self._up:
                try:
                    os.write(2, raw)
                except OSError:
                    return

    def wait(self, timeout: float | None = None) -> None:
        """Until /api/health answers; ServerStartError after the timeout, ServerHomeError when the server
        exits while starting."""
        timeout = timeout if timeout is not None else float(os.environ.get(STARTUP_TIMEOUT_SETTING, 20))
        try:
            if self.process is None:
                if not self._take_lock(blocking=True, timeout=timeout):
                    raise ServerStartError(f"another v2a run did not finish creating Prefect's database on "
                                           f"PREFECT_HOME={self.home} within {timeout:g} s")
                self._launch_locked()
            self._wait_healthy(timeout)
        except BaseException:
            self.stop()
            raise
        finally:
            self._release_lock()

    def _wait_healthy(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self._reader.join(timeout=2)  # the last lines of its log
                log = "".join(self._log)
                raise ServerHomeError(_home_fault(self.home, log, self.process.returncode), log)
            try:
                with urllib.request.urlopen(f"{self.api_url}/health", timeout=1) as response:
                    if response.status == 200:
                        self._up = True
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.1)
        raise ServerStartError(f"Prefect's temporary server did not start within {timeout:g} s")

    def stop(self, grace: float = 5.0) -> None:
        self._socket.close()  # never launched: the port is given back
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
