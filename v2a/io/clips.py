"""The clips table: the manifest every stage walks, and the one source of each clip's split and label."""

from __future__ import annotations

import re

from storage_schemas import clips as clips_schema
from v2a.io import parquet


def read_clips(uri: str, columns: list[str] | None = None, ids=None, split: str | None = None):
    """The clips table (a pyarrow Table), projected to `columns`, only `ids` / only `split` when given."""
    filters = [("split", "==", split)] if split is not None else None
    return parquet.read_table(uri, clips_schema.SCHEMA, "clips", columns=columns, ids=ids, filters=filters)


def clip_rows(uri: str, ids, columns: list[str] | None = None) -> dict[str, dict]:
    """{clip_id: row} for the given ids (row-group pruning: a shard reads only its own clips)."""
    table = read_clips(uri, columns=columns, ids=ids)
    return {r["clip_id"]: r for r in table.to_pylist()}


def splits(uri: str, ids=None) -> dict[str, str]:
    table = read_clips(uri, columns=["clip_id", "split"], ids=ids)
    return dict(zip(table.column("clip_id").to_pylist(), table.column("split").to_pylist()))


def labels(uri: str, ids=None) -> dict[str, str | None]:
    table = read_clips(uri, columns=["clip_id", "label"], ids=ids)
    return dict(zip(table.column("clip_id").to_pylist(), table.column("label").to_pylist()))


def dataset_name(uri: str) -> str | None:
    """The dataset the clips table's first row names (an output holds one dataset), or None when it is empty."""
    names = read_clips(uri, columns=["dataset"]).column("dataset")
    return names[0].as_py() if len(names) else None


def ids_in_split(uri: str, split: str) -> list[str]:
    return sorted(read_clips(uri, columns=["clip_id"], split=split).column("clip_id").to_pylist())


def write_clips(rows, uri: str):
    """Sorted by clip id in row groups, so a shard's read of its own clips decodes one or two groups."""
    return parquet.write_table(rows, uri, clips_schema.SCHEMA, "clips", row_group_rows=1024, sort_by="clip_id")

_SAFE_ID = re.compile(r"^[\w\-.,]+$")


def is_safe_clip_id(clip_id: str) -> bool:
    # Ids become file names later: nothing that could climb out of the output folder. Unicode letters
    # and digits (\w) and commas (YouTube ids quoted in a CSV) are allowed: they are file-name safe
    # everywhere this runs.
    return bool(_SAFE_ID.match(clip_id)) and clip_id not in (".", "..") and ".." not in clip_id


def check_clip_id(clip_id: str) -> str:
    """The id, if it is safe as a file name; a table written by hand must not steer writes elsewhere."""
    if not isinstance(clip_id, str) or not is_safe_clip_id(clip_id):
        raise ValueError(f"clip id {clip_id!r} cannot name a file: only letters, digits, '_', '-', '.' and ',' "
                         "are accepted, and no '..'")
    return clip_id
