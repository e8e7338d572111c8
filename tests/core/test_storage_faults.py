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
