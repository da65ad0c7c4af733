"""The service with an exported ONNX model (`python -m serve --onnx FILE`) beside the checkpoint it came from:
one Ray Serve instance for the module, real HTTP on loopback; both answer the same within tolerance.
"""
import shutil

import cv2
import pytest
import requests

from datasets.core.errors import UserError
from detection.cli.export import main as export_main
from serve.cli import options_from_args, parse_args
from serve.client import DetectClient
from test_serve_http import THRESHOLD, assert_same_detections  # tests/serve is on sys.path (pytest prepend mode)

ray = pytest.importorskip("ray")
serve = pytest.importorskip("ray.serve")
pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def onnx_file(tiny_checkpoint, tmp_path_factory):
    """The tiny checkpoint exported to ONNX from a copy that is then deleted: the file must stand alone."""
    folder = tmp_path_factory.mktemp("onnx")
    copy = shutil.copy(tiny_checkpoint, folder / "copy.pt")
    out = folder / "tiny.onnx"
    assert export_main(["--checkpoint", str(copy), "--format", "onnx", "--out", str(out), "--check-images", "0"]) == 0
    (folder / "copy.pt").unlink()
    return out


@pytest.fixture(scope="module")
def service(tiny_checkpoint, onnx_file):
    """Models 'torch' (the checkpoint) and 'onnx' (the exported file), options as `python -m serve` makes them."""
    from serve.app import build_app
    from serve.launch import free_port

    args = parse_args(["--checkpoint", f"torch={tiny_checkpoint}", "--onnx", f"onnx={onnx_file}",
                       "--max-batch-size", "8", "--batch-wait-ms", "50", "--torch-threads", "1"])
    options = {**options_from_args(args), "num_cpus": 0.5, "health_check_period_s": 1.0}
    ray.init(num_cpus=4, include_dashboard=False, log_to_driver=False)
    port = free_port()
    try:
        serve.start(http_options={"host": "127.0.0.1", "port": port})
        serve.run(build_app(options), name="detect", route_prefix="/")
        url = f"http://127.0.0.1:{port}"
        DetectClient(url).wait_ready(timeout=60)
        yield url
    finally:
        serve.shutdown()
        ray.shutdown()


def test_onnx_model_is_listed_with_the_checkpoint_metadata(service):
    models = {m["name"]: m for m in DetectClient(service).models()["models"]}
    assert set(models) == {"torch", "onnx"}
    assert models["onnx"]["version"] == models["torch"]["version"] + "+onnx"
    assert (models["onnx"]["categories"], models["onnx"]["input_size"]) == (models["torch"]["categories"],
                                                                          models["torch"]["input_size"])
    numbers = {k: v for k, v in models["torch"]["metrics"].items() if isinstance(v, (int, float))}
    assert models["onnx"]["metrics"] == pytest.approx(numbers)
    assert models["onnx"]["device"] == "cpu"


def test_onnx_answers_as_the_pytorch_model(service, shapes_image):
    client = DetectClient(service)
    want = client.detect(shapes_image, score_threshold=THRESHOLD, model="torch")
    got = requests.post(f"{service}/v1/detect", data=shapes_image.read_bytes(), timeout=60,
                        headers={"Content-Type": "image/png"},
                        params={"score_threshold": THRESHOLD, "model": "onnx"}).json()
    assert want["detections"], "the tiny checkpoint should find something at a 0.01 threshold"
    assert (got["model"], got["width"], got["height"]) == ("onnx", want["width"], want["height"])
    assert_same_detections(got["detections"], want["detections"])


def test_onnx_request_asks_for_more_than_the_exported_postprocessing(service, shapes_image):
    """The exported graph takes the request's score threshold as an input and holds up to 1000 detections an
    image: a request past the checkpoint's max detections (50) gets what the PyTorch model gives."""
    client = DetectClient(service)
    want = client.detect(shapes_image, score_threshold=0.001, max_detections=1000, model="torch")["detections"]
    got = client.detect(shapes_image, score_threshold=0.001, max_detections=1000, model="onnx")["detections"]
    assert len(want) > 50
    assert_same_detections(got, want)
    models = {m["name"]: m for m in client.models()["models"]}
    assert models["onnx"]["max_detections"] == models["torch"]["max_detections"] == 50


def test_onnx_batch_of_other_sizes(service, shapes_image):
    """A batch through a fixed-batch graph (Faster R-CNN exports batch 1): images run one by one, same answers."""
    rgb = cv2.cvtColor(cv2.imread(str(shapes_image)), cv2.COLOR_BGR2RGB)
    images = [rgb, rgb[: rgb.shape[0] // 2], cv2.resize(rgb, (300, 200))]
    client = DetectClient(service)
    want = client.detect_batch(images, score_threshold=THRESHOLD, model="torch")["results"]
    got = client.detect_batch(images, score_threshold=THRESHOLD, model="onnx")["results"]
    for g, w in zip(got, want):
        assert (g["width"], g["height"]) == (w["width"], w["height"])
        assert_same_detections(g["detections"], w["detections"])


def test_onnx_sliced_answers_as_the_pytorch_model_sliced(service, shapes_dir):
    """Sliced inference through either backend (OnnxPredictor has Predictor's predict): a 256 px mosaic, 128 px
    windows plus the whole image, the same merged boxes within tolerance."""
    import numpy as np

    tiles = [cv2.imread(str(path)) for path in sorted((shapes_dir / "images").iterdir())[:4]]
    mosaic = np.concatenate([np.concatenate(tiles[:2], 1), np.concatenate(tiles[2:], 1)], 0)
    png = cv2.imencode(".png", mosaic)[1].tobytes()
    settings = {"slice": 128, "overlap": 0.25, "slice_full": True, "score_threshold": 0.05}
    client = DetectClient(service)
    want = client.detect(png, model="torch", **settings)["detections"]
    got = client.detect(png, model="onnx", **settings)["detections"]
    assert want and want != client.detect(png, model="torch", score_threshold=0.05)["detections"]
    assert_same_detections(got, want)


def test_onnx_option_needs_an_onnx_file(tiny_checkpoint):
    with pytest.raises(UserError, match="expected an .onnx file written by detection.export"):
        options_from_args(parse_args(["--onnx", str(tiny_checkpoint)]))
    with pytest.raises(UserError, match="give a model to serve"):
        options_from_args(parse_args([]))
