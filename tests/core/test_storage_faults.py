"""A storage fault while writing names the file the user asked for, never the hidden temporary."""

import errno
import os

import pytest

from flows.errors import describe
from v2a.core import storage


def test_a_full_disk_while_writing_names_the_file_not_its_temporary(tmp_path):
    target = tmp_path / "results" / "part-1.parquet"
    with pytest.raises(OSError) as err:
        with storage.atomic_write(str(target)) as handle:
            handle.write(b"x")
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))  # what write() raises on a full disk
    assert err.value.errno == errno.ENOSPC and err.value.filename == str(target)
    line = describe(err.value)
    assert str(target) in line and ".tmp-" not in line and "no space left" in line
    assert list((tmp_path / "results").iterdir()) == []  # the temporary is gone too


def test_an_unopenable_temporary_is_reported_as_the_file(tmp_path, monkeypatch):
    fs, _ = storage.filesystem(str(tmp_path))
    real_open = type(fs).open

    def forbidden(self, path, mode="rb", **kwargs):
        if "w" in mode:
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), path)
        return real_open(self, path, mode, **kwargs)

    monkeypatch.setattr(type(fs), "open", forbidden)
    target = tmp_path / "results" / "part-2.parquet"
    with pytest.raises(PermissionError) as err:
        with storage.atomic_write(str(target)) as handle:
            handle.write(b"x")
    assert err.value.filename == str(target)
    assert ".tmp-" not in describe(err.value)


def test_a_full_disk_while_saving_a_checkpoint_names_the_file(tmp_path, monkeypatch):
    """Checkpoints are written through storage.atomic_write: a write that fails for want of space (the OS error
    names no file) is reported on the checkpoint's own path, never the hidden temporary."""
    import torch
    from fsspec.implementations.local import LocalFileOpener

    from v2a.mapper import checkpoint

    def no_space(self, *args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))  # what write() raises: no file name

    monkeypatch.setattr(LocalFileOpener, "write", no_space)
    target = tmp_path / "mappers" / "m" / "model.safetensors"
    with pytest.raises(OSError) as err:
        checkpoint.save_safetensors({"w": torch.zeros(2)}, target)
    assert err.value.errno == errno.ENOSPC and err.value.filename == str(target)
    assert str(target) in describe(err.value) and "no space left" in describe(err.value)
    with pytest.raises(OSError) as err:
        checkpoint.atomic_write_text(tmp_path / "history.json", "[]")
    assert err.value.filename == str(tmp_path / "history.json")
    assert not [p for p in tmp_path.rglob("*") if p.is_file()]  # no temporary left behind


def test_a_pipeline_storage_fault_without_a_file_name_names_the_output_location(tmp_path, monkeypatch, capsys):
    import flows.cli as cli

    out = tmp_path / "run"
    (tmp_path / "data.csv").write_text("abc,0,dog,train\nxyz,0,cat,test\n")
    (tmp_path / "videos").mkdir()
    config = tmp_path / "c.yaml"
    config.write_text(f"out: {out}\nprofile: tiny\ndata: {{csv: {tmp_path / 'data.csv'}, videos: {tmp_path / 'videos'}}}\n")

    def full(cfg):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))  # a library that names nothing

    monkeypatch.setattr(cli, "_run_pipeline", full)
    assert cli.main(["pipeline", "--config", str(config)]) == 2
    line = capsys.readouterr().err.strip()
    assert "no space left" in line and str(out) in line, line
