"""Atomic writers: files get the mode the umask allows, like any program's, and a failed write changes nothing."""
import json
import os
import stat

import pytest

from datasets.atomic import atomic_open, atomic_path, write_bytes, write_json


def write_text(path):
    with atomic_open(path) as handle:
        handle.write("text")


def write_by_name(path):
    with atomic_path(path) as tmp:  # how torch.save uses it: writes the temporary path by name
        tmp.write_bytes(b"data")


WRITERS = {"atomic_open": write_text, "write_json": lambda path: write_json(path, {"a": 1}),
           "write_bytes": lambda path: write_bytes(path, b"data"), "atomic_path": write_by_name}


@pytest.mark.parametrize("mask", [0o022, 0o002, 0o077], ids=oct)
@pytest.mark.parametrize("writer", sorted(WRITERS))
def test_written_files_honour_the_umask(tmp_path, writer, mask):
    old = os.umask(mask)
    try:
        WRITERS[writer](tmp_path / "out" / "file")
        WRITERS[writer](tmp_path / "out" / "file")  # replacing an existing file too
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "out" / "file").stat().st_mode) == 0o666 & ~mask


@pytest.mark.parametrize("writer", sorted(WRITERS))
def test_writes_leave_no_temporary_file(tmp_path, writer):
    WRITERS[writer](tmp_path / "file")
    assert [p.name for p in tmp_path.iterdir()] == ["file"]


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary_file(tmp_path):
    target = tmp_path / "file.json"
    write_json(target, {"old": 1})
    with pytest.raises(RuntimeError), atomic_open(target) as handle:
        handle.write("half")
        raise RuntimeError("interrupted")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("interrupted")
    assert json.loads(target.read_text()) == {"old": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["file.json"]
