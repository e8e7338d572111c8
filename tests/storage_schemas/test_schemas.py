import pyarrow as pa
import pytest

from storage_schemas import (SchemaError, clips, conform, embeddings, errors, features, generations, mapped, results,
                             scores, validate)


@pytest.mark.parametrize("module", [clips, embeddings, errors, features, generations, mapped, results, scores])
def test_each_schema_has_a_name_and_a_clip_or_run_key(module):
    assert module.NAME
    assert "clip_id" in module.SCHEMA.names or "run_id" in module.SCHEMA.names


def test_conform_casts_python_rows_to_the_schema_types():
    table = conform([{"clip_id": "a", "stage": "embed", "uri": None, "reason": "empty file"}], errors.SCHEMA)
    assert table.schema.equals(errors.SCHEMA)


def test_conform_rejects_unknown_columns_by_name():
    with pytest.raises(SchemaError, match="typo"):
        conform([{"clip_id": "a", "stage": "embed", "uri": None, "reason": "x", "typo": 1}], errors.SCHEMA)


def test_conform_rejects_missing_columns_by_name():
    with pytest.raises(SchemaError, match="reason"):
        conform([{"clip_id": "a", "stage": "embed", "uri": None}], errors.SCHEMA)


def test_validate_rejects_nulls_in_required_columns():
    table = pa.table({"clip_id": pa.array([None], pa.string()), "stage": ["e"], "uri": ["u"], "reason": ["r"]})
    with pytest.raises(SchemaError, match="clip_id"):
        validate(table, errors.SCHEMA)


def test_validate_rejects_wrongly_typed_columns():
    table = pa.table({"clip_id": ["a"], "sample": pa.array([0], pa.int32()), "audio_emb": [[1, 2]]})
    with pytest.raises(SchemaError, match="audio_emb"):
        validate(table, mapped.SCHEMA)
