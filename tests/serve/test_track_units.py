"""/v1/track parts that need no running server: the tracker and video options (Python and command line), and
video reading against its limits. The HTTP behaviour is tested over loopback in test_track_http.py."""
from pathlib import Path

import numpy as np
import pytest

from datasets.core.errors import UserError
from datasets.core.video import mp4_writer
from serve.cli import options_from_args, parse_args
from serve.launch import served_models
from serve.options import ServiceOptions
from serve.video import TrackError, VideoLimits, read_video


@pytest.fixture
def files(tmp_path) -> tuple[Path, Path]:
    """Stand-ins for a detector and a SiamFC checkpoint (the options only check that the files exist)."""
    (tmp_path / "runs" / "siamfc_tiny").mkdir(parents=True)
    detector, tracker = tmp_path / "det.pt", tmp_path / "runs" / "siamfc_tiny" / "best.pt"
    detector.write_bytes(b"x")
    tracker.write_bytes(b"x")
    return detector, tracker


def test_tracker_option_names_the_tracker_and_checks_it(files, tmp_path):
    detector, tracker = files
    named = ServiceOptions.from_dict({"checkpoints": {"a": str(detector)}, "tracker": f"sot={tracker}"})
    assert named.tracker_checkpoint() == ("sot", str(tracker.resolve()))
    by_folder = ServiceOptions.from_dict({"checkpoints": {"a": str(detector)}, "tracker": str(tracker)})
    assert by_folder.tracker_checkpoint()[0] == "siamfc_tiny"  # best.pt is named after its run folder
    assert ServiceOptions.from_dict({"checkpoints": {"a": str(detector)}}).tracker_checkpoint() is None
    bad = [({"tracker": f"a={tracker}"}, "is a detector's too"), ({"tracker": str(tmp_path / "no.pt")}, "no.pt"),
           ({"max_video_frames": 0}, "max_video_frames"), ({"max_video_pixels": 1.5}, "max_video_pixels")]
    for extra, fragment in bad:
        with pytest.raises(UserError, match=fragment):
            ServiceOptions.from_dict({"checkpoints": {"a": str(detector)}, **extra})


def test_command_line_tracker_and_video_limits(files):
    detector, tracker = files
    args = parse_args(["--checkpoint", f"a={detector}", "--tracker", f"sot={tracker}", "--max-video-mb", "2",
                       "--max-video-frames", "50", "--max-video-megapixels", "0.3072"])
    options = options_from_args(args)
    assert (options["tracker"], options["max_video_bytes"], options["max_video_frames"],
            options["max_video_pixels"]) == (f"sot={tracker}", 2 * 1024 * 1024, 50, 640 * 480)
    assert served_models(options) == ["a", "sot (SiamFC tracker)"]
    defaults = ServiceOptions.from_dict(options_from_args(parse_args(["--checkpoint", str(detector)])))
    assert (defaults.tracker, defaults.max_video_frames, defaults.max_video_pixels) == (None, 300, 1280 * 720)


def test_read_video_limits(tmp_path):
    frames = [np.full((24, 32, 3), 40 * i, np.uint8) for i in range(5)]
    with mp4_writer(tmp_path / "clip.mp4", 12.0) as writer:
        for frame in frames:
            writer.write(frame)
    data = (tmp_path / "clip.mp4").read_bytes()
    video = read_video(data, VideoLimits())
    assert (len(video.frames), video.width, video.height, video.fps) == (5, 32, 24, 12.0)
    assert np.abs(video.frames[3].astype(int) - frames[3]).mean() < 8  # mp4v's loss, not another frame
    cases = [(VideoLimits(max_bytes=len(data) - 1), 413, "body_too_large"),
             (VideoLimits(max_frames=4), 422, "too_many_frames"),
             (VideoLimits(max_pixels=32 * 24 - 1), 422, "video_too_large"),
             (VideoLimits(min_side=25), 422, "video_too_small")]
    for limits, status, error in cases:
        with pytest.raises(TrackError) as info:
            read_video(data, limits)
        assert (info.value.status, info.value.error) == (status, error), limits
    with pytest.raises(TrackError, match="no video data"):
        read_video(b"", VideoLimits())
