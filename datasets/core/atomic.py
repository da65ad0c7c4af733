"""Atomic file writes: write to a temporary name in the same folder, then rename.

An interrupted writer leaves the old file (or nothing), never a half-written one.
"""
from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
from pathlib import Path
from typing import IO, Any, Iterator


def _create_beside(path: Path, suffix: str = ".tmp") -> Path:
    """Create a new, empty, uniquely named file next to `path` (ending in `suffix`) and return its name.

    Created by open(2) with mode 0o666, so the umask (or a default ACL) decides the final
    mode, as for any program's files; tempfile.mkstemp would make every file 0o600.
    """
    for _ in range(100):
        tmp = path.parent / f".{path.name}.{secrets.token_hex(4)}{suffix}"
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            return tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary name beside {path}")


def _fsync_file(path: Path) -> None:
    """Flush a closed file's data to disk before it is renamed into place."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = ".tmp") -> Iterator[Path]:
    """A temporary path beside `path` to write by name (torch.save); renamed over `path` on clean exit.

    `suffix` ends the temporary name, for writers that pick the format by it (OpenCV's VideoWriter).
    On any error the temporary file is removed and `path` is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _create_beside(path, suffix)
    try:
        yield tmp
        _fsync_file(tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w") -> Iterator[IO]:
    """Open a temporary file beside `path` ("w" or "wb"); on clean exit fsync and rename it over `path`."""
    with atomic_path(path) as tmp, open(tmp, mode) as handle:
        yield handle


def write_json(path: str | os.PathLike, data: Any, indent: int | None = None) -> None:
    """Write `data` as JSON to `path` atomically."""
    with atomic_open(path, "w") as handle:
        json.dump(data, handle, indent=indent)


def write_text(path: str | os.PathLike, text: str) -> None:
    """Write text (UTF-8) to `path` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write raw bytes to `path` atomically."""
    with atomic_open(path, "wb") as handle:
        handle.write(data)


def place_file(src: str | os.PathLike, dst: str | os.PathLike, copy: bool = False) -> bool:
    """Put `src` at `dst` atomically: a hard link where the filesystem allows, else (or if `copy`) a copy.

    Returns True for a hard link. A hard link shares the file: editing one edits both.
    """
    if not copy and os.path.exists(dst) and os.path.samefile(src, dst):
        return True  # already linked (renaming a link over its twin would leave the temporary name behind)
    with atomic_path(dst) as tmp:
        if not copy:
            os.unlink(tmp)
            try:
                os.link(src, tmp)
                return True
            except OSError:  # another filesystem, or one without hard links: copy instead
                pass
        shutil.copyfile(src, tmp)
    return False
