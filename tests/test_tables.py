import pandas as pd
import pyarrow.parquet as pq
import pytest

from storage_schemas import SchemaError, errors, mapped
from v2a import tables


def test_written_table_reads_back_with_pandas_and_pyarrow(tmp_path):
    uri = str(tmp_path / "m.parquet")
    tables.write_table([{"clip_id": "a", "sample": 0, "audio_emb": [0.5, 0.25]}], uri, mapped.SCHEMA)
    assert pq.read_table(uri).schema.equals(mapped.SCHEMA)
    assert pd.read_parquet(uri)["clip_id"].tolist() == ["a"]


def test_append_adds_a_part_and_never_rewrites_earlier_rows(tmp_path):
    folder = str(tmp_path / "errors")
    first = tables.append_rows(folder, [{"clip_id": "a", "stage": "s", "uri": None, "reason": "r"}], errors.SCHEMA)
    before = open(first, "rb").read()
    tables.append_rows(folder, [{"clip_id": "b", "stage": "s", "uri": None, "reason": "r"}], errors.SCHEMA)
    assert open(first, "rb").read() == before
    assert sorted(tables.read_table(folder, errors.SCHEMA).column("clip_id").to_pylist()) == ["a", "b"]


def test_a_failed_write_leaves_no_file_behind(tmp_path):
    uri = str(tmp_path / "m.parquet")
    with pytest.raises(SchemaError):
        tables.write_table([{"clip_id": "a", "sample": 0}], uri, mapped.SCHEMA)
    assert list(tmp_path.iterdir()) == []


def test_reading_a_file_with_a_wrong_schema_is_refused(tmp_path):
    uri = str(tmp_path / "e.parquet")
    pd.DataFrame({"clip_id": ["a"]}).to_parquet(uri)
    with pytest.raises(SchemaError, match="missing"):
        tables.read_table(uri, errors.SCHEMA)


def test_an_absent_folder_reads_as_an_empty_table(tmp_path):
    assert tables.read_table(str(tmp_path / "none"), errors.SCHEMA).num_rows == 0
