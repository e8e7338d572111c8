"""The `features` table (storage_schemas/features.py): the vectors a run's set statistics were computed from.

One part per (run, protocol, channel rule, metric), named by that key alone, so a re-score of the metric by
any path replaces the part (or removes it, when the features were not kept this time) instead of adding a
second copy of its rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from storage_schemas import features as schema
from v2a.core import storage
from v2a.io import parquet

# Vectors are 0.5-8 KB each: row groups of this many keep the footer small at 150k VGGish frames.
_ROW_GROUP_ROWS = 1024


@dataclass
class Features:
    """One run's stored rows of one metric, in the order the evaluation read them."""

    sample_ids: list[str]
    clip_ids: list[str]
    vectors: np.ndarray              # (rows, dim) float32
    id_list_sha256: str
    reference_stats: str | None      # where the Fréchet reference fit was stored; None for an inception metric


def part_uri(features_uri: str, key: tuple[str, str, str], metric: str) -> str:
    return storage.join(features_uri, parquet.part_name("features", *key, metric))


def write_features(features_uri: str, key: tuple[str, str, str], metric: str, kept: dict | None,
                   id_list_sha256: str) -> str | None:
    """Replace the part of (key, metric) by `kept` ({"sample_id", "clip_id": one per row, "vectors": (rows, dim),
    "reference_stats"}); None removes it, so no stale vectors outlive a re-score that did not keep them."""
    uri = part_uri(features_uri, key, metric)
    if kept is None:
        if storage.exists(uri):
            storage.remove(uri)
        return None
    vectors = np.ascontiguousarray(kept["vectors"], dtype=np.float32)
    rows, dim = vectors.shape
    offsets = pa.array(np.arange(rows + 1, dtype=np.int32) * dim)
    column = pa.ListArray.from_arrays(offsets, pa.array(vectors.ravel(), pa.float32()))

    def repeated(value, kind=pa.string()):
        return pa.array([value] * rows, kind)

    table = pa.Table.from_arrays(
        [repeated(key[0]), repeated(key[1]), repeated(key[2]), repeated(metric),
         pa.array(kept["clip_id"], pa.string()), pa.array(kept["sample_id"], pa.string()), column,
         repeated(id_list_sha256), repeated(kept.get("reference_stats"))], schema=schema.SCHEMA)
    parquet.write_table(table, uri, schema.SCHEMA, schema.NAME, row_group_rows=_ROW_GROUP_ROWS)
    return uri


def read_features(features_uri: str, key: tuple[str, str, str], metric: str) -> Features | None:
    """The stored rows of (key, metric); None when the run's features of it were not kept."""
    uri = part_uri(features_uri, key, metric)
    if not storage.exists(uri):
        return None
    table = parquet.read_table(uri, schema.SCHEMA, schema.NAME)
    if not table.num_rows:
        return None
    column = table.column("vector").combine_chunks()
    flat = column.flatten().to_numpy(zero_copy_only=False)
    vectors = flat.reshape(table.num_rows, -1).astype(np.float32, copy=False)
    return Features(table.column("sample_id").to_pylist(), table.column("clip_id").to_pylist(), vectors,
                    table.column("id_list_sha256")[0].as_py(), table.column("reference_stats")[0].as_py())
