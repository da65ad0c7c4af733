"""A request's score_threshold and max_detections are the model's post-processing, below or above the checkpoint's
own (the default of a request that gives none); requests with other values share a batch and each gets what it
would alone. In-process (the model deployment's class without Ray), for a checkpoint and its ONNX export.
"""
import asyncio

import pytest

from detection.cli.export import main as export_main
from detection.engine.checkpoint import load_checkpoint, save_checkpoint
from serve.model import ModelServer, filter_detections
from serve.options import DEFAULT_PREDICTOR, ONNX_PREDICTOR

pytest.importorskip("ray")


@pytest.fixture(scope="module")
def picture(shapes_image):
    from datasets.core.images import read_rgb

    return read_rgb(shapes_image)


@pytest.fixture(scope="module")
def strict(tiny_checkpoint, picture, tmp_path_factory):
    """{backend: model file} of the tiny checkpoint with its own threshold between the worst and best score it
    gives `picture` and max_detections 2, and of its ONNX export; and that threshold."""
    from detection.inference.predictor import Predictor

    every = Predictor.from_checkpoint(tiny_checkpoint, "cpu").predict([picture], 0.0, 1000)[0]
    scores = [d["score"] for d in every]
    assert len(scores) > 4 and max(scores) - min(scores) > 1e-3, "the test needs detections of other scores"
    own = round((min(scores) + max(scores)) / 2, 4)
    folder = tmp_path_factory.mktemp("strict")
    state = load_checkpoint(tiny_checkpoint)
    state["config"]["model"]["postprocess"].update(score_threshold=own, max_detections=2)
    save_checkpoint(folder / "strict.pt", state)
    assert export_main(["--checkpoint", str(folder / "strict.pt"), "--format", "onnx", "--out",
                        str(folder / "strict.onnx"), "--check-images", "0"]) == 0
    return {"torch": folder / "strict.pt", "onnx": folder / "strict.onnx"}, own


@pytest.mark.parametrize("backend", ["torch", "onnx"])
def test_requests_below_and_above_the_checkpoints_values_share_a_batch(strict, picture, backend, capsys):
    files, own = strict
    predictor = ONNX_PREDICTOR if backend == "onnx" else DEFAULT_PREDICTOR
    server = ModelServer.func_or_class(name="m", checkpoint=str(files[backend]), device="cpu", torch_threads=1,
                                       predictor=predictor)
    assert server.info()["score_threshold"] == pytest.approx(own) and server.info()["max_detections"] == 2
    asked = [(None, None), (0.0, 1000), (own, 5), (0.9, 1), (0.001, None)]

    async def together():
        return await asyncio.gather(*[server.infer(picture, t, k) for t, k in asked])

    answers = asyncio.run(together())
    assert max(server.batch_sizes) > 1, "the requests after the first share a batch"
    for (t, k), answer in zip(asked, answers):
        wanted = server.predictor.postprocess_options.with_call(t, k)
        alone = server.predictor.predict([picture], t, k)[0]
        assert answer["detections"] == filter_detections(alone, wanted.score_threshold, wanted.max_detections)
    default, low = answers[0]["detections"], answers[1]["detections"]
    assert 0 < len(default) <= 2 and all(d["score"] >= own for d in default)
    assert len(low) > 2 and min(d["score"] for d in low) < own
    assert len(answers[4]["detections"]) == 2  # max_detections left out: the checkpoint's
    capsys.readouterr()
