"""The detection service over real HTTP on loopback: one Ray Serve instance for the whole module.

Two models side by side, an API-key app beside them, bad input, batching, sliced requests, and a replica that dies.
"""
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np
import pytest
import requests

from serve.client import DetectClient, ServiceError
from test_serve_units import png_bomb  # tests/serve is on sys.path (pytest prepend mode)

ray = pytest.importorskip("ray")
serve = pytest.importorskip("ray.serve")

ROOT = Path(__file__).resolve().parents[2]
KEY_ENV = "DETPIPE_TEST_SERVE_API_KEY"
KEY = "test-key-5d1c"
THRESHOLD = 0.01  # the tiny checkpoint scores low; compare everything it finds
MAX_IMAGE_BYTES = 2 * 1024 * 1024


def renamed_checkpoint(source: Path, target: Path) -> Path:
    """A second model: the same weights, other category names and epoch (so another version)."""
    from detection.engine.checkpoint import load_checkpoint, save_checkpoint

    state = load_checkpoint(source)
    state["categories"] = [{**c, "name": f"{c['name']}_b"} for c in state["categories"]]
    state["epoch"] = int(state.get("epoch", 0)) + 1000
    save_checkpoint(target, state)
    return target


@pytest.fixture(scope="module")
def service(tiny_checkpoint, tmp_path_factory):
    """Ray + Serve on a free loopback port with apps 'detect' (models a and b), 'secure' (API key) and 'tight'
    (one request at a time, two queued)."""
    from serve.app import build_app
    from serve.launch import free_port

    second = renamed_checkpoint(tiny_checkpoint, tmp_path_factory.mktemp("models") / "b.pt")
    os.environ[KEY_ENV] = KEY  # replicas inherit the environment of the Ray started here
    ray.init(num_cpus=4, include_dashboard=False, log_to_driver=False)
    port = free_port()
    try:
        serve.start(http_options={"host": "127.0.0.1", "port": port})
        common = {"num_cpus": 0.5, "torch_threads": 1, "max_batch_size": 8, "batch_wait_timeout_s": 0.05,
                  "health_check_period_s": 1.0, "max_image_bytes": MAX_IMAGE_BYTES}
        serve.run(build_app({"checkpoints": {"a": str(tiny_checkpoint), "b": str(second)}, **common}),
                  name="detect", route_prefix="/")
        serve.run(build_app({"checkpoints": {"a": str(tiny_checkpoint)}, "api_key_env": KEY_ENV, **common}),
                  name="secure", route_prefix="/secure")
        tight = {**common, "max_batch_size": 1, "max_ongoing_requests": 1, "max_queued_requests": 2}
        serve.run(build_app({"checkpoints": {"a": str(tiny_checkpoint)}, **tight}), name="tight",
                  route_prefix="/tight")
        url = f"http://127.0.0.1:{port}"
        DetectClient(url, api_key="").wait_ready(timeout=60)
        yield url
    finally:
        os.environ.pop(KEY_ENV, None)
        serve.shutdown()
        ray.shutdown()


@pytest.fixture(scope="module")
def image_bytes(shapes_image) -> bytes:
    return Path(shapes_image).read_bytes()


def post(url: str, data: bytes, content_type: str = "image/png", **params) -> requests.Response:
    return requests.post(f"{url}/v1/detect", data=data, headers={"Content-Type": content_type}, params=params,
                         timeout=60)


def assert_same_detections(got: list[dict], want: list[dict], tol: float = 0.05) -> None:
    """Same boxes, scores and categories; order may differ only between equal scores."""
    assert len(got) == len(want)
    key = lambda d: (d["category_id"], round(d["score"], 2), [round(v) for v in d["bbox"]])  # noqa: E731
    for g, w in zip(sorted(got, key=key), sorted(want, key=key)):
        assert g["category_id"] == w["category_id"]
        assert g["score"] == pytest.approx(w["score"], abs=2e-3)
        assert g["bbox"] == pytest.approx(w["bbox"], abs=tol)


def test_health_models_and_openapi(service):
    assert requests.get(f"{service}/healthz", timeout=10).json() == {"status": "ok",
                                                                     "models": {"a": "ready", "b": "ready"}}
    listing = requests.get(f"{service}/v1/models", timeout=10).json()
    assert listing["default"] == "a"
    by_name = {m["name"]: m for m in listing["models"]}
    assert set(by_name) == {"a", "b"}
    for info in by_name.values():
        assert info["categories"] and info["input_size"] > 0 and isinstance(info["metrics"], dict)
    paths = requests.get(f"{service}/openapi.json", timeout=10).json()["paths"]
    assert {"/v1/detect", "/v1/detect/batch", "/v1/models", "/healthz"} <= set(paths)


def test_answers_match_detection_predict(service, tiny_checkpoint, shapes_image, image_bytes, tmp_path):
    out = tmp_path / "pred"
    cmd = [sys.executable, "-m", "detection.predict", "--checkpoint", str(tiny_checkpoint), "--source",
           str(shapes_image), "--out", str(out), "--score-threshold", str(THRESHOLD), "--no-draw"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    subprocess.run(cmd, check=True, env=env, cwd=ROOT, capture_output=True, timeout=300)
    expected = [{k: r[k] for k in ("bbox", "score", "category_id")}
                for r in json.loads((out / "predictions.json").read_text())]
    answer = post(service, image_bytes, score_threshold=THRESHOLD).json()
    height, width = cv2.imread(str(shapes_image)).shape[:2]
    assert (answer["model"], answer["width"], answer["height"]) == ("a", width, height)
    assert answer["time_ms"] > 0 and answer["version"]
    assert_same_detections(answer["detections"], expected)
    files = {"image": (Path(shapes_image).name, image_bytes, "image/png")}
    multipart = requests.post(f"{service}/v1/detect", files=files, params={"score_threshold": THRESHOLD},
                              timeout=60).json()
    assert_same_detections(multipart["detections"], expected)
    client = DetectClient(service).detect(shapes_image, score_threshold=THRESHOLD)
    assert_same_detections(client["detections"], expected)


def test_a_request_asks_the_model_for_more_than_the_checkpoints_postprocessing(service, image_bytes):
    """score_threshold and max_detections are the model's post-processing for the request, not a cut of what the
    checkpoint's model.postprocess (configs/demo.yaml: the default threshold, 50 detections) let through; left out,
    the checkpoint's apply. Below the checkpoint's threshold: test_serve_postprocess.py (this one scores high)."""
    from detection.config import DEFAULT_SCORE_THRESHOLD

    info = {m["name"]: m for m in DetectClient(service).models()["models"]}["a"]
    assert (info["score_threshold"], info["max_detections"]) == (DEFAULT_SCORE_THRESHOLD, 50)
    default = post(service, image_bytes).json()["detections"]
    assert 0 < len(default) <= 50 and all(d["score"] >= DEFAULT_SCORE_THRESHOLD for d in default)
    more = post(service, image_bytes, score_threshold=0.001, max_detections=1000).json()["detections"]
    assert len(more) > 50 and all(d["score"] >= 0.001 for d in more)
    assert_same_detections(more[:len(default)], default)


def test_sliced_answer_matches_detection_predict_slice(service, tiny_checkpoint, shapes_dir, tmp_path):
    """A 256 px mosaic of four shapes images, cut into 128 px windows (plus the whole image) over HTTP and by
    `detpipe predict --slice` with the same settings: the same boxes, one image or in a batch, from a model
    deployment or a model colocated in the ingress."""
    from detection.cli.predict import main as predict_main

    tiles = [cv2.imread(str(path)) for path in sorted((shapes_dir / "images").iterdir())[:4]]
    picture = tmp_path / "mosaic.png"
    cv2.imwrite(str(picture), np.concatenate([np.concatenate(tiles[:2], 1), np.concatenate(tiles[2:], 1)], 0))
    settings = {"slice": 128, "overlap": 0.25, "slice_full": True, "slice_merge": "nmm", "score_threshold": 0.05}
    assert predict_main(["--checkpoint", str(tiny_checkpoint), "--source", str(picture), "--out", str(tmp_path / "p"),
                         "--slice", "128", "--overlap", "0.25", "--slice-full", "--slice-merge", "nmm",
                         "--score-threshold", "0.05", "--no-draw", "--device", "cpu"]) == 0
    expected = [{k: r[k] for k in ("bbox", "score", "category_id")}
                for r in json.loads((tmp_path / "p" / "predictions.json").read_text())]
    client = DetectClient(service)
    answer = client.detect(picture, **settings)
    assert expected and (answer["width"], answer["height"]) == (256, 256) and answer["batch_size"] > 1
    assert_same_detections(answer["detections"], expected)
    batch = client.detect_batch([picture, picture], **settings)["results"]
    colocated = DetectClient(service + "/secure", api_key=KEY).detect(picture, **settings)  # the model in the ingress
    for result in [*batch, colocated]:
        assert_same_detections(result["detections"], expected)
    whole = client.detect(picture, score_threshold=0.05, slice=0)["detections"]
    assert [d["bbox"] for d in whole] != [d["bbox"] for d in answer["detections"]]


def test_bad_slice_parameters_get_422_naming_them_and_size_limits_still_hold(service, image_bytes):
    for params, name in (({"slice": 16}, "slice"), ({"slice": 64, "overlap": 0.9}, "overlap"),
                         ({"slice": 64, "overlap": -0.1}, "overlap"), ({"slice": 64, "slice_merge": "wbf"},
                                                                          "slice_merge"),
                         ({"slice": "big"}, "slice")):
        for path in ("/v1/detect", "/v1/detect/batch"):
            response = requests.post(f"{service}{path}", params=params, timeout=60,
                                     files={"images" if "batch" in path else "image": ("a.png", image_bytes)})
            assert response.status_code == 422, (params, path, response.text)
            assert response.json()["error"] == "invalid_parameter" and name in response.json()["detail"], params
    bomb = post(service, png_bomb(20000), slice=512)
    assert bomb.status_code == 413 and "slicing does not lift" in bomb.json()["detail"]
    body = post(service, image_bytes + bytes(MAX_IMAGE_BYTES), slice=512)
    assert body.status_code == 413 and "max_image_bytes" in body.json()["detail"]


def drawn_request(url: str, data: bytes, how: str) -> requests.Response:
    """POST /v1/detect asking for the drawn answer by ?draw=true or by Accept: image/jpeg."""
    params = {"score_threshold": THRESHOLD, **({"draw": "true"} if how == "query" else {})}
    headers = {"Content-Type": "image/png", **({"Accept": "image/jpeg"} if how == "accept" else {})}
    return requests.post(f"{url}/v1/detect", data=data, params=params, headers=headers, timeout=60)


def test_drawn_answer_is_a_jpeg_of_the_original_size(service, shapes_image):
    from detection.viz.detections import draw_detections

    bgr = cv2.imread(str(shapes_image))
    wide = np.ascontiguousarray(np.concatenate([bgr, bgr[:, :72]], axis=1))  # 200 x 128: not the model's square
    png = cv2.imencode(".png", wide)[1].tobytes()
    answer = post(service, png, score_threshold=THRESHOLD).json()
    assert answer["detections"]
    for how in ("query", "accept"):
        response = drawn_request(service, png, how)
        assert response.status_code == 200 and response.headers["content-type"] == "image/jpeg", how
        drawn = cv2.imdecode(np.frombuffer(response.content, np.uint8), cv2.IMREAD_COLOR)
        assert drawn is not None and drawn.shape == wide.shape  # original width and height, not enlarged
        header = json.loads(response.headers["X-Detect-Answer"])
        assert (header["model"], header["width"], header["height"]) == ("a", 200, 128)
        assert_same_detections(header["detections"], answer["detections"])
        assert int(response.headers["X-Detections-Count"]) == len(answer["detections"])
        expected = draw_detections(wide, header["detections"], enlarge=False)  # detection.predict's drawing
        boxes = np.any(expected != wide, axis=2)
        assert boxes.mean() > 0.01
        off_expected = np.abs(drawn.astype(int) - expected)[boxes].mean()
        off_plain = np.abs(drawn.astype(int) - wide)[boxes].mean()
        assert off_expected < 12 < off_plain, (off_expected, off_plain)  # JPEG noise vs boxes and labels
    assert DetectClient(service).draw(png, score_threshold=THRESHOLD)[:2] == b"\xff\xd8"
    for accept in ("*/*", "application/json, image/jpeg;q=0.5", "image/jpeg;q=0"):  # JSON still the default
        response = requests.post(f"{service}/v1/detect", data=png, timeout=60,
                                 headers={"Content-Type": "image/png", "Accept": accept})
        assert response.headers["content-type"] == "application/json" and response.json()["width"] == 200
    detect = requests.get(f"{service}/openapi.json", timeout=10).json()["paths"]["/v1/detect"]["post"]
    assert "draw" in [p["name"] for p in detect["parameters"]]
    assert {"application/json", "image/jpeg"} <= set(detect["responses"]["200"]["content"])


def test_batch_endpoint_answers_each_image(service, shapes_image, image_bytes):
    rgb = cv2.cvtColor(cv2.imread(str(shapes_image)), cv2.COLOR_BGR2RGB)
    client = DetectClient(service)
    answer = client.detect_batch([shapes_image, rgb, rgb[: rgb.shape[0] // 2]], score_threshold=THRESHOLD)
    assert len(answer["results"]) == 3
    assert [r["height"] for r in answer["results"]] == [rgb.shape[0], rgb.shape[0], rgb.shape[0] // 2]
    single = client.detect(image_bytes, score_threshold=THRESHOLD)
    assert_same_detections(answer["results"][0]["detections"], single["detections"])
    assert_same_detections(answer["results"][1]["detections"], single["detections"])


def bad_requests(image_bytes: bytes) -> dict:
    """name -> (content type, body, query params, expected status, expected error code)."""
    rgb = cv2.imdecode(np.frombuffer(image_bytes, np.uint8), cv2.IMREAD_COLOR)
    jpeg = cv2.imencode(".jpg", rgb)[1].tobytes()
    tiny = cv2.imencode(".png", rgb[:1, :1])[1].tobytes()
    return {
        "empty body": ("image/png", b"", {}, 400, "empty_body"),
        "not an image": ("image/jpeg", b"GIF89a no this is text" * 10, {}, 400, "invalid_image"),
        "truncated jpeg": ("image/jpeg", jpeg[: len(jpeg) // 2], {}, 400, "truncated_image"),
        "1x1 image": ("image/png", tiny, {}, 422, "image_too_small"),
        "20000x20000 bomb": ("image/png", png_bomb(20000), {}, 413, "image_too_large"),
        "body over the limit": ("image/png", image_bytes + bytes(MAX_IMAGE_BYTES), {}, 413, "body_too_large"),
        "text/plain": ("text/plain", image_bytes, {}, 415, "unsupported_media_type"),
        "application/json": ("application/json", b'{"image": 1}', {}, 415, "unsupported_media_type"),
        "no content type": ("", image_bytes, {}, 415, "unsupported_media_type"),
        "threshold above 1": ("image/png", image_bytes, {"score_threshold": 1.5}, 422, "invalid_parameter"),
        "threshold below 0": ("image/png", image_bytes, {"score_threshold": -0.1}, 422, "invalid_parameter"),
        "threshold not a number": ("image/png", image_bytes, {"score_threshold": "high"}, 422,
                                   "invalid_parameter"),
        "max_detections 0": ("image/png", image_bytes, {"max_detections": 0}, 422, "invalid_parameter"),
        "max_detections 1001": ("image/png", image_bytes, {"max_detections": 1001}, 422, "invalid_parameter"),
        "unknown model": ("image/png", image_bytes, {"model": "nope"}, 404, "unknown_model"),
    }


def test_bad_input_gets_json_errors_and_the_service_keeps_serving(service, image_bytes):
    for name, (kind, body, params, status, error) in bad_requests(image_bytes).items():
        headers = {"Content-Type": kind} if kind else {}
        response = requests.post(f"{service}/v1/detect", data=body, headers=headers, params=params, timeout=60)
        assert response.status_code == status, (name, response.text)
        payload = response.json()
        assert payload["error"] == error and len(payload["detail"]) > 10, (name, payload)
    assert post(service, image_bytes).status_code == 200


def test_bad_multipart_and_batch_input(service, image_bytes):
    no_field = requests.post(f"{service}/v1/detect", files={"picture": ("x.png", image_bytes, "image/png")},
                             timeout=60)
    assert (no_field.status_code, no_field.json()["error"]) == (422, "missing_field")
    files = [("images", ("good.png", image_bytes, "image/png")), ("images", ("bad.png", b"junk", "image/png"))]
    bad = requests.post(f"{service}/v1/detect/batch", files=files, timeout=60)
    assert bad.status_code == 400 and "image 1 (bad.png)" in bad.json()["detail"]
    raw = requests.post(f"{service}/v1/detect/batch", data=image_bytes, headers={"Content-Type": "image/png"},
                        timeout=60)
    assert raw.status_code == 415
    with pytest.raises(ServiceError) as info:
        DetectClient(service).detect(image_bytes, model="missing")
    assert info.value.status == 404 and "served: a, b" in info.value.detail


def test_concurrent_requests_are_batched_and_all_succeed(service, image_bytes):
    single = post(service, image_bytes, score_threshold=THRESHOLD).json()
    with ThreadPoolExecutor(32) as pool:
        answers = list(pool.map(lambda _: post(service, image_bytes, score_threshold=THRESHOLD), range(64)))
    assert [a.status_code for a in answers] == [200] * 64
    sizes = [a.json()["batch_size"] for a in answers]
    assert max(sizes) > 1, sizes
    for answer in answers:  # batched answers equal the unbatched one
        assert_same_detections(answer.json()["detections"], single["detections"])


def test_two_models_side_by_side(service, image_bytes):
    client = DetectClient(service)
    a = client.detect(image_bytes, score_threshold=THRESHOLD, model="a")
    b = client.detect(image_bytes, score_threshold=THRESHOLD, model="b")
    assert (a["model"], b["model"]) == ("a", "b") and a["version"] != b["version"]
    assert a["detections"], "the tiny checkpoint should find something at a 0.01 threshold"
    assert all(d["category"].endswith("_b") for d in b["detections"])
    assert not any(d["category"].endswith("_b") for d in a["detections"])
    assert [d["bbox"] for d in a["detections"]] == [d["bbox"] for d in b["detections"]]  # same weights


def test_api_key_switch(service, image_bytes):
    secure = service + "/secure"
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": KEY}):
        response = requests.post(f"{secure}/v1/detect", data=image_bytes,
                                 headers={"Content-Type": "image/png", **headers}, timeout=60)
        assert response.status_code == 401 and response.json()["error"] == "unauthorized"
        assert response.headers["WWW-Authenticate"] == "Bearer"
    assert requests.get(f"{secure}/v1/models", timeout=10).status_code == 401
    assert requests.get(f"{secure}/healthz", timeout=10).status_code == 200  # probes need no key
    assert DetectClient(secure, api_key=KEY).detect(image_bytes)["model"] == "a"
    assert DetectClient(secure, api_key=KEY).models()["models"][0]["name"] == "a"
    assert post(service, image_bytes).status_code == 200  # the app without a key stays open


def test_overload_gets_503_with_retry_after_quickly_then_recovers(service, image_bytes):
    """Each request runs as 25 windows (slice=32), so that being served, or waiting for a turn, takes clearly
    longer than the HTTP round trip of a refusal, however loaded the machine is (the tiny model alone answers in
    about the time a refusal takes on a busy CI machine)."""
    tight = service + "/tight"

    def timed(_: int) -> tuple[float, requests.Response]:
        start = time.perf_counter()
        response = post(tight, image_bytes, slice=32)
        return time.perf_counter() - start, response

    with ThreadPoolExecutor(32) as pool:
        answers = list(pool.map(timed, range(64)))
    refused = [(t, r) for t, r in answers if r.status_code == 503]
    assert {r.status_code for _, r in answers} == {200, 503} and len(refused) >= 16, [r.status_code for _, r in answers]
    for _, response in refused:
        assert response.headers["Retry-After"] == "1"
        assert response.json()["error"] == "overloaded" and "max_queued_requests" in response.json()["detail"]
    served_p50 = np.median([t for t, r in answers if r.status_code == 200])
    assert np.median([t for t, _ in refused]) < served_p50 / 2, "a refusal should not wait its turn"
    assert post(tight, image_bytes).status_code == 200  # the flood is over: served again


def wait_until_dead(actor, timeout: float = 30.0) -> None:
    """Return once calls to `actor` fail because it died (ray.kill takes effect asynchronously)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            ray.get(actor.__ray_ready__.remote(), timeout=5)
        except ray.exceptions.RayActorError:
            return
        except ray.exceptions.GetTimeoutError:
            pass
        assert time.monotonic() < deadline, "the killed replica still answers"
        time.sleep(0.1)


def test_a_dead_replica_is_replaced_and_requests_succeed_again(service, image_bytes):
    """Runs last: kills model a's only replica; Serve starts a new one; b keeps serving meanwhile."""
    handle = serve.get_deployment_handle("model-a", app_name="detect")
    before = handle.stats.remote().result(timeout_s=30)
    replica = ray.get_actor(before["replica"], namespace="serve")
    ray.kill(replica, no_restart=True)
    wait_until_dead(replica)  # so every 200 below comes from a new replica
    statuses, deadline = [], time.monotonic() + 120
    while time.monotonic() < deadline:
        response = post(service, image_bytes)
        statuses.append(response.status_code)
        if response.status_code == 200:
            break
        assert response.status_code == 503 and response.json()["error"] == "model_unavailable", response.text
        assert post(service, image_bytes, model="b").status_code == 200
        time.sleep(0.5)
    assert statuses[-1] == 200, statuses
    after = handle.stats.remote().result(timeout_s=30)
    assert after["replica"] != before["replica"] and after["pid"] != before["pid"]
    assert requests.get(f"{service}/healthz", timeout=10).status_code == 200
