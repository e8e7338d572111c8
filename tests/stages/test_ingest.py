import pytest
from PIL import Image

from storage_schemas import clips as clips_schema
from v2a.stages import ingest
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
    for expected in ("duplicate", "expected 4 fields", "not a whole number", "not allowed", "unknown split"):
        assert expected in reasons


def test_no_clips_at_all_is_a_clear_error(tmp_path):
    csv = tmp_path / "v.csv"
    csv.write_text("")
    with pytest.raises(ingest.IngestError, match="no clips"):
        ingest.ingest(str(tmp_path / "c.parquet"), csv=str(csv), videos=str(tmp_path))


def _reasons_by_line(errors):
    return {int(e["uri"].rsplit(":", 1)[1]): e["reason"] for e in errors}


def test_unparsable_values_and_bytes_are_error_rows_with_line_numbers_and_the_rest_ingests(tmp_path):
    csv = tmp_path / "v.csv"
    csv.write_bytes(b"\xef\xbb\xbfyoutube_id,start_seconds,label,split\n"  # Excel's byte-order mark and a header
                    b"aaa,0,dog,train\n"
                    b"inf_start,inf,cat,test\n"
                    b"nan_start,nan,cat,test\n"
                    b"neg_start,-3,cat,test\n"
                    b"caf\xe9,1,latin-1 byte,test\n"
                    b",5,no id,train\n"
                    b'"stray quote,6,cat,test\n'
                    b"zzz,7,bird,test\r\n")
    rows, errors = ingest.read_vggsound_csv(str(csv), str(tmp_path / "videos"))
    assert [r["clip_id"] for r in rows] == ["aaa_000000", "zzz_000007"]
    reasons = _reasons_by_line(errors)
    assert sorted(reasons) == [3, 4, 5, 6, 7, 8]
    for line in (3, 4, 5):
        assert "start_seconds" in reasons[line] and reasons[line].startswith(f"line {line}:")
    assert "byte 0xe9 is not UTF-8" in reasons[6]
    assert "youtube_id is empty" in reasons[7]
    assert "expected 4 fields" in reasons[8]


def test_a_whole_number_written_as_a_decimal_is_accepted(tmp_path):
    csv = tmp_path / "v.csv"
    csv.write_text("abc,12.0,dog,train\n")
    rows, errors = ingest.read_vggsound_csv(str(csv), str(tmp_path / "videos"))
    assert errors == [] and rows[0]["clip_id"] == "abc_000012" and rows[0]["start_seconds"] == 12


def _images(folder, names):
    for i, name in enumerate(names):
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (8, 8), (10 * i, 0, 0)).save(folder / name, format="PNG")
    return folder


def test_images_sharing_a_name_get_unique_ids_and_upper_case_extensions_count(tmp_path):
    folder = _images(tmp_path / "imgs", ["dog/x.jpg", "dog/x.png", "dog/y.png", "UPPER.JPG", "Mixed.Png"])
    (folder / "notes.txt").write_text("not an image")
    rows, errors = ingest.scan_image_folder(str(folder))
    assert errors == []
    ids = {r["clip_id"]: r for r in rows}
    assert sorted(ids) == ["Mixed", "UPPER", "dog__x.jpg", "dog__x.png", "dog__y"]
    assert ids["dog__x.jpg"]["uri"].endswith("x.jpg") and ids["dog__x.png"]["uri"].endswith("x.png")
    assert ids["dog__y"]["label"] == "dog" and ids["UPPER"]["label"] is None


def test_images_whose_ids_still_collide_are_refused_naming_both_files(tmp_path):
    folder = _images(tmp_path / "imgs", ["a b.png", "a_b.png", "c.png"])
    rows, errors = ingest.scan_image_folder(str(folder))
    assert sorted(r["clip_id"] for r in rows) == ["a_b.png", "c"]
    assert len(errors) == 1 and "a b.png" in errors[0]["reason"] and "a_b.png" in errors[0]["reason"]
    assert "rename" in errors[0]["reason"]


def test_a_re_ingest_replaces_its_error_rows_instead_of_adding_them_again(tmp_path):
    from storage_schemas import errors as errors_schema

    csv, errors_uri = tmp_path / "v.csv", str(tmp_path / "errors")
    csv.write_text("abc,0,dog,train\nbad,inf,cat,test\nonly,two\n")
    for _ in range(3):
        ingest.ingest(str(tmp_path / "clips.parquet"), csv=str(csv), videos=str(tmp_path), errors_uri=errors_uri)
    assert parquet.read_table(errors_uri, errors_schema.SCHEMA).num_rows == 2
    csv.write_text("abc,0,dog,train\n")  # the CSV fixed: its errors are gone too
    ingest.ingest(str(tmp_path / "clips.parquet"), csv=str(csv), videos=str(tmp_path), errors_uri=errors_uri)
    assert parquet.read_table(errors_uri, errors_schema.SCHEMA).num_rows == 0


def test_a_duplicate_id_error_names_the_duplicate_line_not_the_clip_kept(tmp_path):
    csv = tmp_path / "v.csv"
    csv.write_text("abc,0,dog,train\nzzz,5,cat,test\nabc,0.0,dog,test\n")
    rows, errors = ingest.read_vggsound_csv(str(csv), str(tmp_path / "videos"))
    assert [(r["clip_id"], r["split"]) for r in rows] == [("abc_000000", "train"), ("zzz_000005", "test")]
    (error,) = errors
    assert error["clip_id"] == "line3"  # the kept clip abc_000000 has no error row
    assert error["reason"].startswith("line 3: duplicate clip id 'abc_000000' (first given on line 1")
