"""Stage 1: a VGGSound-format CSV plus its video folder, or an image folder, becomes the `clips` table."""

from __future__ import annotations

import csv
import io
import re

from storage_schemas import clips as clips_schema
from v2a import storage
from v2a.io import clips as clips_io
from v2a.media import IMAGE_EXTENSIONS

SPLITS = ("train", "test", "val")
_SAFE_ID = re.compile(r"^[\w\-.]+$")


class IngestError(ValueError):
    pass


def vggsound_clip_id(youtube_id: str, start_seconds: int) -> str:
    return f"{youtube_id}_{int(start_seconds):06d}"


def _safe_id(clip_id: str) -> bool:
    # Ids become file names later: nothing that could climb out of the output folder. Unicode letters
    # and digits (\w) are allowed: they are file-name safe everywhere this runs.
    return bool(_SAFE_ID.match(clip_id)) and clip_id not in (".", "..") and ".." not in clip_id


def check_clip_id(clip_id: str) -> str:
    """The id, if it is safe as a file name; a table written by hand must not steer writes elsewhere."""
    if not isinstance(clip_id, str) or not _safe_id(clip_id):
        raise ValueError(f"clip id {clip_id!r} cannot name a file: only letters, digits, '_', '-' and '.' "
                         "are accepted, and no '..'")
    return clip_id


def read_vggsound_csv(csv_uri: str, videos_uri: str, dataset: str = "vggsound") -> tuple[list[dict], list[dict]]:
    """Return (clip rows, error rows). Bad CSV lines are reported, never fatal."""
    fs, path = storage.filesystem(csv_uri)
    if not fs.exists(path):
        raise IngestError(f"CSV not found: {csv_uri}")
    with fs.open(path, "rb") as handle:
        text = handle.read().decode("utf-8")
    rows, errors, seen = [], [], set()
    for lineno, rec in enumerate(csv.reader(io.StringIO(text)), start=1):
        if not rec or all(not c.strip() for c in rec):
            continue
        where = f"{csv_uri}:{lineno}"
        if len(rec) != 4:
            errors.append(_err(f"line{lineno}", where, f"expected 4 fields (youtube_id,start_seconds,label,split), got {len(rec)}"))
            continue
        youtube_id, start, label, split = (c.strip() for c in rec)
        try:
            start_s = int(float(start))
        except ValueError:
            if lineno == 1:
                continue  # a header row, although VGGSound has none
            errors.append(_err(f"line{lineno}", where, f"start_seconds {start!r} is not a number"))
            continue
        clip_id = vggsound_clip_id(youtube_id, start_s)
        if not _safe_id(clip_id):
            errors.append(_err(f"line{lineno}", where, f"clip id {clip_id!r} contains characters not allowed in a file name"))
            continue
        if split not in SPLITS:
            errors.append(_err(clip_id, where, f"unknown split {split!r}; accepted: {', '.join(SPLITS)}"))
            continue
        if clip_id in seen:
            errors.append(_err(clip_id, where, "duplicate clip id; the first occurrence is kept"))
            continue
        seen.add(clip_id)
        rows.append({"clip_id": clip_id, "dataset": dataset, "split": split, "label": label or None, "kind": "video",
                     "uri": storage.join(videos_uri, f"{clip_id}.mp4"), "youtube_id": youtube_id,
                     "start_seconds": start_s})
    return rows, errors


def read_image_folder(images_uri: str, dataset: str = "imagehear", split: str = "test") -> list[dict]:
    """Images in label sub-folders (ImageHear-like); a file directly in the folder has no label."""
    root_fs, root = storage.filesystem(images_uri)
    if not root_fs.exists(root):
        raise IngestError(f"image folder not found: {images_uri}")
    rows = []
    for ext in IMAGE_EXTENSIONS:
        for uri in storage.list_files(images_uri, ext):
            _, path = storage.filesystem(uri)
            rel = path[len(root):].strip("/")
            parts = rel.split("/")
            label = parts[-2] if len(parts) > 1 else None
            stem = "__".join(parts)[: -len(ext)]
            clip_id = re.sub(r"[^\w\-.]", "_", stem)
            rows.append({"clip_id": clip_id, "dataset": dataset, "split": split, "label": label, "kind": "image",
                         "uri": uri, "youtube_id": None, "start_seconds": None})
    return sorted(rows, key=lambda r: r["clip_id"])


def _err(clip_id: str, uri: str, reason: str) -> dict:
    return {"clip_id": clip_id, "stage": "ingest", "uri": uri, "reason": reason}


def _write_errors(errors_uri: str, errors: list[dict]) -> None:
    """This ingest's error rows replace the previous ingest's (one part under a fixed key)."""
    from storage_schemas import errors as errors_schema
    from v2a.io import parquet

    uri = storage.join(errors_uri, parquet.part_name("ingest"))
    if errors:
        parquet.write_table(errors, uri, errors_schema.SCHEMA, "errors")
    else:
        storage.remove(uri)


def ingest(out_uri: str, csv: str | None = None, videos: str | None = None, images: str | None = None,
           dataset: str = "vggsound", errors_uri: str | None = None) -> dict:
    """Write the clips table; return a summary {n_clips, n_errors, by_split}."""
    rows, errors = [], []
    if csv:
        if not videos:
            raise IngestError("a video folder is required with a CSV")
        r, e = read_vggsound_csv(csv, videos, dataset)
        rows += r
        errors += e
    if images:
        rows += read_image_folder(images)
    if not rows:
        raise IngestError("no clips found: check the CSV and folders given")
    clips_io.write_clips(rows, out_uri)
    if errors_uri:
        _write_errors(errors_uri, errors)
    by_split: dict[str, int] = {}
    for r in rows:
        by_split[r["split"]] = by_split.get(r["split"], 0) + 1
    return {"n_clips": len(rows), "n_errors": len(errors), "by_split": by_split, "errors": errors}
