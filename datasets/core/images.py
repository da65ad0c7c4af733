"""Image files: the one reader (read_bgr / read_rgb, clear errors), size from the header, atomic write, listing.

Sizes of PNG and JPEG files come from their headers, so checking a dataset stays fast. Importing this
module sets OpenCV's log level to errors: GeoTIFF's private tags would print six warnings per read.
"""
from __future__ import annotations

import os
import struct
from pathlib import Path

import cv2
import numpy as np

from datasets.core.atomic import write_bytes
from datasets.core.errors import UserError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


def quiet_opencv() -> None:
    """Let OpenCV print errors only (no `TIFF_Warning ... Unknown field with tag` for every GeoTIFF read)."""
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)


quiet_opencv()


def _decode(path: str | os.PathLike, flags: int) -> np.ndarray:
    """cv2.imdecode of the file's bytes with OpenCV `flags`; UserError naming the file if missing or unreadable."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: image file not found")
    image = cv2.imdecode(np.fromfile(str(path), np.uint8), flags)
    if image is None:
        raise UserError(f"{path}: not a readable image")
    return image


REDUCED = {1: cv2.IMREAD_COLOR, 2: cv2.IMREAD_REDUCED_COLOR_2, 4: cv2.IMREAD_REDUCED_COLOR_4,
           8: cv2.IMREAD_REDUCED_COLOR_8}


def read_bgr(path: str | os.PathLike, *, unchanged: bool = False, reduce: int = 1) -> np.ndarray:
    """An image file as uint8 [H, W, 3] in OpenCV's BGR order (what cv2 drawing and writing expect).

    unchanged=True keeps what the file holds instead: grey [H, W], BGRA [H, W, 4], 16-bit depth. reduce=2, 4 or 8
    decodes at that fraction of the size (JPEG decodes much faster so).
    """
    return _decode(path, cv2.IMREAD_UNCHANGED if unchanged else REDUCED[reduce])


def read_rgb(path: str | os.PathLike) -> np.ndarray:
    """An image file as uint8 [H, W, 3] in RGB order (what models, albumentations and matplotlib expect)."""
    return cv2.cvtColor(_decode(path, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def write_image(path: str | os.PathLike, image: np.ndarray, params: list[int] | None = None) -> None:
    """Encode by the file suffix (OpenCV's imwrite `params`, e.g. JPEG quality) and write atomically."""
    path = Path(path)
    ok, data = cv2.imencode(path.suffix or ".png", image, params or [])
    if not ok:
        raise UserError(f"{path}: cannot encode an image with this suffix")
    write_bytes(path, data.tobytes())


def _png_size(head: bytes) -> tuple[int, int] | None:
    if head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR":
        width, height = struct.unpack(">II", head[16:24])
        return width, height
    return None


def _jpeg_size(handle) -> tuple[int, int] | None:
    handle.seek(2)
    while True:
        marker = handle.read(2)
        if len(marker) < 2 or marker[0] != 0xFF:
            return None
        code = marker[1]
        if code in (0xD8, 0x01) or 0xD0 <= code <= 0xD7:
            continue
        length_bytes = handle.read(2)
        if len(length_bytes) < 2:
            return None
        length = struct.unpack(">H", length_bytes)[0]
        if code in (0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF):
            data = handle.read(5)
            if len(data) < 5:
                return None
            height, width = struct.unpack(">HH", data[1:5])
            return width, height
        handle.seek(length - 2, os.SEEK_CUR)


def image_size(path: str | os.PathLike) -> tuple[int, int]:
    """(width, height) of an image file; reads only the header for PNG and JPEG."""
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            head = handle.read(24)
            size = _png_size(head)
            if size is None and head[:2] == b"\xff\xd8":
                size = _jpeg_size(handle)
    except FileNotFoundError:
        raise UserError(f"{path}: image file not found")
    except IsADirectoryError:
        raise UserError(f"{path}: is a folder, expected an image file")
    if size is None:
        height, width = read_bgr(path, unchanged=True).shape[:2]
        size = (width, height)
    return size


def list_images(folder: str | os.PathLike) -> list[Path]:
    """Image files under a folder (recursively), sorted, as paths relative to it."""
    folder = Path(folder)
    found = [p.relative_to(folder) for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES]
    return sorted(p for p in found if (folder / p).is_file())
