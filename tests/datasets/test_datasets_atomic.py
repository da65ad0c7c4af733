"""Atomic writers: files get the mode the umask allows, like any program's, and a failed write changes nothing."""
import json
import os
import stat

import pytest

from datasets.core.atomic import atomic_open, atomic_path, place_file, write_bytes, write_json, write_text


def write_opened(path):
    with atomic_open(path) as handle:
        handle.write("text")


def write_by_name(path):
    with atomic_path(path) as tmp:  # how torch.save uses it: writes the temporary path by name
        tmp.write_bytes(b"data")


def copy_file(path):
    source = path.parent.parent / "source"
    source.write_bytes(b"data")
    place_file(source, path, copy=True)


WRITERS = {"atomic_open": write_opened, "write_json": lambda path: write_json(path, {"a": 1}),
           "write_bytes": lambda path: write_bytes(path, b"data"), "atomic_path": write_by_name,
           "write_text": lambda path: write_text(path, "text"), "place_file": copy_file}


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


def test_place_file_links_copies_and_falls_back(tmp_path, monkeypatch):
    src = tmp_path / "src.png"
    src.write_bytes(b"pixels")
    assert place_file(src, tmp_path / "out/linked.png") is True
    assert os.stat(tmp_path / "out/linked.png").st_ino == os.stat(src).st_ino
    assert place_file(src, tmp_path / "out/linked.png") is True  # again: still the one link, no temporary left
    assert place_file(src, tmp_path / "out/copied.png", copy=True) is False
    assert os.stat(tmp_path / "out/copied.png").st_ino != os.stat(src).st_ino

    def no_links(*args):
        raise OSError(18, "Invalid cross-device link")

    monkeypatch.setattr(os, "link", no_links)
    assert place_file(src, tmp_path / "out/fallback.png") is False
    assert (tmp_path / "out/fallback.png").read_bytes() == b"pixels"
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["copied.png", "fallback.png", "linked.png"]
