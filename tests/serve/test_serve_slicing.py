"""Sliced inference in the service, without Ray: a request's slicing from the service's default and its parameters,
the options and flags that set the default, and a sliced request's windows sharing the batch queue with others.
"""
import asyncio

import numpy as np
import pytest

from datasets.core.errors import UserError
from datasets.core.images import read_rgb
from detection.inference.slice_options import SliceOptions
from detection.inference.slicing import predict_sliced
from serve.cli import options_from_args, parse_args
from serve.options import ServiceOptions
from serve.slice_request import request_slicing

pytest.importorskip("ray")


def test_request_parameters_replace_the_services_default():
    default = SliceOptions(size=128, overlap=0.1, full=True)
    assert request_slicing(default, None, None, None, None) == default
    assert request_slicing(default, 0, None, None, None) is None  # slice=0 turns the default off
    assert request_slicing(default, None, 0.5, False, "nmm") == SliceOptions(128, 0.5, False, "nmm")
    assert request_slicing(SliceOptions(), None, 0.3, None, None) is None  # no slice: whole images
    assert request_slicing(SliceOptions(), 64, None, None, None) == SliceOptions(size=64)
    for given, name in (((16, None), "slice"), ((None, 0.9), "overlap"), ((64, -0.1), "overlap")):
        with pytest.raises(UserError, match=f"^{name} must"):
            request_slicing(default, *given, None, None)


def test_service_default_from_options_and_flags(tiny_checkpoint):
    args = parse_args(["--checkpoint", str(tiny_checkpoint), "--slice", "256", "--overlap", "0.1", "--slice-full"])
    options = ServiceOptions.from_dict(options_from_args(args))
    assert options.slicing() == SliceOptions(size=256, overlap=0.1, full=True)
    assert ServiceOptions.from_dict({"checkpoints": str(tiny_checkpoint)}).slicing().size == 0
    with pytest.raises(UserError, match="^slice must"):
        ServiceOptions.from_dict({"checkpoints": str(tiny_checkpoint), "slice": 16})
    with pytest.raises(UserError, match="^overlap must"):
        ServiceOptions.from_dict({"checkpoints": str(tiny_checkpoint), "slice": 64, "overlap": 0.95})


def test_windows_share_the_batch_queue_with_other_requests(tiny_checkpoint, shapes_dir, shapes_image):
    """A 256 px mosaic sliced into 9 windows plus the whole image, and a plain request made at the same time: the
    plain one runs in a batch with windows; the sliced answer is `predict_sliced`'s on the same predictor."""
    from serve.model import ModelServer

    tiles = [read_rgb(path) for path in sorted((shapes_dir / "images").iterdir())[:4]]
    image = np.concatenate([np.concatenate(tiles[:2], 1), np.concatenate(tiles[2:], 1)], 0)
    server = ModelServer.func_or_class(name="m", checkpoint=str(tiny_checkpoint), device="cpu", torch_threads=1,
                                       max_batch_size=8)
    slicing = SliceOptions(size=128, overlap=0.25, full=True, merge="nmm")

    async def together():
        return await asyncio.gather(server.infer(image, 0.05, None, slicing),
                                    server.infer(read_rgb(shapes_image), 0.05, None))

    sliced, plain = asyncio.run(together())
    assert sum(size * count for size, count in server.batch_sizes.items()) == 9 + 1 + 1
    assert plain["batch_size"] > 1 and sliced["batch_size"] > 1
    want = predict_sliced(server.predictor, image, slicing, 0.05, None)  # each window at the checkpoint's max
    assert want and len(sliced["detections"]) == len(want)
    for got, expected in zip(sliced["detections"], want):
        assert got["category_id"] == expected["category_id"]
        assert got["bbox"] == pytest.approx(expected["bbox"], abs=0.05)
        assert got["score"] == pytest.approx(expected["score"], abs=1e-4)
