"""Read and write the Parquet tables; every write is validated against its schema in storage_schemas/."""

from __future__ import annotations

import io
import uuid
from datetime import datetime, timezone

import pyarrow as pa
import pyarrow.parquet as pq

from storage_schemas import conform, validate
from v2a import storage


def write_table(data, uri: str, schema: pa.Schema, name: str = "table") -> pa.Table:
    table = conform(data, schema, name)
    buf = io.BytesIO()
    pq.write_table(table, buf)
    with storage.atomic_write(uri) as handle:
        handle.write(buf.getvalue())
    return table


def read_table(uri: str, schema: pa.Schema | None = None, name: str = "table", filters=None) -> pa.Table:
    """Read one Parquet file or a folder of shards; an absent folder reads as an empty table.

    `filters` (pyarrow's DNF form, e.g. [("clip_id", "in", ids)]) keep only matching rows, so a task
    that needs a few clips of a large table does not hold all of it.
    """
    files = storage.list_files(uri, ".parquet")
    if not files:
        if schema is None:
            raise FileNotFoundError(f"no Parquet files at {uri}")
        return schema.empty_table()
    parts = []
    for f in files:
        fs, path = storage.filesystem(f)
        with fs.open(path, "rb") as handle:
            t = pq.read_table(handle, filters=filters)
        if schema is not None:
            validate(t, schema, f"{name} ({f})")
            t = t.select(schema.names)
        parts.append(t)
    return pa.concat_tables(parts) if len(parts) > 1 else parts[0]


def append_rows(folder: str, rows, schema: pa.Schema, name: str = "table") -> str:
    """Append by adding a new part file: earlier rows are never rewritten."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%f")
    uri = storage.join(folder, f"part-{stamp}-{uuid.uuid4().hex[:8]}.parquet")
    write_table(rows, uri, schema, name)
    return uri
