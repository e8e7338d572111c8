import os

import pandas as pd
import pyarrow.parquet as pq
import pytest

from storage_schemas import SchemaError, errors, mapped
from v2a.io import parquet


def test_written_table_reads_back_with_pandas_and_pyarrow(tmp_path):
    uri = str(tmp_path / "m.parquet")
    parquet.write_table([{"clip_id": "a", "sample": 0, "audio_emb": [0.5, 0.25]}], uri, mapped.SCHEMA)
    assert pq.read_table(uri).schema.equals(mapped.SCHEMA)
    assert pd.read_parquet(uri)["clip_id"].tolist() == ["a"]


def test_a_part_named_by_its_content_key_is_replaced_not_duplicated(tmp_path):
    folder = str(tmp_path / "errors")
    row = {"clip_id": "a", "stage": "s", "uri": None, "reason": "r"}
    first = parquet.write_part(folder, [row], errors.SCHEMA, "errors", "stage", "shard-1")
    again = parquet.write_part(folder, [{**row, "reason": "r2"}], errors.SCHEMA, "errors", "stage", "shard-1")
    other = parquet.write_part(folder, [{**row, "clip_id": "b"}], errors.SCHEMA, "errors", "stage", "shard-2")
    assert first == again != other
    table = parquet.read_table(folder, errors.SCHEMA)
    assert sorted(zip(table.column("clip_id").to_pylist(), table.column("reason").to_pylist())) == [
        ("a", "r2"), ("b", "r")]


def _clips_rows(ids):
    return [{"clip_id": c, "stage": "s", "uri": None, "reason": "r"} for c in ids]


def test_a_read_by_ids_opens_only_the_files_whose_footer_range_holds_them(tmp_path, monkeypatch):
    folder = tmp_path / "t"
    for k in range(4):
        parquet.write_table(_clips_rows([f"c{k}{i:03d}" for i in range(100)]), str(folder / f"p{k}.parquet"),
                            errors.SCHEMA, sort_by="clip_id")
    parquet.read_table(str(folder), errors.SCHEMA, ids=["c0000"])  # footers cached from here on
    opened = []
    real = parquet._read_ids
    monkeypatch.setattr(parquet, "_read_ids", lambda uri, *a: (opened.append(uri), real(uri, *a))[1])
    table = parquet.read_table(str(folder), errors.SCHEMA, ids=["c2005", "c2099", "zz"])
    assert sorted(table.column("clip_id").to_pylist()) == ["c2005", "c2099"]
    assert [os.path.basename(n) for n in opened] == ["p2.parquet"]


def test_row_groups_outside_the_wanted_ids_are_not_decoded(tmp_path):
    uri = str(tmp_path / "one.parquet")
    parquet.write_table(_clips_rows([f"c{i:04d}" for i in range(1000)]), uri, errors.SCHEMA, row_group_rows=100,
                        sort_by="clip_id")
    meta = pq.ParquetFile(uri).metadata
    assert meta.num_row_groups == 10
    footer = parquet._footer(uri, "t")
    assert parquet._overlaps(footer.id_ranges[3:4], ["c0350"]) and not parquet._overlaps(footer.id_ranges[:3],
                                                                                           ["c0350"])


def test_float_vectors_are_not_dictionary_encoded(tmp_path):
    uri = str(tmp_path / "m.parquet")
    parquet.write_table([{"clip_id": "a", "sample": 0, "audio_emb": [0.5, 0.25]}], uri, mapped.SCHEMA)
    col = {pq.ParquetFile(uri).metadata.row_group(0).column(i).path_in_schema:
           pq.ParquetFile(uri).metadata.row_group(0).column(i).encodings for i in range(3)}
    assert not any("DICT" in e for e in col["audio_emb.list.element"])
    assert any("DICT" in e for e in col["clip_id"])


def test_a_failed_write_leaves_no_file_behind(tmp_path):
    uri = str(tmp_path / "m.parquet")
    with pytest.raises(SchemaError):
        parquet.write_table([{"clip_id": "a", "sample": 0}], uri, mapped.SCHEMA)
    assert list(tmp_path.iterdir()) == []


def test_reading_a_file_with_a_wrong_schema_is_refused(tmp_path):
    uri = str(tmp_path / "e.parquet")
    pd.DataFrame({"clip_id": ["a"]}).to_parquet(uri)
    with pytest.raises(SchemaError, match="missing"):
        parquet.read_table(uri, errors.SCHEMA)


def test_an_absent_folder_reads_as_an_empty_table(tmp_path):
    assert parquet.read_table(str(tmp_path / "none"), errors.SCHEMA).num_rows == 0


def test_a_read_by_ids_also_applies_filters_on_columns_it_does_not_return(tmp_path):
    uri = str(tmp_path / "e.parquet")
    rows = [{"clip_id": f"c{i}", "stage": "embed" if i % 2 else "ingest", "uri": None, "reason": "r"} for i in range(6)]
    parquet.write_table(rows, uri, errors.SCHEMA, sort_by="clip_id")
    table = parquet.read_table(uri, errors.SCHEMA, columns=["clip_id"], ids=["c1", "c2", "c3"],
                               filters=[("stage", "==", "embed")])
    assert table.column_names == ["clip_id"] and table.column("clip_id").to_pylist() == ["c1", "c3"]


@pytest.mark.parametrize("with_ids", [False, True])
def test_a_part_merged_away_while_a_read_lists_the_table_is_read_from_its_merged_part(tmp_path, monkeypatch,
                                                                                       with_ids):
    """Two generate shards on a cluster: one lists the table, the other merges its batch parts into
    one part and removes them before the first opens them. The read lists again: every row once."""
    folder = str(tmp_path / "t")
    a = parquet.write_table(_clips_rows(["a1", "a2"]), f"{folder}/batch-a.parquet", errors.SCHEMA, sort_by="clip_id")
    parquet.write_table(_clips_rows(["b1"]), f"{folder}/other.parquet", errors.SCHEMA, sort_by="clip_id")
    del a
    stale = parquet._files(folder)
    parquet.write_table(_clips_rows(["a1", "a2"]), f"{folder}/merged-a.parquet", errors.SCHEMA, sort_by="clip_id")
    os.remove(f"{folder}/batch-a.parquet")
    real, calls = parquet._files, []

    def listing_from_before_the_merge_once(uri):
        calls.append(uri)
        return stale if len(calls) == 1 else real(uri)

    monkeypatch.setattr(parquet, "_files", listing_from_before_the_merge_once)
    ids = ["a1", "a2", "b1"] if with_ids else None
    table = parquet.read_table(folder, errors.SCHEMA, ids=ids)
    assert sorted(table.column("clip_id").to_pylist()) == ["a1", "a2", "b1"]
    assert len(calls) == 2


def test_a_part_that_keeps_vanishing_fails_the_read_with_its_name(tmp_path, monkeypatch):
    folder = str(tmp_path / "t")
    parquet.write_table(_clips_rows(["a1"]), f"{folder}/gone.parquet", errors.SCHEMA)
    stale = parquet._files(folder)
    os.remove(f"{folder}/gone.parquet")
    monkeypatch.setattr(parquet, "_files", lambda uri: stale)
    with pytest.raises(FileNotFoundError, match="gone.parquet was removed while the table was being read"):
        parquet.read_table(folder, errors.SCHEMA)
