"""Fingerprints of locations (the cache keys' view of the data) and the folder copies behind remote training."""

from v2a.core import storage
from v2a.core.fingerprint import ABSENT, changed, fingerprint, fingerprints


def test_a_missing_location_has_its_own_fingerprint(tmp_path):
    assert fingerprint(str(tmp_path / "nothing")) == ABSENT
    assert fingerprint(None) == ABSENT


def test_rewriting_a_file_in_a_folder_changes_the_folder_fingerprint(tmp_path):
    (tmp_path / "a.parquet").write_bytes(b"1")
    before = fingerprint(str(tmp_path))
    assert fingerprint(str(tmp_path)) == before  # taking it changes nothing
    with storage.atomic_write(str(tmp_path / "a.parquet")) as handle:
        handle.write(b"1")  # same bytes, rewritten: counts as changed, like make
    assert fingerprint(str(tmp_path)) != before


def test_hidden_and_temporary_files_do_not_count(tmp_path):
    (tmp_path / "a.parquet").write_bytes(b"1")
    before = fingerprint(str(tmp_path))
    (tmp_path / ".a.parquet.tmp-1234").write_bytes(b"partial")
    (tmp_path / ".prefect-results").mkdir()
    (tmp_path / ".prefect-results" / "key").write_bytes(b"record")
    assert fingerprint(str(tmp_path)) == before


def test_changed_names_the_outputs_that_vanished_or_changed(tmp_path):
    keep, gone = tmp_path / "keep.wav", tmp_path / "gone.wav"
    keep.write_bytes(b"x")
    gone.write_bytes(b"y")
    recorded = fingerprints([str(keep), str(gone)])
    assert changed(recorded) == []
    gone.unlink()
    assert changed(recorded) == [str(gone)]


def test_a_folder_goes_up_and_comes_back_with_its_layout(tmp_path):
    src = tmp_path / "src"
    (src / "checkpoints" / "epoch_0001").mkdir(parents=True)
    (src / "config.json").write_text("{}")
    (src / "checkpoints" / "epoch_0001" / "state.json").write_text("[]")
    remote = "memory://v2a-test-upload/mapper"
    assert storage.upload_dir(str(src), remote, skip=lambda rel: rel == "config.json") == 1
    assert storage.upload_dir(str(src), remote, skip=lambda rel: rel != "config.json") == 1
    back = tmp_path / "back"
    assert storage.download_dir(remote, str(back)) == 2
    assert (back / "checkpoints" / "epoch_0001" / "state.json").read_text() == "[]"
    found = storage.glob("memory://v2a-test-upload/*/config.json")
    assert len(found) == 1 and found[0].startswith("memory://") and found[0].endswith("/mapper/config.json")
    assert storage.exists(found[0])
