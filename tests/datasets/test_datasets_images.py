"""Image sizes from file headers (PNG, baseline and progressive JPEG) agree with decoding; TIFF reads stay quiet."""
import struct
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from datasets.core.errors import UserError
from datasets.core.images import image_size


@pytest.mark.parametrize("name,params", [("a.png", []), ("b.jpg", []), ("c.jpg", [cv2.IMWRITE_JPEG_PROGRESSIVE, 1]),
                                         ("d.bmp", []), ("e.png", None)])
def test_header_size_matches_decoded_size(tmp_path, name, params):
    image = np.zeros((37, 91), np.uint16) if params is None else np.zeros((37, 91, 3), np.uint8)
    cv2.imwrite(str(tmp_path / name), image, params or [])
    assert image_size(tmp_path / name) == (91, 37)


def test_missing_and_broken_files_are_user_errors(tmp_path):
    (tmp_path / "x.png").write_bytes(b"\x89PNG\r\n\x1a\nbroken")
    for path, message in ((tmp_path / "none.png", "not found"), (tmp_path / "x.png", "not a readable image")):
        with pytest.raises(UserError, match=message):
            image_size(path)


def tiff_with_private_tag(path, width: int = 4, height: int = 3) -> None:
    """A baseline 8-bit grey TIFF with one private tag (65000), as GeoTIFFs carry, written byte by byte."""
    pixels = bytes(range(width * height))
    entries = [(256, 3, 1, width), (257, 3, 1, height), (258, 3, 1, 8), (259, 3, 1, 1), (262, 3, 1, 1),
               (273, 4, 1, 8), (277, 3, 1, 1), (278, 3, 1, height), (279, 4, 1, len(pixels)), (65000, 3, 1, 7)]
    ifd = struct.pack("<H", len(entries))
    for tag, kind, count, value in entries:
        ifd += struct.pack("<HHI", tag, kind, count) + (struct.pack("<HH", value, 0) if kind == 3
                                                         else struct.pack("<I", value))
    path.write_bytes(b"II*\x00" + struct.pack("<I", 8 + len(pixels)) + pixels + ifd + struct.pack("<I", 0))


def test_tiff_private_tags_print_no_opencv_warning(tmp_path):
    tiff_with_private_tag(tmp_path / "geo.tif")
    code = ("import sys; from datasets.core.images import image_size, read_bgr; "
            "print(image_size(sys.argv[1]), read_bgr(sys.argv[1]).shape)")
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path / "geo.tif")], capture_output=True, text=True,
                          cwd=root, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "(4, 3) (3, 4, 3)"
    assert "TIFF_Warning" not in done.stderr and "WARN" not in done.stderr, done.stderr
