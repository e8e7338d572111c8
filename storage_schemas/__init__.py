"""Parquet schemas of every table v2a writes, as pyarrow code (one module per table)."""

from storage_schemas.validate import SchemaError, conform, validate

__all__ = ["SchemaError", "conform", "validate"]
