"""Image sizes from file headers (PNG, baseline and progressive JPEG) agree with decoding."""
import cv2
import numpy as np
import pytest

from datasets.errors import UserError
from datasets.images import image_size


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
