"""The features table (storage_schemas/features.py, v2a/io/features.py): one part per (run, protocol, channel rule,
metric), written over by a re-score, removed by one that did not keep its features, read back in order."""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq

from storage_schemas import features as features_schema
from v2a.io.features import part_uri, read_features, write_features

KEY = ("run-1", "v2a-mapper", "mean")


def _kept(rows: int, dim: int = 5, seed: int = 0) -> dict:
    ids = [f"c{i // 2:02d}__s0" for i in range(rows)]  # two rows (frames) per sample
    return {"sample_id": ids, "clip_id": [i.split("__")[0] for i in ids],
            "vectors": np.random.default_rng(seed).normal(size=(rows, dim)), "reference_stats": "/x/ref.safetensors"}


def test_vectors_come_back_in_order_as_float32_with_their_clip_set(tmp_path):
    kept = _kept(8)
    uri = write_features(str(tmp_path), KEY, "fad", kept, "sha")
    assert pq.read_schema(uri).equals(features_schema.SCHEMA, check_metadata=False)
    back = read_features(str(tmp_path), KEY, "fad")
    assert back.sample_ids == kept["sample_id"] and back.clip_ids == kept["clip_id"]
    np.testing.assert_array_equal(back.vectors, kept["vectors"].astype(np.float32))
    assert back.id_list_sha256 == "sha" and back.reference_stats == "/x/ref.safetensors"
    assert read_features(str(tmp_path), KEY, "fd") is None  # another metric's part
    assert read_features(str(tmp_path), ("run-2", *KEY[1:]), "fad") is None


def test_a_rescore_writes_over_the_part_and_one_without_features_removes_it(tmp_path):
    write_features(str(tmp_path), KEY, "fd", _kept(8), "sha")
    write_features(str(tmp_path), KEY, "is", _kept(4), "sha")
    write_features(str(tmp_path), KEY, "fd", _kept(6, seed=1), "sha")
    assert len(list(tmp_path.glob("*.parquet"))) == 2
    assert len(read_features(str(tmp_path), KEY, "fd").vectors) == 6  # replaced, not added to
    assert write_features(str(tmp_path), KEY, "fd", None, "sha") is None
    assert [p.name for p in tmp_path.glob("*.parquet")] == [part_uri(str(tmp_path), KEY, "is").rsplit("/", 1)[-1]]
