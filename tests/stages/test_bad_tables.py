"""Tables that are not what their reader expects are refused with the column named; ids that could
not name a file safely never reach one."""

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from storage_schemas import embeddings as embeddings_schema
from storage_schemas import generations as generations_schema
from storage_schemas.validate import SchemaError
from v2a.stages import embed, generate, ingest
from v2a.io.embeddings import read_embeddings


def _broken(schema: pa.Schema, path, drop: str | None = None, retype: str | None = None):
    table = schema.empty_table()
    if drop:
        table = table.drop_columns([drop])
    if retype:
        i = table.schema.get_field_index(retype)
        table = table.set_column(i, pa.field(retype, pa.string()), pa.array([], pa.string()))
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)


@pytest.mark.parametrize("how", [{"drop": "image_frames"}, {"retype": "audio_emb"}])
def test_an_embeddings_shard_with_a_missing_or_mistyped_column_is_refused_by_name(tmp_path, how):
    _broken(embeddings_schema.SCHEMA, tmp_path / "emb" / "shard-00000-x.parquet", **how)
    with pytest.raises(SchemaError, match=next(iter(how.values()))):
        read_embeddings(str(tmp_path / "emb"))


@pytest.mark.parametrize("how", [{"drop": "seed"}, {"retype": "sample"}])
def test_a_generations_part_with_a_missing_or_mistyped_column_is_refused_by_name(tmp_path, how):
    _broken(generations_schema.SCHEMA, tmp_path / "table" / "part-1.parquet", **how)
    with pytest.raises(SchemaError, match=next(iter(how.values()))):
        generate.read_generations(str(tmp_path))


def test_a_non_ascii_youtube_id_is_accepted_as_a_clip_id(tmp_path):
    csv = tmp_path / "v.csv"
    csv.write_text("vidéo猫,10,cat,train\n", encoding="utf-8")
    rows, errors = ingest.read_vggsound_csv(str(csv), str(tmp_path / "videos"))
    assert errors == [] and rows[0]["clip_id"] == "vidéo猫_000010"
    assert rows[0]["uri"] == str(tmp_path / "videos" / "vidéo猫_000010.mp4")


@pytest.mark.parametrize("youtube_id", ["a/b", "..", "a\\b", "x/../../y"])
def test_an_id_with_path_parts_is_an_ingest_error(tmp_path, youtube_id):
    csv = tmp_path / "v.csv"
    csv.write_text(f"{youtube_id},10,cat,train\nok,10,cat,train\n")
    rows, errors = ingest.read_vggsound_csv(str(csv), str(tmp_path / "videos"))
    assert [r["clip_id"] for r in rows] == ["ok_000010"]
    assert "not allowed in a file name" in errors[0]["reason"]


def test_a_comma_in_a_quoted_youtube_id_is_accepted_and_names_its_files(tmp_path):
    """A comma is legal in a file name: the clip whose video exists is ingested, and its audio can be named."""
    csv = tmp_path / "v.csv"
    csv.write_text('"quoted,id",10,cat,train\n', encoding="utf-8")
    rows, errors = ingest.read_vggsound_csv(str(csv), str(tmp_path / "videos"))
    assert errors == [] and rows[0]["clip_id"] == "quoted,id_000010"
    assert rows[0]["uri"] == str(tmp_path / "videos" / "quoted,id_000010.mp4")
    assert generate.audio_uri(str(tmp_path), "quoted,id_000010", 0).endswith("/audio/quoted,id_000010__s0.wav")
