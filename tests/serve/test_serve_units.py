"""Service parts that need no running server: image checks and decoding, options, client, config file.

The HTTP behaviour itself is tested over loopback in test_serve_http.py.
"""
import struct
import time
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from datasets.core.errors import UserError
from serve.client import encode_image
from serve.decode import DecodeLimits, ImageError, check_image, decode_image, header_size, sniff_format
from serve.drawn import HEADER_LIMIT, answer_headers, wants_jpeg
from serve.options import ServiceOptions, default_name, parse_checkpoints
from serve.smoke import short_json

ROOT = Path(__file__).resolve().parents[2]


def encode(image: np.ndarray, ext: str, params: tuple = ()) -> bytes:
    ok, buf = cv2.imencode(ext, cv2.cvtColor(image, cv2.COLOR_RGB2BGR), list(params))
    assert ok
    return buf.tobytes()


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_bomb(side: int = 20000) -> bytes:
    """A valid 1-bit grayscale PNG of side x side pixels: ~50 KB on the wire, 1.2 GB once decoded as RGB."""
    row = b"\x00" + bytes((side + 7) // 8)
    packer = zlib.compressobj(9)
    idat = b"".join(packer.compress(row) for _ in range(side)) + packer.flush()
    ihdr = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b"")


@pytest.fixture(scope="module")
def picture() -> np.ndarray:
    rng = np.random.default_rng(0)
    image = np.full((60, 90, 3), 40, np.uint8)
    cv2.circle(image, (30, 30), 15, (250, 200, 10), -1)
    return np.clip(image + rng.integers(0, 20, image.shape), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("ext,fmt,params", [
    (".jpg", "jpeg", ()), (".jpg", "jpeg", (cv2.IMWRITE_JPEG_PROGRESSIVE, 1)), (".png", "png", ()),
    (".webp", "webp", (cv2.IMWRITE_WEBP_QUALITY, 80)), (".webp", "webp", (cv2.IMWRITE_WEBP_QUALITY, 101)),
    (".bmp", "bmp", ())])
def test_every_format_reads_its_header_and_decodes(picture, ext, fmt, params):
    data = encode(picture, ext, params)
    assert sniff_format(data) == fmt
    assert header_size(data, fmt) == (90, 60)
    decoded = decode_image(data)
    assert decoded.shape == (60, 90, 3) and decoded.dtype == np.uint8
    if fmt in ("png", "bmp") or params == (cv2.IMWRITE_WEBP_QUALITY, 101):  # lossless: RGB order kept exactly
        np.testing.assert_array_equal(decoded, picture)


@pytest.mark.parametrize("case,status,error", [
    ("empty", 400, "empty_body"), ("text", 400, "invalid_image"), ("truncated_jpeg", 400, "truncated_image"),
    ("truncated_png", 400, "invalid_image"), ("header_only_jpeg", 400, "invalid_image"),
    ("one_pixel", 422, "image_too_small"), ("too_many_bytes", 413, "body_too_large")])
def test_bad_images_get_clear_errors(picture, case, status, error):
    jpeg, png = encode(picture, ".jpg"), encode(picture, ".png")
    data = {"empty": b"", "text": b"hello, not an image", "truncated_jpeg": jpeg[: len(jpeg) * 2 // 3],
            "truncated_png": png[: len(png) // 2], "header_only_jpeg": jpeg[:20],
            "one_pixel": encode(picture[:1, :1], ".png"), "too_many_bytes": png}[case]
    with pytest.raises(ImageError) as info:
        decode_image(data, DecodeLimits(max_bytes=len(png) - 1))
    assert (info.value.status, info.value.error) == (status, error)
    assert info.value.detail


def test_decompression_bomb_is_refused_from_its_header_alone():
    bomb = png_bomb(20000)
    assert len(bomb) < 200_000
    start = time.perf_counter()
    with pytest.raises(ImageError) as info:
        decode_image(bomb)
    assert time.perf_counter() - start < 0.5  # no pixel was decoded
    assert info.value.status == 413 and "20000x20000" in info.value.detail
    assert check_image(png_bomb(100), DecodeLimits()) == ("png", 100, 100)  # the same file, small, is fine


def test_model_names_and_checkpoint_lists(tmp_path):
    ckpt = tmp_path / "runs" / "demo" / "last.pt"
    ckpt.parent.mkdir(parents=True)
    ckpt.write_bytes(b"x")
    other = tmp_path / "shapes_v2.pt"
    other.write_bytes(b"x")
    assert default_name(str(ckpt)) == "demo" and default_name(str(other)) == "shapes_v2"
    assert list(parse_checkpoints([str(ckpt), f"b={other}"])) == ["demo", "b"]
    assert parse_checkpoints({"x": str(other)}) == {"x": str(other.resolve())}
    with pytest.raises(UserError, match="given twice"):
        parse_checkpoints([f"a={ckpt}", f"a={other}"])
    with pytest.raises(UserError, match="no checkpoint file"):
        parse_checkpoints([str(tmp_path / "missing.pt")])
    with pytest.raises(UserError, match="unknown service option"):
        ServiceOptions.from_dict({"checkpoints": [str(ckpt)], "max_batch": 4})
    with pytest.raises(UserError, match="max_batch_size"):
        ServiceOptions.from_dict({"checkpoints": [str(ckpt)], "max_batch_size": 0})


def test_client_encodes_paths_bytes_and_arrays(tmp_path, picture):
    path = tmp_path / "p.png"
    path.write_bytes(encode(picture, ".png"))
    data, kind, name = encode_image(path)
    assert (kind, name) == ("image/png", "p.png")
    assert encode_image(data)[1] == "application/octet-stream"
    array_bytes, kind, _ = encode_image(picture)
    assert kind == "image/png"
    np.testing.assert_array_equal(decode_image(array_bytes), picture)


def test_short_json_is_valid_json():
    import json

    answer = {"model": "m", "version": "v", "width": 4, "height": 3, "time_ms": 1.0,
              "detections": [{"bbox": [1.234, 2.0, 3.0, 4.0], "score": 0.98765, "category_id": 1,
                              "category": "circle"}] * 7}
    parsed = json.loads(short_json(answer, top=5))
    assert len(parsed["detections"]) == 5 and parsed["detections_total"] == 7
    assert parsed["detections"][0]["bbox"][0] == 1.2


def test_serve_config_file_is_valid_and_builds(tiny_checkpoint):
    from ray.serve.schema import ServeDeploySchema

    from serve.app import build_app

    config = yaml.safe_load((ROOT / "configs" / "serve.yaml").read_text())
    ServeDeploySchema.model_validate(config) if hasattr(ServeDeploySchema, "model_validate") \
        else ServeDeploySchema.parse_obj(config)
    (app_config,) = config["applications"]
    assert app_config["import_path"] == "serve.app:build_app"
    names = {d["name"] for d in app_config.get("deployments", [])}
    args = {**app_config["args"], "checkpoints": {name: str(tiny_checkpoint) for name in app_config["args"]
                                                  ["checkpoints"]}}
    assert {f"model-{name}" for name in args["checkpoints"]} | {"ingress"} >= names
    model_cfg = next(d for d in app_config["deployments"] if d["name"].startswith("model-"))
    assert model_cfg["autoscaling_config"]["max_replicas"] >= model_cfg["autoscaling_config"]["min_replicas"]
    build_app(args)


def test_health_state_of_a_model_handle():
    import asyncio

    from serve.app import DetectIngress

    class Handle:
        def __init__(self, answer):
            self.ready = self
            self.answer = answer

        def remote(self):
            return self.answer()

    async def loaded():
        return True

    async def slow():
        await asyncio.sleep(5)

    async def broken():
        raise RuntimeError("replica died")

    state = DetectIngress.func_or_class.model_state
    results = [asyncio.run(state(Handle(answer), timeout=0.2)) for answer in (loaded, slow, broken)]
    assert results == ["ready", "loading", "unavailable"]


def test_drawn_answer_negotiation_and_header_limit():
    assert wants_jpeg(True, "") and wants_jpeg(False, "image/jpeg") and wants_jpeg(False, "text/html, image/jpeg")
    assert not wants_jpeg(False, "") and not wants_jpeg(False, "*/*") and not wants_jpeg(False, "image/jpeg;q=0")
    assert not wants_jpeg(False, "application/json, image/jpeg;q=0.5")
    assert wants_jpeg(False, "application/json;q=0.2, image/jpeg")
    detection = {"bbox": [1.0, 2.0, 3.0, 4.0], "score": 0.5, "category_id": 1, "category": "château"}
    small = answer_headers({"model": "a", "detections": [detection]})
    small["X-Detect-Answer"].encode("ascii")  # header values must be ASCII: no UTF-8 names
    assert small["X-Detections-Count"] == "1" and "X-Detect-Answer-Omitted" not in small
    big = answer_headers({"model": "a", "detections": [detection] * 200})
    assert "X-Detect-Answer" not in big and big["X-Detections-Count"] == "200"
    assert f"{HEADER_LIMIT}-byte" in big["X-Detect-Answer-Omitted"]


def test_admission_options(tmp_path):
    ckpt = tmp_path / "m.pt"
    ckpt.write_bytes(b"x")
    opts = ServiceOptions.from_dict({"checkpoints": [str(ckpt)], "max_queued_requests": 4, "retry_after_s": 2})
    model = opts.model_deployment_options()
    assert model["max_queued_requests"] == 4 and model["backpressure_config"].retry_after_s == 2
    assert opts.admission(floor=256)["max_queued_requests"] == 256  # the ingress keeps a longer queue
    unlimited = ServiceOptions.from_dict({"checkpoints": [str(ckpt)], "max_queued_requests": -1})
    assert unlimited.admission(floor=256)["max_queued_requests"] == -1
    for bad in (0, -2, 1.5):
        with pytest.raises(UserError, match="max_queued_requests"):
            ServiceOptions.from_dict({"checkpoints": [str(ckpt)], "max_queued_requests": bad})


def test_one_detector_runs_in_the_http_replica_unless_told_otherwise(tmp_path):
    a, b = tmp_path / "a.pt", tmp_path / "b.pt"
    for path in (a, b):
        path.write_bytes(b"x")
    one = ServiceOptions.from_dict({"checkpoints": [str(a)], "num_cpus": 2})
    assert one.colocated() and one.ingress_deployment_options()["ray_actor_options"]["num_cpus"] == 2
    assert not ServiceOptions.from_dict({"checkpoints": [str(a), str(b)]}).colocated()
    assert not ServiceOptions.from_dict({"checkpoints": [str(a)], "colocate": False}).colocated()
    assert "ray_actor_options" not in ServiceOptions.from_dict(
        {"checkpoints": [str(a)], "colocate": False}).ingress_deployment_options()  # the light HTTP front
    assert ServiceOptions.from_dict({"checkpoints": [str(a), str(b)], "colocate": True}).colocated()


def test_a_colocated_model_is_called_like_a_handle_and_refuses_past_its_queue():
    import asyncio

    from ray.serve.exceptions import BackPressureError

    from serve.local import LocalModel

    class Server:
        def __init__(self):
            self.release = asyncio.Event()

        async def detect(self, data):
            await self.release.wait()
            return {"echo": data}

        def ready(self):
            return True

    async def scenario():
        model = LocalModel(Server(), max_ongoing=1, max_queued=2, retry_after_s=3)
        assert await model.ready.remote()
        waiting = [asyncio.ensure_future(model.detect.remote(i)) for i in range(3)]
        await asyncio.sleep(0)
        with pytest.raises(BackPressureError) as refused:
            await model.detect.remote(9)
        assert refused.value.retry_after_s == 3
        model.server.release.set()
        assert [r["echo"] for r in await asyncio.gather(*waiting)] == [0, 1, 2]
        assert (await model.detect.remote(4))["echo"] == 4  # the queue drained: admitted again
        assert model.active == 0

    asyncio.run(scenario())
