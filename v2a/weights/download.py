"""One file over HTTP(S): resumable, checked, and never left half-written under its final name.

Bytes go to ``NAME.part`` beside the target. A dropped connection is picked up where it stopped
with an HTTP ``Range`` request (a later run does the same with a ``.part`` left behind); a server
that ignores ``Range`` is read again from the start. When the last byte is in, the ``.part`` is
hashed; only a file whose size and every stated checksum match is renamed into place, and a
mismatch deletes the ``.part``.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import re
import socket
import time
import urllib.error
import urllib.request
from pathlib import Path

from v2a.weights.cache import PART_SUFFIX
from v2a.weights.sources import TIMEOUT_S, RemoteFile, user_agent

BLOCK = 1 << 20
RETRIES = 5
_TRANSIENT = (http.client.IncompleteRead, http.client.RemoteDisconnected, ConnectionError, socket.timeout,
              TimeoutError, urllib.error.URLError)


class WeightsError(ValueError):
    """A weights file could not be fetched as it should be (the CLI prints it as a one-line error)."""


class ChecksumError(WeightsError):
    """A downloaded file does not measure what its publisher (or the first download) says."""


class DownloadError(WeightsError):
    """The server refused the file, or the connection kept failing."""


class _Hashes:
    def __init__(self, checks: dict[str, str], size: int | None):
        self.sha256 = hashlib.sha256()
        self.md5 = hashlib.md5() if "md5" in checks else None
        self.git = None
        if "git-sha1" in checks and size is not None:  # a git blob id hashes a header, then the bytes
            self.git = hashlib.sha1(f"blob {size}\0".encode())

    def update(self, data: bytes) -> None:
        self.sha256.update(data)
        for h in (self.md5, self.git):
            if h is not None:
                h.update(data)

    def measured(self) -> dict[str, str]:
        out = {"sha256": self.sha256.hexdigest()}
        if self.md5 is not None:
            out["md5"] = self.md5.hexdigest()
        if self.git is not None:
            out["git-sha1"] = self.git.hexdigest()
        return out


def compare(checks: dict[str, str], measured: dict[str, str]) -> list[str]:
    """The checks that fail, as 'ALGO expected X, got Y' lines."""
    bad = []
    for algo, want in checks.items():
        if algo == "sha256-prefix":
            got = measured["sha256"]
            if not got.startswith(want.lower()):
                bad.append(f"sha256 should start {want}, is {got}")
        elif algo in measured and measured[algo] != want.lower():
            bad.append(f"{algo} expected {want}, got {measured[algo]}")
    return bad


def hash_file(path: Path, checks: dict[str, str] | None = None) -> dict[str, str]:
    hashes = _Hashes(checks or {}, path.stat().st_size)
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(BLOCK), b""):
            hashes.update(block)
    return hashes.measured()


def _open(url: str, offset: int):
    headers = {"User-Agent": user_agent()}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    try:
        return urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=TIMEOUT_S)
    except urllib.error.HTTPError as err:
        if err.code == 416:  # the kept bytes already reach (or pass) the end
            return err
        raise DownloadError(f"{url}: HTTP {err.code} {err.reason}") from None


def _total(resp, offset: int) -> int | None:
    match = re.match(r"bytes (\d+)-\d+/(\d+)", resp.headers.get("Content-Range", ""))
    if match:
        return int(match.group(2))
    length = resp.headers.get("Content-Length")
    return int(length) + (offset if resp.status == 206 else 0) if length else None


def download(remote: RemoteFile, target: Path, progress: bool = True, retries: int = RETRIES,
             backoff_s: float = 1.0) -> dict[str, str]:
    """Fetch ``remote`` to ``target``; returns the measured checksums (sha256 always)."""
    from tqdm.auto import tqdm

    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_name(target.name + PART_SUFFIX)
    size = remote.size
    bar = None
    attempt = 0
    while True:
        offset = part.stat().st_size if part.exists() else 0
        if size is not None and offset > size:  # not a prefix of this file
            part.unlink()
            offset = 0
        try:
            resp = _open(remote.url, offset)
            if resp.status == 416:
                resp.close()
                if size is not None and offset == size:
                    break
                part.unlink(missing_ok=True)  # an unusable leftover: start over
                continue
            if offset and resp.status != 206:  # Range ignored: the body is the whole file
                offset = 0
            total = _total(resp, offset)
            if size is None:
                size = total
            elif total is not None and total != size:
                resp.close()
                part.unlink(missing_ok=True)
                raise ChecksumError(f"{remote.url}: the server offers {total} bytes, the publisher states {size}")
            if bar is None and progress:
                bar = tqdm(total=size, initial=offset, unit="B", unit_scale=True, unit_divisor=1024,
                           desc=target.name, leave=True)
            elif bar is not None:
                bar.reset(total=size)
                bar.update(offset)
            with resp, open(part, "ab" if offset else "wb") as out:
                for block in iter(lambda: resp.read(BLOCK), b""):
                    out.write(block)
                    if bar is not None:
                        bar.update(len(block))
            got = part.stat().st_size
            if size is not None and got < size:  # the server closed early without an error
                raise http.client.IncompleteRead(b"", size - got)
            break
        except _TRANSIENT as exc:
            attempt += 1
            if attempt > retries:
                if bar is not None:
                    bar.close()
                raise DownloadError(f"{remote.url}: the connection failed {attempt} times "
                                    f"({exc.__class__.__name__}); run the fetch again to resume "
                                    f"from {part.stat().st_size if part.exists() else 0} bytes") from exc
            time.sleep(backoff_s * attempt)
    if bar is not None:
        bar.close()
    measured = hash_file(part, remote.checks)
    bad = compare(remote.checks, measured)
    if size is not None and part.stat().st_size != size:
        bad.insert(0, f"size expected {size}, got {part.stat().st_size}")
    if bad:
        part.unlink()
        raise ChecksumError(f"{target.name} from {remote.url} refused and deleted: " + "; ".join(bad))
    os.replace(part, target)
    return measured
