"""Locations and pictures in Markdown that opens in a browser (Prefect artifacts, run summaries).

A page served over http cannot open a local file: browsers refuse `file://` links and images from
it ("Not allowed to load local resource"). So a local location is shown as a path to copy, with a
word on how to open it, and never as a link; an http(s) location is a link; an S3 or GCS location
is a link to its https address (which opens where the object is readable: a public bucket, a
local MinIO), with its URI to copy beside it. Pictures are embedded as data URIs, so they show
wherever the Markdown is rendered, with no file server behind it.
"""

from __future__ import annotations

import base64
import os
from urllib.parse import quote

from v2a.core import storage

# A picture past this size is named, not embedded: artifacts live in the Prefect database.
MAX_INLINE_BYTES = 512 * 1024

LOCAL_NOTE = ("a path on the machine that ran the flow (a browser does not open local files from a web page: "
              "copy it into a file manager or a browser's address bar there)")

_S3_ENDPOINT_VARIABLES = ("FSSPEC_S3_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL")


def web_url(uri: str) -> str | None:
    """The http(s) address at which a browser can ask for a location, or None (a local path, a store without one).

    s3://B/K goes through the endpoint fsspec is configured with (FSSPEC_S3_ENDPOINT_URL, or the AWS
    variables), else AWS's own `https://B.s3.amazonaws.com/K`; gs://B/K through storage.googleapis.com.
    """
    uri = str(uri)
    scheme, _, rest = uri.partition("://")
    if not rest:
        return None
    scheme = scheme.lower()
    if scheme in ("http", "https"):
        return uri
    bucket, _, key = rest.partition("/")
    key = quote(key)
    if scheme in ("s3", "s3a"):
        endpoint = next((os.environ[v] for v in _S3_ENDPOINT_VARIABLES if os.environ.get(v)), None)
        if endpoint:
            return f"{endpoint.rstrip('/')}/{bucket}/{key}"
        return f"https://{bucket}.s3.amazonaws.com/{key}"
    if scheme in ("gs", "gcs"):
        return f"https://storage.googleapis.com/{bucket}/{key}"
    return None


def location(uri: str, label: str | None = None, how: str | None = LOCAL_NOTE) -> str:
    """One line of Markdown naming a location: a link where a browser can open it, else the path as
    code (copyable) followed by `how` to open it."""
    url = web_url(uri)
    if url is not None:
        link = f"[{label or uri}]({url})"
        return link if url == str(uri) else f"{link} (`{uri}`)"
    shown = storage.canonical(uri)
    return (f"{label}: " if label else "") + f"`{shown}`" + (f" — {how}" if how else "")


def inline_png(uri: str, alt: str, max_bytes: int = MAX_INLINE_BYTES) -> str | None:
    """`![alt](data:image/png;base64,...)` for a PNG file (any location), or None when it is missing or
    larger than max_bytes."""
    if not storage.exists(uri):
        return None
    fs, path = storage.filesystem(uri)
    with fs.open(path, "rb") as handle:
        png = handle.read(max_bytes + 1)
    if len(png) > max_bytes:
        return None
    return f"![{alt}](data:image/png;base64,{base64.b64encode(png).decode('ascii')})"


def picture(uri: str, alt: str, max_bytes: int = MAX_INLINE_BYTES) -> str:
    """A picture embedded when it fits, and its location in words either way."""
    embedded = inline_png(uri, alt, max_bytes)
    where = location(uri, label=alt, how=None)
    return f"{embedded}\n\n{where}" if embedded else where
