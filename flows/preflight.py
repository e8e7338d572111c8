"""What a `v2a` command checks before Prefect starts: each mistake one line, exit status 2, in a moment.

Inputs exist and can be read (the CSV, the video and image folders), profile names resolve, every
split named exists in the data (before ingest: in the CSV, whose splits are VGGSound's), the output
location and the folders a run writes in it can be written, and no other run holds it. Prefect's
start-up alone takes seconds, and a mistake found by a task is retried and logged many times over;
these checks cost milliseconds (reading the split column of VGGSound's CSV, 199,176 lines, well
under a second).
"""

from __future__ import annotations

import csv
import io
import os

from v2a.core import storage
from v2a.config import check_profile


class PreflightError(ValueError):
    """A mistake found before any work: the message names it and the remedy."""


def readable_file(uri: str, what: str) -> None:
    """An input file that exists and can be opened (its first byte read)."""
    fs, path = storage.filesystem(uri)
    if not fs.exists(path):
        raise PreflightError(f"{what} {uri}: not found; check the path")
    if fs.isdir(path):
        raise PreflightError(f"{what} {uri} is a folder, a file was expected")
    try:
        with fs.open(path, "rb") as handle:
            handle.read(1)
    except PermissionError:
        raise PreflightError(f"{what} {uri} cannot be read (permission denied); change its permissions") from None


def readable_folder(uri: str, what: str) -> None:
    """An input folder that exists and can be listed."""
    fs, path = storage.filesystem(uri)
    if not fs.exists(path):
        raise PreflightError(f"{what} {uri}: not found; check the path")
    if not fs.isdir(path):
        raise PreflightError(f"{what} {uri} is a file, a folder was expected")
    if storage.is_local(uri) and not os.access(storage.local_path(uri), os.R_OK | os.X_OK):
        raise PreflightError(f"{what} {uri} cannot be read (permission denied); change its permissions")


def data_inputs(csv_uri: str | None, videos: str | None, images: str | None) -> None:
    if not csv_uri and not images:
        raise PreflightError("nothing to ingest: give --csv CSV --videos DIR, or --images DIR")
    if csv_uri and not videos:
        raise PreflightError("--videos DIR is required with --csv (the folder holding the CSV's clips)")
    if csv_uri:
        readable_file(csv_uri, "CSV")
        readable_folder(videos, "video folder")
    if images:
        readable_folder(images, "image folder")


def profile(name: str | None) -> None:
    """The profile name (or YAML path) resolves to a valid profile."""
    if name:
        check_profile(name)


def writable(out: str, what: str = "output location") -> None:
    """The output location can be written: a file can be made in it or, while it does not exist yet,
    in the nearest folder above it (which is left as it was). Remote stores are not probed (a write
    there costs a request and may be billed)."""
    if not storage.is_local(out):
        return
    path = os.path.abspath(os.path.expanduser(storage.local_path(out)))
    if os.path.exists(path) and not os.path.isdir(path):
        raise PreflightError(f"{what} {out} is a file, a folder was expected; give another --out")
    probe_dir = path
    while not os.path.isdir(probe_dir):
        if os.path.exists(probe_dir):
            raise PreflightError(f"{what} {out}: {probe_dir} is a file, not a folder; give another --out")
        probe_dir = os.path.dirname(probe_dir)
    probe = os.path.join(probe_dir, f".v2a-write-check-{os.getpid()}")
    try:
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL))
        os.remove(probe)
    except OSError as err:  # worded by flows.errors, on the location given rather than the probe
        raise type(err)(err.errno, err.strerror, str(out)) from None


# The folders of an output location (v2a.io.layout.RunLayout) the pipeline writes into.
PIPELINE_FOLDERS = ("embeddings", "errors", "mappers", "generations_root", "results", "scores", "features",
                    "reference_stats", "reports", "listening")


def output_folders(out: str, names=PIPELINE_FOLDERS) -> None:
    """Each folder of the output location a run will write, where it exists already, is a folder that
    can be written: a results folder that is a file or read-only would otherwise be found only after
    training and generation."""
    from v2a.io.layout import RunLayout

    layout = RunLayout(out)
    for name in names:
        folder = getattr(layout, name)
        if storage.is_local(folder) and os.path.lexists(storage.local_path(folder)):
            writable(folder, f"the {name.removesuffix('_root').replace('_', ' ')} folder of the output location:")


def _csv_splits(csv_uri: str) -> set[str]:
    """The split column (4th field) of a VGGSound-format CSV, as ingest reads it."""
    fs, path = storage.filesystem(csv_uri)
    with fs.open(path, "rb") as handle:
        text = handle.read().removeprefix(b"\xef\xbb\xbf").decode("utf-8", errors="replace")
    found = set()
    for rec in csv.reader(io.StringIO(text)):
        if len(rec) == 4:
            found.add(rec[3].strip())
    return found


def _say(field: str, split: str, accepted, where: str) -> PreflightError:
    listed = ", ".join(sorted(accepted)) or "none"
    return PreflightError(f"{field} = {split!r} is not a split of {where}; accepted: {listed}")


def splits_before_ingest(named: dict[str, str], csv_uri: str | None, images: str | None) -> None:
    """Before ingest: each named split is one ingest will produce (VGGSound's, found in the CSV; an
    image folder's clips are `test`)."""
    from v2a.stages.ingest import SPLITS

    accepted = (_csv_splits(csv_uri) & set(SPLITS)) if csv_uri else set()
    if images:
        accepted.add("test")
    for field, split in named.items():
        if split not in accepted:
            raise _say(field, split, accepted, "the data (" + " and ".join(x for x in (csv_uri, images) if x) + ")")


def generation_finished(gen_dir: str, allow_partial: bool) -> None:
    """A half-finished generation set is scored only when asked for (`--allow-partial`): the evaluate stage's own
    check, run before Prefect starts."""
    from v2a.stages.evaluate import IncompleteGenerations, check_complete

    if not storage.exists(gen_dir):
        return
    try:
        check_complete(gen_dir, allow_partial)
    except IncompleteGenerations as err:
        raise PreflightError(str(err)) from None


def splits_in_clips(named: dict[str, str], clips_uri: str) -> None:
    """After ingest: each named split has clips in the clips table (when there is one)."""
    if not storage.list_files(clips_uri, ".parquet"):
        return
    from v2a.io import clips as clips_io

    accepted = set(clips_io.read_clips(clips_uri, columns=["split"]).column("split").to_pylist())
    for field, split in named.items():
        if split not in accepted:
            raise _say(field, split, accepted, f"the clips table {clips_uri}")

