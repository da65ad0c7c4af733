"""POST /v1/track over real loopback HTTP: one Ray Serve instance for the module, with app 'track' (detector 'a'
and SiamFC tracker 'sot') at / and app 'plain' (detector only) at /plain. Answers equal `python -m detection.track`."""
import contextlib
from pathlib import Path

import cv2
import numpy as np
import pytest
import requests
import torch

from datasets.core.video import mp4_writer
from detection.cli.track import main as track_main
from detection.config import config_from_dict
from detection.engine.checkpoint import save_checkpoint
from detection.tracking.boxes import iou_matrix, xywh_to_xyxy
from detection.tracking.mot_io import read_mot
from detection.tracking.siamfc_net import build_siamfc_net

ray = pytest.importorskip("ray")
serve = pytest.importorskip("ray.serve")

FRAMES, SIDE = 10, 128
LIMITS = {"max_video_bytes": 256 * 1024, "max_video_frames": 12, "max_video_pixels": SIDE * SIDE}
MOT = {"high_threshold": 0.2, "low_threshold": 0.1, "new_track_threshold": 0.2, "min_hits": 1}  # a weak detector


def square_frames(frames: int = FRAMES, width: int = SIDE, height: int = SIDE) -> tuple[list, np.ndarray]:
    """BGR frames of a red square gliding over a blurred grey texture, and its boxes [T, 4] xywh."""
    rng = np.random.default_rng(0)
    background = cv2.GaussianBlur(rng.integers(60, 200, (height, width, 3)).astype(np.uint8), (0, 0), 3)
    images, boxes = [], []
    for t in range(frames):
        x, y = int(round(24 + 5.0 * t)), int(round(52 + 20 * np.sin(t / 3)))
        image = background.copy()
        image[y:y + 24, x:x + 24] = (30, 30, 220)
        images.append(image)
        boxes.append([x, y, 24, 24])
    return images, np.array(boxes, dtype=np.float64)


def write_video(path: Path, frames: list) -> bytes:
    with mp4_writer(path, 10.0) as writer:
        for frame in frames:
            writer.write(frame)
    return path.read_bytes()


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> tuple[Path, np.ndarray]:
    """The square video (10 frames, 128x128 MP4) and its ground truth boxes."""
    frames, boxes = square_frames()
    path = tmp_path_factory.mktemp("clip") / "square.mp4"
    write_video(path, frames)
    return path, boxes


@pytest.fixture(scope="module")
def siamfc_checkpoint(tmp_path_factory) -> Path:
    """An untrained siamfc_tiny, seeded: it already follows a red square over a grey texture."""
    torch.manual_seed(0)
    cfg = config_from_dict({"model": {"name": "siamfc", "backbone": "siamfc_tiny"}})
    path = tmp_path_factory.mktemp("siamfc") / "best.pt"
    save_checkpoint(path, {"config": cfg.to_dict(), "model": build_siamfc_net(cfg.model).state_dict(),
                           "categories": []})
    return path


@pytest.fixture(scope="module")
def service(tiny_checkpoint, siamfc_checkpoint):
    """Ray + Serve on a free loopback port: app 'track' (a + sot) at /, app 'plain' (a only) at /plain."""
    from serve.app import build_app
    from serve.launch import free_port

    ray.init(num_cpus=4, include_dashboard=False, log_to_driver=False)
    port = free_port()
    try:
        serve.start(http_options={"host": "127.0.0.1", "port": port})
        # one frame a model call, on the CPU with one thread: the same arithmetic as the CLI in this process
        common = {"checkpoints": {"a": str(tiny_checkpoint)}, "num_cpus": 0.5, "torch_threads": 1, "device": "cpu",
                  "max_batch_size": 1, "health_check_period_s": 1.0, **LIMITS}
        serve.run(build_app({**common, "tracker": f"sot={siamfc_checkpoint}"}), name="track", route_prefix="/")
        serve.run(build_app(common), name="plain", route_prefix="/plain")
        yield f"http://127.0.0.1:{port}"
    finally:
        ray.shutdown()  # the local cluster goes, Serve with it (serve.shutdown first would add ~5 s)


def post(url: str, data: bytes, content_type: str = "video/mp4", **params) -> requests.Response:
    headers = {"Content-Type": content_type} if content_type else {}
    return requests.post(f"{url}/v1/track", data=data, headers=headers, params=params, timeout=120)


@contextlib.contextmanager
def one_thread():
    """The replicas' torch_threads=1, for CLI runs in this process."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def cli(args: list[str], out: Path) -> Path:
    with one_thread():
        assert track_main([*args, "--out", str(out), "--no-video", "--device", "cpu"]) == 0
    return out / "square.txt"


def test_single_object_follows_the_box_as_the_cli_does(service, clip, siamfc_checkpoint, tmp_path):
    video, truth = clip
    init = ",".join(f"{v:g}" for v in truth[0])
    answer = post(service, video.read_bytes(), init=init)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["mode"], body["model"], body["frames"], body["width"], body["height"]) == (
        "single", "sot", FRAMES, SIDE, SIDE)
    assert body["fps"] == pytest.approx(10.0) and body["time_ms"] > 0
    assert [f["frame"] for f in body["tracks"]] == list(range(1, FRAMES + 1))
    objects = [f["objects"][0] for f in body["tracks"]]
    assert all(len(f["objects"]) == 1 and f["objects"][0]["id"] == 1 for f in body["tracks"])
    assert objects[0] == {"id": 1, "bbox": truth[0].tolist(), "score": None, "category_id": None, "category": None}
    assert all(0 <= o["score"] <= 1 for o in objects[1:])
    boxes = np.array([o["bbox"] for o in objects])
    expected = np.loadtxt(cli(["--source", str(video), "--checkpoint", str(siamfc_checkpoint), "--init", init],
                              tmp_path / "cli"), delimiter=",")
    np.testing.assert_allclose(boxes, expected, atol=0.011)
    ious = np.diag(iou_matrix(xywh_to_xyxy(boxes), xywh_to_xyxy(truth)))
    assert ious.mean() > 0.7, ious  # it follows the square
    files = {"video": ("square.mp4", video.read_bytes(), "video/mp4")}  # multipart, naming the tracker
    multipart = requests.post(f"{service}/v1/track", files=files, params={"init": init, "model": "sot"}, timeout=120)
    assert multipart.json()["tracks"] == body["tracks"]


def test_multi_object_tracks_a_detector_as_the_cli_does(service, clip, tiny_checkpoint, tmp_path):
    video, _ = clip
    answer = post(service, video.read_bytes(), model="a", **MOT)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["mode"], body["model"], body["frames"]) == ("multi", "a", FRAMES)
    assert [f["frame"] for f in body["tracks"]] == list(range(1, FRAMES + 1))
    rows = [(f["frame"], o["id"], *o["bbox"], o["score"]) for f in body["tracks"] for o in f["objects"]]
    assert len(rows) >= FRAMES, "the tiny detector at these thresholds tracks something in every frame"
    names = {c["name"] for c in requests.get(f"{service}/v1/models", timeout=10).json()["models"][0]["categories"]}
    assert all(o["category"] in names and o["category_id"] >= 1 for f in body["tracks"] for o in f["objects"])
    options = [f"--{key.replace('_', '-')}={value}" for key, value in MOT.items()]
    expected = read_mot(cli(["--source", str(video), "--checkpoint", str(tiny_checkpoint), *options],
                            tmp_path / "cli"))
    want = np.column_stack([expected.frames, expected.ids, expected.boxes, expected.scores])
    got = np.array(sorted(rows))
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want[np.lexsort(want.T[::-1])], atol=0.011)


def test_openapi_documents_the_route(service):
    spec = requests.get(f"{service}/openapi.json", timeout=10).json()
    route = spec["paths"]["/v1/track"]["post"]
    assert {"video/mp4", "multipart/form-data"} <= set(route["requestBody"]["content"])
    assert {"init", "model", "low_threshold", "min_hits"} <= {p["name"] for p in route["parameters"]}
    assert {"200", "400", "404", "413", "415", "422"} <= set(route["responses"])
    assert route["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith("/TrackResponse")
    assert route["responses"]["413"]["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorResponse")
    assert {"TrackResponse", "FrameTracks", "TrackedObject"} <= set(spec["components"]["schemas"])


def bad_videos(folder: Path, good: bytes) -> dict[str, bytes]:
    """Videos the service must refuse: over the limits, unreadable, without frames."""
    frames, _ = square_frames(16)
    zero = cv2.VideoWriter(str(folder / "zero.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 10, (SIDE, SIDE))
    zero.release()  # a writer that got no frame: a stub file OpenCV cannot open
    blank = bytearray(good)  # the container intact, its frame data zeroed: it opens, no frame decodes
    start, end = blank.find(b"mdat") + 4, blank.find(b"moov")
    assert 4 <= start < end
    blank[start:end - 4] = bytes(end - 4 - start)
    return {"long": write_video(folder / "long.mp4", frames),
            "wide": write_video(folder / "wide.mp4", square_frames(3, width=SIDE + 32)[0]),
            "zero": (folder / "zero.mp4").read_bytes(), "blank": bytes(blank)}


def bad_requests(good: bytes, videos: dict) -> dict[str, tuple]:
    """name -> (app prefix, body, content type, query, expected status, expected error code)."""
    sot, mot = {"init": "24,52,24,24"}, {"model": "a"}
    return {
        "empty body": ("", b"", "video/mp4", mot, 400, "empty_body"),
        "not a video": ("", b"this is no video at all " * 20, "video/mp4", mot, 400, "invalid_video"),
        "stub with no frames": ("", videos["zero"], "video/mp4", sot, 400, "invalid_video"),
        "no frame decodes": ("", videos["blank"], "video/mp4", mot, 422, "no_frames"),
        "over the byte limit": ("", good + bytes(LIMITS["max_video_bytes"]), "video/mp4", mot, 413, "body_too_large"),
        "too many frames": ("", videos["long"], "video/mp4", mot, 422, "too_many_frames"),
        "frames too large": ("", videos["wide"], "video/mp4", sot, 422, "video_too_large"),
        "init outside the frame": ("", good, "video/mp4", {"init": "120,52,24,24"}, 422, "init_outside_frame"),
        "init of zero size": ("", good, "video/mp4", {"init": "24,52,0,24"}, 422, "invalid_init"),
        "init not 4 numbers": ("", good, "video/mp4", {"init": "24,52,24"}, 422, "invalid_init"),
        "init without a tracker": ("/plain", good, "video/mp4", sot, 404, "no_tracker"),
        "init with a detector": ("", good, "video/mp4", {**sot, "model": "a"}, 422, "init_with_detector"),
        "init with an unknown model": ("", good, "video/mp4", {**sot, "model": "nope"}, 404, "unknown_model"),
        "unknown model": ("", good, "video/mp4", {"model": "nope"}, 404, "unknown_model"),
        "the tracker without init": ("", good, "video/mp4", {"model": "sot"}, 422, "missing_parameter"),
        "neither init nor model": ("", good, "video/mp4", {}, 422, "missing_parameter"),
        "low above high threshold": ("", good, "video/mp4", {**mot, "low_threshold": 0.9}, 422, "invalid_parameter"),
        "unknown parameter": ("", good, "video/mp4", {**mot, "init_box": "1,2,3,4"}, 422, "invalid_parameter"),
        "an image content type": ("", good, "image/png", mot, 415, "unsupported_media_type"),
    }


def test_bad_input_gets_json_errors_and_the_service_keeps_serving(service, clip, tmp_path):
    good = clip[0].read_bytes()
    for name, (prefix, body, kind, query, status, error) in bad_requests(good, bad_videos(tmp_path, good)).items():
        response = post(service + prefix, body, kind, **query)
        assert response.status_code == status, (name, response.text)
        payload = response.json()
        assert payload["error"] == error and len(payload["detail"]) > 10, (name, payload)
    no_field = requests.post(f"{service}/v1/track", files={"clip": ("x.mp4", good, "video/mp4")},
                             params={"model": "a"}, timeout=60)
    assert (no_field.status_code, no_field.json()["error"]) == (422, "missing_field")
    assert post(service, good, model="a").status_code == 200
    assert post(f"{service}/plain", good, model="a").json()["frames"] == FRAMES
