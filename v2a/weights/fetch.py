"""Fetch and verify registry entries, and make sure a profile's weights are there before a model is built."""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import time
from pathlib import Path

from v2a.core.offline import hub_offline
from v2a.weights.cache import Status, entry_dir, entry_for_path, read_manifest, status, write_manifest
from v2a.weights.download import ChecksumError, DownloadError, WeightsError, compare, download, hash_file
from v2a.weights.registry import Entry, RegistryError
from v2a.weights.sources import RemoteFile, remote_files

log = logging.getLogger(__name__)
USABLE = ("present", "unverified")


class WeightsOfflineError(WeightsError):
    """A fetch was asked for while offline mode is on."""


def offline() -> bool:
    return hub_offline()


def fetch_command(entries=(), profile: str | None = None) -> str:
    return f"v2a weights fetch --profile {profile}" if profile else "v2a weights fetch " + " ".join(entries)


@contextlib.contextmanager
def _locked(folder: Path):
    """One fetch of an entry at a time, across processes (parallel tasks may all want it)."""
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _record(rf: RemoteFile, measured: dict, size: int, checks: dict, how: str) -> dict:
    rec = {"size": size, "sha256": measured["sha256"], "url": rf.url, "checked": how}
    rec.update({f"publisher_{k}": v for k, v in checks.items() if how == "publisher"})
    return rec


def fetch_entry(entry: Entry, root: Path | None = None, progress: bool = True, **download_kw) -> Status:
    """Download whatever of ``entry`` is missing or damaged into the cache, checked; returns its status."""
    if offline():
        raise WeightsOfflineError(f"{entry.name}: offline mode is on (HF_HUB_OFFLINE / TRANSFORMERS_OFFLINE / "
                                  "V2A_OFFLINE); unset it to fetch, or copy the file in and set the profile "
                                  "field to its path")
    folder = entry_dir(entry, root)
    with _locked(folder):
        files = remote_files(entry)
        recorded = (read_manifest(entry, root) or {}).get("files", {})
        done = {}
        for rf in files:
            target = folder / rf.path
            prev = recorded.get(rf.path)
            checks, how = dict(rf.checks), rf.checked_by
            if not checks and prev and prev.get("sha256"):  # nothing from the publisher: hold it to the first download
                checks, how = {"sha256": prev["sha256"]}, "recorded at first download"
            elif not checks:
                how = "recorded at first download"
            if target.is_file() and prev and not prev.get("corrupt") and target.stat().st_size == prev["size"] \
                    and (rf.size is None or rf.size == prev["size"]) and not compare(checks, {"sha256": prev["sha256"],
                                                                                          **_prev_checks(prev)}):
                done[rf.path] = prev
                continue
            if target.is_file() and not prev:  # put there by hand, or a fetch cut before its record was written
                measured = hash_file(target, checks)
                if (rf.size is None or target.stat().st_size == rf.size) and not compare(checks, measured) \
                        and (checks or entry.kind == "url"):
                    done[rf.path] = _record(rf, measured, target.stat().st_size, checks, how)
                    continue
            want = RemoteFile(rf.path, rf.url, rf.size, checks, how)
            log.info("fetching %s/%s from %s", entry.name, rf.path, rf.url)
            measured = download(want, target, progress=progress, **download_kw)
            done[rf.path] = _record(rf, measured, target.stat().st_size, checks, how)
        write_manifest(entry, {"entry": entry.name, "source": entry.where, "licence": entry.licence,
                               "fetched": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "files": done}, root)
    return status(entry, root)


def _prev_checks(prev: dict) -> dict:
    return {k[len("publisher_"):]: v for k, v in prev.items() if k.startswith("publisher_") and k != "publisher_sha256"}


def verify_entry(entry: Entry, root: Path | None = None) -> Status:
    """Read every byte of an entry and compare with its record (or, for a file put in by hand, the
    publisher's checksum; with none, its sha256 is recorded now)."""
    st = status(entry, root)
    if st.state in ("missing", "partial"):
        return st
    folder = entry_dir(entry, root)
    manifest = read_manifest(entry, root)
    if manifest and manifest.get("unreadable"):
        return st
    if manifest:
        bad = []
        for name, rec in manifest.get("files", {}).items():
            path = folder / name
            if not path.is_file():
                bad.append(f"{name}: missing")
                continue
            checks = {"sha256": rec["sha256"], **_prev_checks(rec)}
            problems = compare(checks, hash_file(path, checks))
            if path.stat().st_size != rec["size"]:
                problems.insert(0, f"size expected {rec['size']}, got {path.stat().st_size}")
            bad += [f"{name}: {p}" for p in problems]
            if problems:  # remembered, so that the next fetch replaces it (sizes alone cannot tell)
                rec["corrupt"] = True
        if bad:
            write_manifest(entry, manifest, root)
            return Status(entry, "corrupt", st.size, st.expected, "; ".join(bad), st.path)
        return Status(entry, "present", st.size, st.expected, "checksums match", st.path)
    target = st.path
    checks = {k: v for k, v in (("sha256", entry.sha256), ("sha256-prefix", entry.sha256_prefix),
                                ("md5", entry.md5)) if v}
    measured = hash_file(target, checks)
    problems = compare(checks, measured)
    if problems:
        return Status(entry, "corrupt", st.size, st.expected, "; ".join(problems), target)
    how = "registry" if checks else "recorded at first verify"
    rf = RemoteFile(target.name, entry.where, None, checks)
    write_manifest(entry, {"entry": entry.name, "source": entry.where, "licence": entry.licence,
                           "fetched": None, "files": {target.name: _record(rf, measured, target.stat().st_size,
                                                                          checks, how)}}, root)
    return Status(entry, "present", st.size, st.expected, how, target)


__all__ = ["ChecksumError", "DownloadError", "RegistryError", "WeightsError", "WeightsOfflineError", "fetch_entry",
           "fetch_command", "offline", "verify_entry"]
