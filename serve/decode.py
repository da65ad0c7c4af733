"""Image decoding for the service: sniff the format, read the size from the header, then decode.

The header is checked before any pixel is decoded, so a decompression bomb is refused cheaply.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass

import cv2
import numpy as np

FORMATS = ("jpeg", "png", "webp", "bmp")
IMAGE_CONTENT_TYPES = ("image/jpeg", "image/png", "image/webp", "image/bmp")

try:  # OpenCV logs every failed decode on stderr; the service answers with a JSON error instead.
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
except AttributeError:  # pragma: no cover - older OpenCV builds
    pass


class ImageError(Exception):
    """An uploaded image the service cannot use; carries the HTTP status and a short code."""

    def __init__(self, status: int, error: str, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.error = error
        self.detail = detail


@dataclass(frozen=True)
class DecodeLimits:
    """Bounds on an accepted image: bytes, pixels (width*height) and the smallest side."""

    max_bytes: int = 20 * 1024 * 1024
    max_pixels: int = 40_000_000
    min_side: int = 2


def sniff_format(data: bytes) -> str | None:
    """The image format named by the magic bytes at the start of `data`, or None."""
    if data[:3] == b"\xff\xd8\xff":
        return "jpeg"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "png"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    if data[:2] == b"BM":
        return "bmp"
    return None


def _png_size(data: bytes) -> tuple[int, int]:
    if len(data) < 24 or data[12:16] != b"IHDR":
        raise ValueError("PNG has no IHDR header")
    return struct.unpack(">II", data[16:24])


def _bmp_size(data: bytes) -> tuple[int, int]:
    if len(data) < 26:
        raise ValueError("BMP header is cut short")
    header_size = struct.unpack("<I", data[14:18])[0]
    if header_size == 12:  # BITMAPCOREHEADER: 16-bit sizes
        return struct.unpack("<HH", data[18:22])
    width, height = struct.unpack("<ii", data[18:26])
    return abs(width), abs(height)  # a negative height means rows are stored top-down


def _webp_size(data: bytes) -> tuple[int, int]:
    chunk = data[12:16]
    if chunk == b"VP8 " and len(data) >= 30:
        width, height = struct.unpack("<HH", data[26:30])
        return width & 0x3FFF, height & 0x3FFF
    if chunk == b"VP8L" and len(data) >= 25:
        bits = struct.unpack("<I", data[21:25])[0]
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8X" and len(data) >= 30:
        width = int.from_bytes(data[24:27], "little") + 1
        height = int.from_bytes(data[27:30], "little") + 1
        return width, height
    raise ValueError("WebP header is cut short or of an unknown kind")


_SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


def _jpeg_scan(data: bytes) -> tuple[tuple[int, int], int]:
    """Walk the JPEG segments to the first scan: ((width, height), offset of the scan data)."""
    pos, size = 2, None
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            raise ValueError("JPEG segment marker expected")
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        length = struct.unpack(">H", data[pos + 2:pos + 4])[0]
        if marker in _SOF_MARKERS and pos + 9 <= len(data):
            height, width = struct.unpack(">HH", data[pos + 5:pos + 9])
            size = (width, height)
        if marker == 0xDA:  # start of scan: entropy-coded data follows this segment
            if size is None:
                raise ValueError("JPEG has no frame header before its scan")
            return size, pos + 2 + length
        pos += 2 + length
    raise ValueError("JPEG ends before its image data")


def header_size(data: bytes, fmt: str) -> tuple[int, int]:
    """(width, height) read from the header of an image of format `fmt`; ValueError if unreadable."""
    if fmt == "jpeg":
        return _jpeg_scan(data)[0]
    return {"png": _png_size, "webp": _webp_size, "bmp": _bmp_size}[fmt](data)


def check_complete(data: bytes, fmt: str) -> None:
    """Raise ImageError if a JPEG has no end marker after its scan (some decoders fill in the rest).

    Other formats are left to the decoder, which refuses them when they are cut short.
    """
    if fmt == "jpeg":
        _, scan = _jpeg_scan(data)
        if data.find(b"\xff\xd9", scan) < 0:
            raise ImageError(400, "truncated_image", "the JPEG is truncated: no end-of-image marker after its data")


def check_image(data: bytes, limits: DecodeLimits) -> tuple[str, int, int]:
    """Validate size, format and header of `data` without decoding pixels: (format, width, height)."""
    if not data:
        raise ImageError(400, "empty_body", "the request has no image data")
    if len(data) > limits.max_bytes:
        raise ImageError(413, "body_too_large", f"the image has {len(data)} bytes; the limit is {limits.max_bytes}")
    fmt = sniff_format(data)
    if fmt is None:
        raise ImageError(400, "invalid_image", "the data is not a JPEG, PNG, WebP or BMP image")
    try:
        width, height = header_size(data, fmt)
    except (ValueError, struct.error) as exc:
        raise ImageError(400, "invalid_image", f"cannot read the {fmt.upper()} header: {exc}") from None
    if width * height > limits.max_pixels:
        raise ImageError(413, "image_too_large",
                         f"the image is {width}x{height} = {width * height} pixels; the limit is {limits.max_pixels}")
    if min(width, height) < limits.min_side:
        raise ImageError(422, "image_too_small",
                         f"the image is {width}x{height}; each side must be at least {limits.min_side} pixels")
    check_complete(data, fmt)
    return fmt, width, height


def decode_image(data: bytes, limits: DecodeLimits = DecodeLimits()) -> np.ndarray:
    """Check then decode encoded image bytes to an RGB uint8 array of shape (H, W, 3)."""
    fmt, width, height = check_image(data, limits)
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise ImageError(400, "invalid_image", f"the {fmt.upper()} data is corrupt or truncated and cannot be decoded")
    if image.shape[:2] not in ((height, width), (width, height)):  # EXIF orientation may swap sides
        raise ImageError(400, "invalid_image",
                         f"the {fmt.upper()} header says {width}x{height} but it decodes to "
                         f"{image.shape[1]}x{image.shape[0]}")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
