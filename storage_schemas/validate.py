"""Checks a table against its schema before it is written or after it is read."""

from __future__ import annotations

import pyarrow as pa


class SchemaError(ValueError):
    """A table does not match the schema of the file it is written to or read from."""


# Schema metadata naming the columns a table gained after files were written without them: nullable
# columns that older files read as null, and that a writer may leave out (they are written as null).
ADDED_COLUMNS_KEY = b"v2a.added_columns"


def added_metadata(*names: str) -> dict:
    return {ADDED_COLUMNS_KEY: ",".join(names).encode()}


def added_columns(schema: pa.Schema | None) -> set[str]:
    meta = (schema.metadata or {}) if schema is not None else {}
    return set(filter(None, meta.get(ADDED_COLUMNS_KEY, b"").decode().split(",")))


def validate(table: pa.Table, schema: pa.Schema, name: str = "table") -> None:
    missing = [f.name for f in schema if f.name not in table.column_names]
    if missing:
        raise SchemaError(f"{name}: missing column(s) {missing}; expected {schema.names}")
    for field in schema:
        actual = table.schema.field(field.name).type
        if not actual.equals(field.type) and not (pa.types.is_null(actual) and field.nullable):
            raise SchemaError(f"{name}: column {field.name!r} has type {actual}, expected {field.type}")
        if not field.nullable and table.column(field.name).null_count:
            raise SchemaError(f"{name}: column {field.name!r} must not contain nulls")


def conform(data, schema: pa.Schema, name: str = "table") -> pa.Table:
    """Build a table in the schema's column order and types from a DataFrame, a list of dicts or a Table.

    Columns the schema does not know are an error rather than silently dropped, so a typo in a
    writer shows up at once.
    """
    if isinstance(data, pa.Table):
        table = data
    elif isinstance(data, list):
        table = pa.Table.from_pylist(data) if data else schema.empty_table()
    else:  # pandas DataFrame
        table = pa.Table.from_pandas(data, preserve_index=False)
    extra = [c for c in table.column_names if c not in schema.names]
    if extra:
        raise SchemaError(f"{name}: unknown column(s) {extra}; expected {schema.names}")
    optional = added_columns(schema)
    missing = [f.name for f in schema if f.name not in table.column_names and f.name not in optional]
    if missing:
        raise SchemaError(f"{name}: missing column(s) {missing}; expected {schema.names}")
    columns = []
    for field in schema:
        if field.name not in table.column_names:
            columns.append(pa.nulls(table.num_rows, field.type))
            continue
        col = table.column(field.name)
        try:
            columns.append(col.cast(field.type) if not col.type.equals(field.type) else col)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as err:
            raise SchemaError(f"{name}: column {field.name!r} cannot be read as {field.type}: {err}") from err
    out = pa.Table.from_arrays(columns, schema=schema)
    validate(out, schema, name)
    return out
