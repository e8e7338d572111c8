"""An entry's files as its publisher lists them: URL, size and checksums.

Hugging Face and Zenodo state a size and a checksum for every file through their APIs (the hub:
the LFS sha256, or the git blob id of a small file; Zenodo: an md5), so those are read at fetch
time rather than copied into the registry. A plain URL has only what the registry records.
``HF_ENDPOINT`` (the hub's own variable) and ``V2A_ZENODO_ENDPOINT`` point at mirrors.
"""

from __future__ import annotations

import fnmatch
import json
import logging
import os
import posixpath
import re
import urllib.parse
import urllib.request
from dataclasses import dataclass, field

from v2a.weights.registry import Entry

log = logging.getLogger(__name__)

TIMEOUT_S = 30
# Weight formats a component may hold twice; safetensors wins where both are there.
_PICKLE_WEIGHTS = (".bin", ".pt", ".pth", ".ckpt", ".msgpack", ".h5", ".onnx")


@dataclass
class RemoteFile:
    path: str                     # relative to the entry's cache folder
    url: str
    size: int | None = None
    checks: dict[str, str] = field(default_factory=dict)   # algorithm -> expected hex (sha256, md5, git-sha1, sha256-prefix)
    checked_by: str = "publisher"  # who states ``checks``: publisher | registry | none


def hf_endpoint() -> str:
    return os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")


def zenodo_endpoint() -> str:
    return os.environ.get("V2A_ZENODO_ENDPOINT", "https://zenodo.org").rstrip("/")


def user_agent() -> str:
    from v2a import __version__

    return f"v2a/{__version__} (weights fetch)"


def get_json(url: str):
    req = urllib.request.Request(url, headers={"User-Agent": user_agent(), "Accept": "application/json"})
    with urllib.request.urlopen(req, timeout=TIMEOUT_S) as resp:
        body = json.loads(resp.read().decode("utf-8"))
        link = resp.headers.get("Link", "")
    nxt = re.search(r'<([^>]+)>;\s*rel="next"', link)
    return body, (nxt.group(1) if nxt else None)


def _registry_checks(entry: Entry) -> dict[str, str]:
    checks = {}
    if entry.sha256:
        checks["sha256"] = entry.sha256.lower()
    if entry.sha256_prefix:
        checks["sha256-prefix"] = entry.sha256_prefix.lower()
    if entry.md5:
        checks["md5"] = entry.md5.lower()
    return checks


def _hf_tree(repo: str, revision: str) -> list[dict]:
    url = f"{hf_endpoint()}/api/models/{repo}/tree/{urllib.parse.quote(revision, safe='')}?recursive=true"
    items = []
    while url:
        page, url = get_json(url)
        items.extend(page)
    return [i for i in items if i.get("type") == "file"]


def _selected(paths: list[str], include, exclude, prefer_safetensors: bool) -> list[str]:
    chosen = [p for p in paths if any(fnmatch.fnmatch(p, pat) for pat in include)
              and not any(fnmatch.fnmatch(p, pat) for pat in exclude or ())]
    if prefer_safetensors:
        safe_dirs = {posixpath.dirname(p) for p in chosen if p.endswith(".safetensors")}
        chosen = [p for p in chosen if not (p.endswith(_PICKLE_WEIGHTS) and posixpath.dirname(p) in safe_dirs)]
    return sorted(chosen)


def hf_files(entry: Entry) -> list[RemoteFile]:
    src = entry.source
    repo, revision = src["hf"], str(src.get("revision", "main"))
    tree = {i["path"]: i for i in _hf_tree(repo, revision)}
    if "path" in src:
        if src["path"] not in tree:
            raise FileNotFoundError(f"{entry.name}: {repo} has no file {src['path']!r} at revision {revision}")
        wanted, store = [src["path"]], {src["path"]: entry.stored_name}
    else:
        wanted = _selected(list(tree), src.get("include", ["*"]), src.get("exclude"),
                           src.get("prefer_safetensors", True))
        if not wanted:
            raise FileNotFoundError(f"{entry.name}: no file of {repo}@{revision} matches {src.get('include')}")
        store = {p: p for p in wanted}
    out = []
    for path in wanted:
        item = tree[path]
        lfs = item.get("lfs") or {}
        checks = {"sha256": lfs["oid"]} if lfs.get("oid") else {"git-sha1": item["oid"]} if item.get("oid") else {}
        checks.update(_registry_checks(entry) if "path" in src else {})
        url = f"{hf_endpoint()}/{repo}/resolve/{urllib.parse.quote(revision, safe='')}/{urllib.parse.quote(path)}"
        out.append(RemoteFile(store[path], url, int(lfs.get("size") or item.get("size") or 0) or None, checks))
    return out


def zenodo_files(entry: Entry) -> list[RemoteFile]:
    record, key = str(entry.source["zenodo"]), entry.source["key"]
    url = f"{zenodo_endpoint()}/records/{record}/files/{urllib.parse.quote(key, safe='')}?download=1"
    try:
        meta, _ = get_json(f"{zenodo_endpoint()}/api/records/{record}")
    except (OSError, ValueError) as exc:  # the API down or changed: the file itself may still be served
        log.warning("%s: Zenodo record %s metadata unavailable (%s); fetching without its md5", entry.name, record, exc)
        meta = {"files": [{"key": key}]}
    files = meta.get("files") or []
    if isinstance(files, dict):  # the InvenioRDM form: {"entries": {key: {...}}}
        files = list((files.get("entries") or {}).values())
    item = next((f for f in files if f.get("key") == key or f.get("filename") == key), None)
    if item is None:
        raise FileNotFoundError(f"{entry.name}: Zenodo record {record} lists no file {key!r}")
    checks = _registry_checks(entry)
    algo, _, value = str(item.get("checksum", "")).partition(":")
    if algo in ("md5", "sha256") and value:
        checks[algo] = value.lower()
    size = item.get("size", item.get("filesize"))
    return [RemoteFile(entry.stored_name, url, int(size) if size else entry.size, checks)]


def url_files(entry: Entry) -> list[RemoteFile]:
    checks = _registry_checks(entry)
    return [RemoteFile(entry.stored_name, entry.source["url"], entry.size, checks,
                       "registry" if checks else "none")]


def remote_files(entry: Entry) -> list[RemoteFile]:
    """The files to download for ``entry``, with what each must measure."""
    return {"hf": hf_files, "zenodo": zenodo_files, "url": url_files}[entry.kind](entry)
