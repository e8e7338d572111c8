"""Checks a table against its schema before it is written or after it is read."""

from __future__ import annotations

import pyarrow as pa


class SchemaError(ValueError):
    """A table does not match the schema of the file it is written to or read from."""


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
    missing = [f.name for f in schema if f.name not in table.column_names]
    if missing:
        raise SchemaError(f"{name}: missing column(s) {missing}; expected {schema.names}")
    columns = []
    for field in schema:
        col = table.column(field.name)
        try:
            columns.append(col.cast(field.type) if not col.type.equals(field.type) else col)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as err:
            raise SchemaError(f"{name}: column {field.name!r} cannot be read as {field.type}: {err}") from err
    out = pa.Table.from_arrays(columns, schema=schema)
    validate(out, schema, name)
    return out
