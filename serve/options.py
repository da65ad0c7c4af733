"""Options of the detection service, from a CLI or a Serve config file's `args:`, checked once.

Unknown keys and bad values raise UserError naming the key; checkpoints map model names to paths.
"""
from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from datasets.core.errors import UserError
from detection.inference.slice_options import SliceOptions

DEFAULT_PREDICTOR = "detection.inference.predictor:Predictor"
ONNX_PREDICTOR = "detection.inference.onnx:OnnxPredictor"  # models given as .onnx files (detection.export)
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
INGRESS_MIN_QUEUED = 256  # max_queued_requests of the ingress is at least this (see ServiceOptions)
GENERIC_STEMS = ("checkpoint", "last", "best", "model", "final", "weights", "epoch")


def default_name(path: str) -> str:
    """A model name from a checkpoint path: the folder for generic file names (runs/demo/last.pt -> demo)."""
    p = Path(path)
    stem = p.stem if not p.stem.lower().startswith(GENERIC_STEMS) else p.resolve().parent.name
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", stem).strip("-.") or "model"
    return name[:64]


def parse_checkpoints(value: Any) -> dict[str, str]:
    """{name: path} from a dict, a 'NAME=PATH' / 'PATH' string, or a list of them."""
    if isinstance(value, dict):
        pairs = [(str(k), str(v)) for k, v in value.items()]
    elif isinstance(value, (str, list, tuple)):
        pairs = []
        for item in [value] if isinstance(value, str) else value:
            name, sep, path = str(item).partition("=")
            pairs.append((name, path) if sep and NAME_RE.match(name) else (default_name(str(item)), str(item)))
    else:
        raise UserError(f"checkpoints: expected a mapping name -> path or a list of NAME=PATH, got {value!r}")
    checkpoints: dict[str, str] = {}
    for name, path in pairs:
        if not NAME_RE.match(name):
            raise UserError(f"checkpoints: model name {name!r} must be letters, digits, '_', '.', '-'")
        if name in checkpoints:
            raise UserError(f"checkpoints: model name {name!r} is given twice; name them with NAME=PATH")
        if not Path(path).is_file():
            raise UserError(f"checkpoints: {name}: no checkpoint file at {path}")
        checkpoints[name] = str(Path(path).resolve())
    if not checkpoints:
        raise UserError("checkpoints: give at least one checkpoint")
    return checkpoints


@dataclass
class ServiceOptions:
    """Everything build_app takes. Batch and limit settings apply to every model."""

    checkpoints: dict[str, str]  # name -> checkpoint, or .onnx file from detection.export (run by onnxruntime)
    default_model: str | None = None  # the first checkpoint when left out
    device: str = "auto"  # 'auto' uses CUDA when the replica sees a GPU
    replicas: int | None = None  # per model; None leaves it to Serve (1, or autoscaling_config)
    autoscaling_config: dict | None = None  # per model deployment, Serve's AutoscalingConfig fields
    num_cpus: float = 1.0  # per model replica
    num_gpus: float | None = None  # per model replica; None: share one GPU if the cluster has one
    torch_threads: int = 0  # 0 leaves torch's thread count as Ray set it (the replica's num_cpus)
    max_batch_size: int = 8
    batch_wait_timeout_s: float = 0.0  # 0: a batch is what queued while the model was busy; > 0: also wait this long
    max_ongoing_requests: int = 64  # per model replica; keep it above max_batch_size
    max_queued_requests: int = 128  # per deployment, waiting for a replica; above it 503 + Retry-After (-1: no limit)
    retry_after_s: float = 1.0  # the Retry-After of those 503s
    # The ingress takes at least INGRESS_MIN_QUEUED: it answers without the model, and a request Serve's proxy
    # refuses gets a plain-text 503, where the ingress answers the JSON error of a model's full queue.
    max_image_bytes: int = 20 * 1024 * 1024
    max_batch_bytes: int = 64 * 1024 * 1024
    max_batch_images: int = 32
    max_pixels: int = 40_000_000
    min_side: int = 2
    api_key_env: str = "DETECT_API_KEY"
    health_check_period_s: float = 5.0
    access_log: bool = False  # Serve's per-request log lines; off by default, they cost ~25% throughput on 2 CPUs
    predictor: str = DEFAULT_PREDICTOR  # import path of a class with from_checkpoint/predict
    onnx_predictor: str = ONNX_PREDICTOR  # the same, for model files ending in .onnx
    colocate: bool | None = None  # detectors run inside the HTTP replica (one hop fewer); None: when there is one
    # detector and no tracker. False: a deployment per model (`model-<name>`), scaled apart from the HTTP front
    tracker: str | None = None  # '[NAME=]PATH' of a SiamFC checkpoint: POST /v1/track?init=x,y,w,h follows a box
    max_video_bytes: int = 32 * 1024 * 1024  # POST /v1/track: 413 above
    max_video_frames: int = 300  # POST /v1/track: 422 above
    max_video_pixels: int = 1280 * 720  # POST /v1/track: width*height of a frame, 422 above
    slice: int = 0  # /v1/detect: cut images into SxS windows by default (0: whole); a request's ?slice= overrides
    overlap: float = 0.2  # the default fraction of a window its neighbour shares (?overlap=)
    slice_full: bool = False  # with slicing, also run the whole image by default (?slice_full=)
    slice_merge: str = "nms"  # with slicing, merge boxes across windows by nms or nmm by default (?slice_merge=)

    @classmethod
    def from_dict(cls, args: dict) -> "ServiceOptions":
        """Options from a dict; unknown keys and out-of-range values are UserErrors."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(args) - known)
        if unknown:
            raise UserError(f"unknown service option(s) {unknown}; known: {sorted(known)}")
        if "checkpoints" not in args:
            raise UserError("service options: 'checkpoints' is required (name -> checkpoint path)")
        opts = cls(**{**args, "checkpoints": parse_checkpoints(args["checkpoints"])})
        opts.check()
        return opts

    def check(self) -> None:
        """Raise UserError for values that cannot work."""
        if self.default_model is None:
            self.default_model = next(iter(self.checkpoints))
        if self.default_model not in self.checkpoints:
            raise UserError(f"default_model {self.default_model!r} is not one of {sorted(self.checkpoints)}")
        positive = {"max_batch_size": self.max_batch_size, "max_ongoing_requests": self.max_ongoing_requests,
                    "max_image_bytes": self.max_image_bytes, "max_batch_images": self.max_batch_images,
                    "max_pixels": self.max_pixels, "min_side": self.min_side,
                    "max_video_bytes": self.max_video_bytes, "max_video_frames": self.max_video_frames,
                    "max_video_pixels": self.max_video_pixels}
        for key, value in positive.items():
            if not isinstance(value, int) or value < 1:
                raise UserError(f"{key} must be a positive integer, got {value!r}")
        if self.replicas is not None and (not isinstance(self.replicas, int) or self.replicas < 1):
            raise UserError(f"replicas must be a positive integer, got {self.replicas!r}")
        if self.replicas is not None and self.autoscaling_config:
            raise UserError("give either replicas or autoscaling_config, not both")
        if not isinstance(self.max_queued_requests, int) or not (self.max_queued_requests >= 1
                                                                 or self.max_queued_requests == -1):
            raise UserError(f"max_queued_requests must be a positive integer or -1 (no limit), "
                            f"got {self.max_queued_requests!r}")
        if not 0 <= self.retry_after_s <= 3600:
            raise UserError(f"retry_after_s must be within 0..3600 s, got {self.retry_after_s}")
        if not 0 <= self.batch_wait_timeout_s <= 10:
            raise UserError(f"batch_wait_timeout_s must be within 0..10 s, got {self.batch_wait_timeout_s}")
        self.tracker_checkpoint()
        self.slicing()

    def slicing(self) -> SliceOptions:
        """The default slicing of /v1/detect requests (size 0: whole images); UserError naming a bad value."""
        return SliceOptions(size=self.slice, overlap=self.overlap, full=self.slice_full, merge=self.slice_merge).check()

    def predictor_for(self, path: str) -> str:
        """The loader of one model file: ONNX Runtime for an .onnx file, else the checkpoint predictor."""
        return self.onnx_predictor if path.lower().endswith(".onnx") else self.predictor

    def colocated(self) -> bool:
        """Whether the detectors run in the ingress replica (see `colocate`)."""
        if self.colocate is not None:
            return bool(self.colocate)
        return len(self.checkpoints) == 1 and self.tracker is None

    def ingress_deployment_options(self) -> dict:
        """Ray Serve options of the HTTP front: light on its own; with colocated models, their replicas' resources,
        replica count and autoscaling too."""
        options: dict[str, Any] = {"logging_config": self.logging_config(),
                                   **self.admission(floor=INGRESS_MIN_QUEUED)}
        if self.colocated():
            gpus = self.gpus() if self.num_gpus is not None else min(1.0, self.gpus() * len(self.checkpoints))
            options.update(self.model_replicas(gpus))
        return options

    def model_deployment_options(self) -> dict:
        """Ray Serve options of each model deployment."""
        return {"max_ongoing_requests": self.model_ongoing(), **self.admission(),
                "logging_config": self.logging_config(), **self.model_replicas(self.gpus())}

    def model_ongoing(self) -> int:
        """Requests a model replica takes at once (max_ongoing_requests, at least a full batch)."""
        return max(self.max_ongoing_requests, self.max_batch_size)

    def model_replicas(self, gpus: float) -> dict:
        """Options of a deployment whose replicas hold the models: their CPUs and `gpus`, health checks, and the
        replica count or autoscaling."""
        options: dict[str, Any] = {"health_check_period_s": self.health_check_period_s,
                                   "max_constructor_retry_count": 3,  # a bad checkpoint fails fast
                                   "ray_actor_options": {"num_cpus": self.num_cpus, "num_gpus": gpus}}
        if self.replicas is not None:
            options["num_replicas"] = self.replicas
        if self.autoscaling_config:
            options["autoscaling_config"] = self.autoscaling_config
        return options

    def admission(self, floor: int = 1) -> dict:
        """Serve's admission control of a deployment: past max_queued_requests waiting (at least `floor`), 503 with
        Retry-After."""
        from ray.serve.config import BackpressureConfig

        limit = self.max_queued_requests if self.max_queued_requests == -1 else max(self.max_queued_requests, floor)
        return {"max_queued_requests": limit,
                "backpressure_config": BackpressureConfig(status_code=503, retry_after_s=self.retry_after_s)}

    def logging_config(self) -> dict:
        """Serve logging settings of every deployment of the app."""
        return {"enable_access_log": bool(self.access_log)}

    def gpus(self) -> float:
        """GPUs per model replica: as given, else an equal share of one GPU when the cluster has one."""
        if self.num_gpus is not None:
            return float(self.num_gpus)
        import ray

        has_gpu = ray.is_initialized() and ray.cluster_resources().get("GPU", 0) > 0
        if not has_gpu:
            return 0.0
        per_model = self.replicas or (self.autoscaling_config or {}).get("max_replicas", 1)
        return round(1.0 / ((len(self.checkpoints) + (self.tracker is not None)) * per_model), 4)

    def tracker_checkpoint(self) -> tuple[str, str] | None:
        """(name, absolute path) of the SiamFC tracker, None without one; UserError for a bad name or path."""
        if self.tracker is None:
            return None
        name, sep, path = str(self.tracker).partition("=")
        if not (sep and NAME_RE.match(name)):
            name, path = default_name(str(self.tracker)), str(self.tracker)
        if name in self.checkpoints:
            raise UserError(f"tracker: the name {name!r} is a detector's too; name it with tracker: NAME=PATH")
        if not Path(path).is_file():
            raise UserError(f"tracker: no checkpoint file at {path}")
        return name, str(Path(path).resolve())

    def tracker_deployment_options(self) -> dict:
        """Ray Serve options of the SiamFC tracker's deployment (`tracker`): a model replica's CPUs and GPU share."""
        return {"health_check_period_s": self.health_check_period_s, "max_constructor_retry_count": 3,
                **self.admission(),
                "ray_actor_options": {"num_cpus": self.num_cpus, "num_gpus": self.gpus()},
                "logging_config": self.logging_config()}

    def video_limits(self) -> dict:
        """The VideoLimits (serve.video) of POST /v1/track."""
        return {"max_bytes": self.max_video_bytes, "max_frames": self.max_video_frames,
                "max_pixels": self.max_video_pixels, "min_side": self.min_side}
