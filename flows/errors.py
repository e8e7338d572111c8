"""What the `v2a` command prints when it stops: one line naming the problem and the remedy.

A user's mistake (a bad option or config value, a missing or unreadable file, a YAML typo) and a
storage fault (full, read-only or forbidden disk) end in ``v2a CMD: error: ...`` on stderr and exit
status 2, without a traceback; ``--debug`` prints the traceback too. Anything else is a bug in v2a and
keeps its traceback (exit 1). Prefect logs a traceback of every failed flow and task run; for the
errors described here that copy is left out too (its one-line log message stays), so the line this
module prints is the one to read. A deployment's run (a worker's process) drops those tracebacks as
well (`quiet_worker_tracebacks`): its state message is the one line.
"""

from __future__ import annotations

import argparse
import errno
import logging
import os
from contextlib import contextmanager

# Messages some libraries raise as their own exception types (safetensors, pyarrow) for the OS errors.
_OS_PHRASES = {"No space left on device": errno.ENOSPC, "Read-only file system": errno.EROFS,
               "Permission denied": errno.EACCES, "Disk quota exceeded": errno.EDQUOT}


def add_debug_flag(parser: argparse.ArgumentParser) -> None:
    """``--debug`` before or after the subcommand (`v2a --debug embed ...`, `v2a embed ... --debug`)."""
    help_text = "on an error, print the traceback as well as the one-line message"
    parser.add_argument("--debug", action="store_true", help=help_text)
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():  # SUPPRESS: an absent flag leaves the top-level value
                sub.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=help_text)


def _where(err: BaseException, fallback: str | None) -> str:
    name = getattr(err, "filename", None)
    name = name if name not in (None, "") else fallback
    return f" ({name})" if name else ""


def _os_error(code: int | None, err: BaseException, location: str | None) -> str | None:
    where = _where(err, location)
    if code == errno.ENOSPC:
        return f"no space left on the disk{where}; free some space or give another output location"
    if code == errno.EDQUOT:
        return f"disk quota exceeded{where}; free some space or give another output location"
    if code == errno.EROFS:
        return f"the file system is read-only{where}; give an output location on a writable disk"
    if code in (errno.EACCES, errno.EPERM):
        return (f"permission denied{where}; give a location you may read and write, "
                "or change its permissions")
    return None


def _flat(text: str) -> str:
    return " ".join(part.strip() for part in str(text).splitlines() if part.strip())


def _yaml_error(err) -> str:
    mark = getattr(err, "problem_mark", None)
    where = f"{mark.name} line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    problem = getattr(err, "problem", None) or _flat(err)
    return f"{where}YAML syntax error ({problem}); fix the file (YAML needs `key: value`, indented with spaces)"


def describe(err: BaseException, location: str | None = None) -> str | None:
    """The one line for ``err``, or None when it is not a user error or a storage fault (a bug).

    ``location``: the command's output location, named when an OS error carries no file name."""
    from v2a.core.locking import RunLockedError

    if isinstance(err, RunLockedError):
        return str(err)
    try:
        import yaml
    except ImportError:  # pragma: no cover - pyyaml is a dependency
        yaml = None
    if yaml is not None and isinstance(err, yaml.YAMLError):
        return _yaml_error(err)
    if isinstance(err, (FileNotFoundError, NotADirectoryError, IsADirectoryError)):
        if err.errno is None or not err.filename:  # raised with its own words, or (s3fs) the bare path
            text = _flat(err)
            return text if " " in text else f"{text}: not found; check the path"
        what = {errno.ENOENT: "not found", errno.ENOTDIR: "a path part is a file, not a folder",
                errno.EISDIR: "is a folder, a file was expected"}.get(err.errno, err.strerror)
        return f"{err.filename}: {what}; check the path"
    if isinstance(err, OSError) and err.errno is not None:
        return _os_error(err.errno, err, location) or (
            f"storage error: {err.strerror}{_where(err, location)}; check the disk or give another location")
    text = str(err)
    for phrase, code in _OS_PHRASES.items():
        if phrase in text:
            return _os_error(code, err, location)
    if isinstance(err, ValueError):  # v2a's own refusals (ConfigError, MediaError, IngestError, ...)
        return _flat(err)
    prefect_line = _prefect_error(err)
    if prefect_line is not None:
        return prefect_line
    return None


def _prefect_error(err: BaseException) -> str | None:
    name = type(err).__name__
    if name == "ParameterTypeError":  # checked by name: Prefect is not imported by every command
        lines = [line.strip(" -") for line in str(err).splitlines()[1:] if line.strip(" -")]
        return f"invalid value for {'; '.join(lines) or _flat(err)}; check the option or config value"
    if name == "ServerHomeError":  # flows/server.py: worded there, naming PREFECT_HOME and the remedy
        return _flat(err)
    if name == "ServerStartError":  # flows/server.py
        return (f"{_flat(err)} (a busy or slow machine); run again, raise "
                "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS, or start one with `prefect server start` "
                "and set PREFECT_API_URL")
    if name in ("ConnectError", "ConnectTimeout") and _own_server():
        return "Prefect's temporary server of this run stopped answering (killed?); run the same command again"
    if name in ("ConnectError", "ConnectTimeout") and os.environ.get("PREFECT_API_URL"):
        return (f"cannot reach the Prefect server at {os.environ['PREFECT_API_URL']}; start it "
                "(`prefect server start`) or unset PREFECT_API_URL to use a temporary one")
    return None


def _own_server() -> bool:
    from flows.server import temporary_server

    return temporary_server() is not None


def _quiet_factory(previous):
    def factory(*args, **kwargs):
        record = previous(*args, **kwargs)
        exc = record.exc_info[1] if isinstance(record.exc_info, tuple) else None
        if exc is not None and describe(exc) is not None:
            record.exc_info, record.exc_text = None, None
        return record

    factory.v2a_quiet = True
    return factory


@contextmanager
def quiet_tracebacks(enabled: bool = True):
    """While active, log records carrying an exception that ``describe`` explains lose their traceback
    (Prefect logs one for every failed flow and task run); other records, bugs included, are untouched."""
    if not enabled:
        yield
        return
    previous = logging.getLogRecordFactory()
    logging.setLogRecordFactory(_quiet_factory(previous))
    try:
        yield
    finally:
        logging.setLogRecordFactory(previous)


def quiet_worker_tracebacks(environ=os.environ) -> bool:
    """In a process that a Prefect worker started to run one flow run (a deployment run: the worker sets
    PREFECT__FLOW_RUN_ID), user errors lose their traceback for the life of the process, as under the
    `v2a` command. Prefect logs them after the flow function has returned (twice: the flow run, then
    the engine), so no context inside the flow can reach those records. True when installed here."""
    if not environ.get("PREFECT__FLOW_RUN_ID"):
        return False
    current = logging.getLogRecordFactory()
    if not getattr(current, "v2a_quiet", False):
        logging.setLogRecordFactory(_quiet_factory(current))
    return True


def require_table(uri: str, what: str, remedy: str) -> None:
    """Refuse, before any flow starts, a command whose input table is not there yet."""
    from v2a.core import storage

    if not storage.list_files(uri, ".parquet"):
        raise FileNotFoundError(f"no {what} at {uri}; {remedy}")


def require_clips(out: str) -> None:
    from v2a.io.layout import RunLayout

    require_table(RunLayout(out).clips, "clips table",
                  f"run `v2a ingest --out {out} --csv CSV --videos DIR` (or `--images DIR`) first")


def require_location(out: str) -> None:
    from v2a.core import storage

    if not storage.exists(out):
        raise FileNotFoundError(f"{out}: no such output location; give the --out of an earlier run")


def require_checkpoint(checkpoint: str) -> None:
    """A mapper checkpoint folder whose config.json is a JSON object (what `v2a train` writes)."""
    import json

    from v2a.core import storage
    from v2a.core.checkpoints import CONFIG_NAME, WEIGHTS_NAME

    remedy = f"give --checkpoint a folder written by `v2a train` ({CONFIG_NAME} + {WEIGHTS_NAME})"
    config = storage.join(checkpoint, CONFIG_NAME)
    if not storage.exists(config):
        raise FileNotFoundError(f"{checkpoint} has no {CONFIG_NAME}; {remedy}")
    fs, path = storage.filesystem(config)
    with fs.open(path, "r") as handle:
        try:
            values = json.load(handle)
        except ValueError as err:
            raise ValueError(f"{config} is not valid JSON ({err}); {remedy}") from err
    if not isinstance(values, dict):
        raise ValueError(f"{config} holds a JSON {type(values).__name__}, not the object of a mapper config; {remedy}")
