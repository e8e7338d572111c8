import pytest

from storage_schemas import clips as clips_schema
from v2a import ingest
from v2a.io import parquet


def test_vggsound_csv_becomes_the_clips_table(synth_dir, tmp_path):
    out = str(tmp_path / "clips.parquet")
    summary = ingest.ingest(out, csv=str(synth_dir / "vggsound.csv"), videos=str(synth_dir / "videos"))
    table = parquet.read_table(out, clips_schema.SCHEMA)
    assert summary["n_clips"] == table.num_rows == 12
    assert set(table.column("split").to_pylist()) == {"train", "test"}
    for uri in table.column("uri").to_pylist():
        assert uri.endswith(".mp4")
        assert (synth_dir / "videos" / uri.rsplit("/", 1)[-1]).exists()


def test_image_folder_becomes_clips_with_labels_from_subfolders(synth_dir, tmp_path):
    rows = ingest.read_image_folder(str(synth_dir / "images"))
    assert len(rows) == 3
    assert all(r["kind"] == "image" and r["label"] for r in rows)


def test_bad_csv_rows_become_errors_and_the_rest_is_kept(tmp_path):
    csv = tmp_path / "v.csv"
    csv.write_text("abc,0,dog,train\nabc,0,dog,train\nonly,two\nxyz,notanumber,cat,test\n"
                   "../../etc,10,x,train\nqqq,20,bird,holdout\nok_id,30,caf\u00e9,test\n")
    rows, errors = ingest.read_vggsound_csv(str(csv), str(tmp_path / "videos"))
    assert [r["clip_id"] for r in rows] == ["abc_000000", "ok_id_000030"]
    reasons = " | ".join(e["reason"] for e in errors)
    for expected in ("duplicate", "expected 4 fields", "not a number", "not allowed", "unknown split"):
        assert expected in reasons


def test_no_clips_at_all_is_a_clear_error(tmp_path):
    csv = tmp_path / "v.csv"
    csv.write_text("")
    with pytest.raises(ingest.IngestError, match="no clips"):
        ingest.ingest(str(tmp_path / "c.parquet"), csv=str(csv), videos=str(tmp_path))
