"""Stage 1: a VGGSound-format CSV plus its video folder, or an image folder, becomes the `clips` table."""

from __future__ import annotations

import csv
import math
import posixpath
import re

from v2a.core import storage
from v2a.core.stopping import raise_if_stopped
from v2a.io import clips as clips_io
from v2a.io.clips import check_clip_id, is_safe_clip_id  # noqa: F401  (check_clip_id: older imports)
from v2a.media import IMAGE_EXTENSIONS
from v2a.io.layout import RunLayout
from v2a.stages.shape import Stage, StageRun, WorkItem

SPLITS = ("train", "test", "val")


class IngestError(ValueError):
    pass


def vggsound_clip_id(youtube_id: str, start_seconds: int) -> str:
    return f"{youtube_id}_{int(start_seconds):06d}"


def _decode_csv(data: bytes) -> str:
    """The CSV as text; a byte that is not UTF-8 survives as a lone surrogate so its line can be reported
    (``_bad_bytes``) while every other line still ingests. A leading byte-order mark (Excel) is dropped."""
    return data.removeprefix(b"\xef\xbb\xbf").decode("utf-8", errors="surrogateescape")


def _bad_bytes(fields: list[str]) -> str | None:
    """The first byte of a record that was not UTF-8, as hex (None when the record is clean)."""
    bad = next((ch for text in fields for ch in text if "\udc80" <= ch <= "\udcff"), None)
    return f"0x{ord(bad) - 0xDC00:02x}" if bad is not None else None


def _start_seconds(text: str) -> int:
    """A whole, non-negative number of seconds ("12" or "12.0"); ValueError for anything else."""
    value = float(text)
    if not math.isfinite(value) or value < 0:
        raise ValueError(text)
    return int(value)


def _records(text: str):
    """(line number, fields) per line. VGGSound's records are one line each, so each line is parsed on
    its own: a stray quote spoils its own line, not every line after it."""
    for lineno, line in enumerate(text.split("\n"), start=1):
        raise_if_stopped()
        line = line.removesuffix("\r")
        try:
            yield lineno, next(csv.reader([line]), [])
        except csv.Error as err:
            yield lineno, err


def read_vggsound_csv(csv_uri: str, videos_uri: str, dataset: str = "vggsound") -> tuple[list[dict], list[dict]]:
    """Return (clip rows, error rows). Bad CSV lines are reported with their line number, never fatal."""
    fs, path = storage.filesystem(csv_uri)
    if not fs.exists(path):
        raise IngestError(f"CSV not found: {csv_uri}")
    with fs.open(path, "rb") as handle:
        text = _decode_csv(handle.read())
    rows, errors, seen = [], [], {}  # clip id -> the line that gave it first
    for lineno, rec in _records(text):
        where = f"{csv_uri}:{lineno}"
        if isinstance(rec, csv.Error):
            errors.append(_err(f"line{lineno}", where, f"line {lineno}: not parsable as CSV ({rec})"))
            continue
        if not rec or all(not c.strip() for c in rec):
            continue
        byte = _bad_bytes(rec)
        if byte is not None:
            errors.append(_err(f"line{lineno}", where, f"line {lineno}: byte {byte} is not UTF-8 text; "
                                                        "save the CSV as UTF-8"))
            continue
        if len(rec) != 4:
            errors.append(_err(f"line{lineno}", where, f"line {lineno}: expected 4 fields "
                                                        f"(youtube_id,start_seconds,label,split), got {len(rec)}"))
            continue
        youtube_id, start, label, split = (c.strip() for c in rec)
        try:
            start_s = _start_seconds(start)
        except ValueError:
            if lineno == 1:
                continue  # a header row, although VGGSound has none
            errors.append(_err(f"line{lineno}", where, f"line {lineno}: start_seconds {start!r} is not a "
                                                        "whole number of seconds >= 0"))
            continue
        if not youtube_id:
            errors.append(_err(f"line{lineno}", where, f"line {lineno}: youtube_id is empty"))
            continue
        clip_id = vggsound_clip_id(youtube_id, start_s)
        if not is_safe_clip_id(clip_id):
            errors.append(_err(f"line{lineno}", where, f"line {lineno}: clip id {clip_id!r} contains characters "
                                                        "not allowed in a file name"))
            continue
        if split not in SPLITS:
            errors.append(_err(clip_id, where, f"line {lineno}: unknown split {split!r}; accepted: {', '.join(SPLITS)}"))
            continue
        if clip_id in seen:
            # The row names this line, not the clip id: the clip kept (from the first line) has no error.
            errors.append(_err(f"line{lineno}", where, f"line {lineno}: duplicate clip id {clip_id!r} (first given "
                                                        f"on line {seen[clip_id]}, which is kept); this line is skipped"))
            continue
        seen[clip_id] = lineno
        rows.append({"clip_id": clip_id, "dataset": dataset, "split": split, "label": label or None, "kind": "video",
                     "uri": storage.join(videos_uri, f"{clip_id}.mp4"), "youtube_id": youtube_id,
                     "start_seconds": start_s})
    return rows, errors


def _image_id(rel: str) -> str:
    """The id of an image from its path under the folder, without its extension: `dog/a.jpg` → `dog__a`."""
    stem = "__".join(rel.split("/"))
    stem = stem[: -len(posixpath.splitext(stem)[1])]
    return re.sub(r"[^\w\-.]", "_", stem)


def scan_image_folder(images_uri: str, dataset: str = "imagehear", split: str = "test") -> tuple[list[dict], list[dict]]:
    """(rows, error rows) for the images in label sub-folders (ImageHear-like); a file directly in the
    folder has no label. Extensions match in any case (`.JPG`). Two files whose ids would be the same
    (`x.jpg` and `x.png`) both keep their extension in the id (`x.jpg`, `x.png`); files that would still
    share one (`a b.png` and `a_b.png`) are refused, each error naming the file kept."""
    root_fs, root = storage.filesystem(images_uri)
    if not root_fs.exists(root):
        raise IngestError(f"image folder not found: {images_uri}")
    found = []
    for uri in storage.list_files(images_uri, ""):
        _, path = storage.filesystem(uri)
        rel = path[len(root):].strip("/")
        if posixpath.splitext(rel)[1].lower() in IMAGE_EXTENSIONS:
            found.append((rel, uri))
    by_stem: dict[str, int] = {}
    for rel, _ in found:
        by_stem[_image_id(rel)] = by_stem.get(_image_id(rel), 0) + 1
    rows, errors, kept = [], [], {}
    for rel, uri in sorted(found):
        clip_id = _image_id(rel)
        if by_stem[clip_id] > 1:
            clip_id = f"{clip_id}.{posixpath.splitext(rel)[1][1:].lower()}"
        if clip_id in kept:
            errors.append(_err(clip_id, uri, f"{rel} and {kept[clip_id]} both give clip id {clip_id!r}; "
                                             f"{kept[clip_id]} is kept: rename one of them"))
            continue
        kept[clip_id] = rel
        parts = rel.split("/")
        rows.append({"clip_id": clip_id, "dataset": dataset, "split": split,
                     "label": parts[-2] if len(parts) > 1 else None, "kind": "image",
                     "uri": uri, "youtube_id": None, "start_seconds": None})
    return sorted(rows, key=lambda r: r["clip_id"]), errors


def read_image_folder(images_uri: str, dataset: str = "imagehear", split: str = "test") -> list[dict]:
    """The rows of ``scan_image_folder`` (its errors dropped)."""
    return scan_image_folder(images_uri, dataset, split)[0]


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
        r, e = scan_image_folder(images)
        rows += r
        errors += e
    if not rows:
        raise IngestError("no clips found: check the CSV and folders given")
    clips_io.write_clips(rows, out_uri)
    if errors_uri:
        _write_errors(errors_uri, errors)
    by_split: dict[str, int] = {}
    for r in rows:
        by_split[r["split"]] = by_split.get(r["split"], 0) + 1
    return {"n_clips": len(rows), "n_errors": len(errors), "by_split": by_split, "errors": errors}


# --------------------------------------------------------------------------- the stage's shape (v2a.stages.shape)
# One item: the table is written whole (the task cache keeps an unchanged CSV from being read again).

def _run(item: WorkItem, section, run: StageRun, models, report) -> dict:
    layout = RunLayout(run.out)
    summary = ingest(layout.clips, csv=section.csv, videos=section.videos, images=section.images,
                     dataset=section.dataset, errors_uri=layout.errors)
    summary.pop("errors", None)
    report(tables=1)
    return summary


def _summarize(results, section, run: StageRun, closing=None) -> dict:
    (result,) = results
    summary = {k: result[k] for k in ("n_clips", "n_errors", "by_split")}
    state = ("from the task cache" if result["cached"] else f"{summary['n_errors']} bad rows or files"
             + (f" (reasons: v2a status --out {run.out})" if summary["n_errors"] else ""))
    return {**summary, "cached": result["cached"],
            "line": f"ingest: {summary['n_clips']} clips {summary['by_split']}, {state}"}


STAGE = Stage(
    name="ingest", section="data", run=_run, summarize=_summarize, task_label="clips",
    mapped=False,
    plan=lambda section, run, models: [WorkItem("table", {}, {"tables": 1})],
    outputs=lambda item, section, run: [RunLayout(run.out).clips],
    # The CSV and the image folder are what ingest reads; the video folder only prefixes the clips' URIs.
    reads=lambda section, run: [section.csv, section.images],
)
