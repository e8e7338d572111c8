"""Every location is a URI (local path, file://, s3://, ...); these helpers hide fsspec and write atomically."""

from __future__ import annotations

import errno
import os
import posixpath
import uuid
from contextlib import contextmanager

import fsspec


def filesystem(uri: str):
    fs, path = fsspec.core.url_to_fs(str(uri))
    return fs, path


def join(base: str, *parts: str) -> str:
    base = str(base)
    return posixpath.join(base, *parts) if "://" in base else str(__import__("pathlib").Path(base, *parts))


def exists(uri: str) -> bool:
    fs, path = filesystem(uri)
    return fs.exists(path)


def makedirs(uri: str) -> None:
    fs, path = filesystem(uri)
    fs.makedirs(path, exist_ok=True)


# How libraries that raise their own exception types (safetensors, pyarrow) spell the OS errors.
_DISK_PHRASES = {"No space left on device": errno.ENOSPC, "Disk quota exceeded": errno.EDQUOT,
                 "Read-only file system": errno.EROFS}


def _fault_code(err: BaseException, temporaries: tuple[str, ...]) -> int | None:
    """The errno of a storage fault that does not name a file of its own (or names only our temporary)."""
    if isinstance(err, OSError) and err.errno is not None:
        return err.errno if err.filename in (None, "", *temporaries) else None
    if isinstance(err, Exception) and getattr(err, "filename", None) in (None, ""):
        return next((code for phrase, code in _DISK_PHRASES.items() if phrase in str(err)), None)
    return None


@contextmanager
def faults_named(uri, *temporaries: str):
    """A storage fault inside (a full disk, a read-only or forbidden folder) is raised as an OSError
    naming `uri`, the file the user asked for, never one of our hidden temporaries."""
    try:
        yield
    except BaseException as err:
        code = _fault_code(err, tuple(str(t) for t in temporaries))
        if code is None:
            raise
        cls = type(err) if isinstance(err, OSError) else OSError
        raise cls(code, os.strerror(code), str(uri)) from None


@contextmanager
def atomic_write(uri: str, mode: str = "wb"):
    """Write to a temporary sibling, then rename: readers never see a half-written file."""
    fs, path = filesystem(uri)
    parent = posixpath.dirname(path)
    if parent:
        fs.makedirs(parent, exist_ok=True)
    tmp = posixpath.join(parent, f".{posixpath.basename(path)}.tmp-{uuid.uuid4().hex[:8]}")
    with faults_named(uri, tmp, fs._strip_protocol(tmp)):
        try:
            with fs.open(tmp, mode) as handle:
                yield handle
            fs.mv(tmp, path)
        except BaseException:
            if fs.exists(tmp):
                fs.rm(tmp)
            raise


def list_files(uri: str, suffix: str) -> list[str]:
    """Files under a folder ending in suffix (temporary files skipped), as URIs in sorted order."""
    fs, path = filesystem(uri)
    if not fs.exists(path):
        return []
    if fs.isfile(path):
        return [str(uri)]
    protocol = fs.protocol[0] if isinstance(fs.protocol, (tuple, list)) else fs.protocol
    found = sorted(p for p in fs.find(path) if p.endswith(suffix) and not posixpath.basename(p).startswith("."))
    if "://" in str(uri):
        return [f"{protocol}://{p}" if not p.startswith(f"{protocol}://") else p for p in found]
    return found


def is_local(uri: str) -> bool:
    return "://" not in str(uri) or str(uri).startswith("file://")


def local_path(uri: str) -> str:
    return str(uri).removeprefix("file://")


def canonical(uri: str) -> str:
    """The full form of a location: an absolute local path, or the URI without a trailing slash.
    Two spellings of one folder (`runs/a`, `./runs/a/`) give the same string."""
    if is_local(uri):
        return str(__import__("pathlib").Path(local_path(uri)).expanduser().resolve())
    return str(uri).rstrip("/")


def download_dir(uri: str, local_dir: str) -> int:
    """Copy every file under a folder URI into a local folder (keeping the layout); returns the count."""
    fs, root = filesystem(uri)
    if not fs.exists(root):
        return 0
    root = root.rstrip("/") + "/"
    files = [p for p in fs.find(root) if p.startswith(root)]
    for p in files:
        dest = os.path.join(local_dir, *p[len(root):].split("/"))
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        fs.get_file(p, dest)
    return len(files)


def upload_dir(local_dir: str, uri: str, skip=lambda rel: False) -> int:
    """Copy every file of a local folder under a folder URI (each file written atomically); returns the count."""
    count = 0
    for here, _, names in os.walk(local_dir):
        for name in sorted(names):
            rel = os.path.relpath(os.path.join(here, name), local_dir).replace(os.sep, "/")
            if skip(rel):
                continue
            with open(os.path.join(here, name), "rb") as src, atomic_write(join(uri, rel)) as dst:
                dst.write(src.read())
            count += 1
    return count


def remove(uri: str, recursive: bool = False) -> None:
    fs, path = filesystem(uri)
    if fs.exists(path):
        fs.rm(path, recursive=recursive)


def glob(pattern: str) -> list[str]:
    """Paths matching a glob pattern, as URIs of the pattern's own kind, sorted."""
    fs, path = filesystem(pattern)
    found = sorted(fs.glob(path))
    if "://" not in str(pattern):
        return found
    protocol = fs.protocol[0] if isinstance(fs.protocol, (tuple, list)) else fs.protocol
    return [p if "://" in p else f"{protocol}://{p}" for p in found]


def sha256_of(uri) -> str:
    """Hex sha256 of a file's bytes, read in 1 MiB blocks (checkpoints can be GBs)."""
    import hashlib

    fs, path = filesystem(str(uri))
    digest = hashlib.sha256()
    with fs.open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
