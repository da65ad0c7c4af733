"""Typed run configuration: dataclasses, YAML load/save and `key.sub=value` overrides.

Unknown keys and ill-typed values are UserErrors that name the key. Config -> kwargs happens here only.
"""
from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from datasets.core.atomic import atomic_open
from datasets.core.errors import UserError
from detection.registry import DETECTORS, TRACKERS


@dataclass
class SplitConfig:
    """One split of a COCO dataset: the annotations file and the folder its file_names are in."""

    annotations: str = ""
    images: str = ""
    proposals: str = ""  # R-CNN, Fast R-CNN: a proposals file (python -m detection.proposals) to use instead of
    # computing the model's own proposals into data.proposal_cache
    sequences: str = ""  # SiamFC: a folder of tracking sequences (each frames/ + groundtruth_rect.txt, OTB boxes):
    # training pairs from them (besides the COCO split's), or the validation's sequences


@dataclass
class AugmentConfig:
    """Training augmentation (albumentations, bbox-aware); probabilities in 0..1."""

    hflip: float = 0.5
    scale_min: float = 0.75
    scale_max: float = 1.25
    color: float = 0.5
    mosaic: float = 0.0  # probability that a training image is a mosaic of four (YOLOv4/v5)


@dataclass
class DataConfig:
    train: SplitConfig = field(default_factory=SplitConfig)
    val: SplitConfig = field(default_factory=SplitConfig)
    input_size: int = 320  # images are letterboxed to input_size x input_size (not for a model that resizes them
    # itself, Detector.resizes_itself: model.faster_rcnn.min_size / model.ssd.fixed_size)
    num_workers: int = 0
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    multi_scale: list[float] = field(default_factory=list)  # [low, high]: each batch at a random size in
    # [low * input_size, high * input_size], a multiple of 32 (YOLO-style); empty: always input_size
    proposal_cache: str = ".cache/proposals"  # R-CNN, Fast R-CNN: proposals computed once per image and method
    cache_images: str = ""  # "" | ram | disk: keep decoded images (ram: all in memory, decoded once up front;
    # disk: .npy files in image_cache_dir, made at first use) so later epochs skip the PNG/JPEG decode
    image_cache_dir: str = ".cache/images"  # where data.cache_images=disk keeps them
    sampler: str = "random"  # random | repeat_factor: LVIS repeat-factor sampling, images holding rare classes seen
    # more often each epoch (detection.data.repeat_factor)
    repeat_threshold: float = 0.001  # repeat_factor: a class in fewer than this fraction of the images is repeated


# The one default of detection post-processing: model.postprocess's, and so of every call that gives none (predict,
# serve, its client, track).
DEFAULT_SCORE_THRESHOLD = 0.05
DEFAULT_MAX_DETECTIONS = 100
MAX_DETECTIONS_LIMIT = 1000  # the most a service request may ask for, and what an exported graph holds per image
# What evaluation asks the model for (detection.eval's defaults, the trainer's evaluation), as torchvision's
# references and Ultralytics' val do: COCO AP counts low-scoring detections too (COCOeval's maxDets of 100 is per
# image and category). The same per-call values as above, not the checkpoint's.
EVAL_SCORE_THRESHOLD = 0.001
EVAL_MAX_DETECTIONS = 300


@dataclass
class PostprocessConfig:
    """Post-processing every family shares (`model.postprocess`), applied inside the model at inference.

    score_threshold and max_detections are the checkpoint's defaults: a call (predict, serve, eval) may give its
    own, higher or lower, and they replace these for that call (`with_call`)."""

    score_threshold: float = DEFAULT_SCORE_THRESHOLD  # drop detections scoring below this
    nms_iou: float = 0.5  # suppress a box overlapping a better one by more than this IoU
    max_detections: int = DEFAULT_MAX_DETECTIONS  # per image, best first
    class_agnostic: bool = False  # NMS across classes instead of within each class

    def with_call(self, score_threshold: float | None = None,
                  max_detections: int | None = None) -> "PostprocessConfig":
        """These options with a call's own score threshold and max detections (None: keep this one's);
        UserError for a value out of range. (Traced export graphs pass the threshold as a 0-dim tensor.)"""
        if score_threshold is None and max_detections is None:
            return self
        if isinstance(score_threshold, (int, float)) and not 0 <= score_threshold <= 1:
            raise UserError(f"score_threshold must be within 0..1, got {score_threshold}")
        if max_detections is not None and max_detections < 1:
            raise UserError(f"max_detections must be at least 1, got {max_detections}")
        return dataclasses.replace(
            self, score_threshold=self.score_threshold if score_threshold is None else score_threshold,
            max_detections=self.max_detections if max_detections is None else int(max_detections))


@dataclass
class ModelConfig:
    """Which detector (DETECTORS registry) or trainable tracker (TRACKERS: siamfc) on which backbone (BACKBONES)
    and neck (NECKS).

    The family's own options live in `model.<name>` (e.g. `model.faster_rcnn.anchor_sizes`), held here
    in `options` as that family's dataclass; a section of another family is an error.
    """

    name: str = "faster_rcnn"
    backbone: str = "resnet50"
    pretrained: str = ""  # local path: backbone weights, or one of our checkpoints to fine-tune; never downloaded
    trainable_layers: int = -1  # -1: all; else freeze stem + early stages
    features: list[str] = field(default_factory=list)  # backbone maps to use; empty: the neck's default
    neck: str = ""  # NECKS entry (none, fpn, ...); empty: the family's default
    neck_channels: int = 256  # channels of the maps a neck makes (fpn, pan, ssd_extra's extra levels)
    neck_levels: int = 0  # maps the neck puts out; 0: its default (read by ssd_extra: features + extra levels)
    postprocess: PostprocessConfig = field(default_factory=PostprocessConfig)
    options: Any = field(default=None, metadata={"internal": True})  # read from / saved as model.<name>


@dataclass
class TrainConfig:
    epochs: int = 12
    batch_size: int = 4
    optimizer: str = "sgd"  # sgd | adamw
    lr: float = 0.02
    momentum: float = 0.9
    weight_decay: float = 1e-4
    scheduler: str = "cosine"  # cosine | step
    milestones: list[float] = field(default_factory=lambda: [0.67, 0.89])  # fractions of epochs (step)
    gamma: float = 0.1
    warmup_epochs: float = 1.0  # linear lr warmup before the schedule, in epochs; at most 10% of the run
    clip_grad_norm: float = 10.0  # 0 disables clipping
    amp: bool = True  # mixed precision, used only on CUDA
    channels_last: bool = False  # conv weights and maps in channels-last order (yolo_tiny.yaml: 12-15% faster steps)
    eval_every: int = 1  # epochs; 0 disables evaluation during training
    log_every: int = 20  # iterations
    max_minutes: float = 0.0  # fit the epochs into this many minutes of training (0: no limit); still evaluates, saves
    ema: float = 0.0  # decay of an exponential moving average of the weights, evaluated and saved (0: off)
    ema_warmup: int = 2000  # steps over which the EMA decay ramps up to `ema`
    plots: bool = True  # results.png each epoch; pr_curves, confusion_matrix, val_predictions each evaluation
    tensorboard: bool = False  # scalars into OUTPUT_DIR/tb/ (needs the tensorboard package)


@dataclass
class TrainerConfig:
    """Where training runs: in this process (num_workers 0), or on N Ray Train workers (DistributedDataParallel),
    on this machine or the Ray cluster RAY_ADDRESS names. train.batch_size stays the global batch."""

    num_workers: int = 0  # 0: train in this process; N >= 1: N Ray Train workers, each a shard of every batch
    use_gpu: bool = False  # one GPU per worker (NCCL); false: CPU workers (gloo)
    cpus_per_worker: float = 1.0  # CPUs Ray reserves per worker; torch threads per worker (at least 1)
    max_failures: int = 0  # restarts of the worker group from its last reported checkpoint after a failure


@dataclass
class Config:
    output_dir: str = "runs/exp"
    device: str = "auto"  # auto | cpu | cuda
    seed: int = 0
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict, as saved in config.yaml and checkpoints: family options under model.<name>."""
        data = dataclasses.asdict(self)
        options = data["model"].pop("options")
        if options is not None:
            data["model"][self.model.name] = options
        return data


# Keys that moved, so an old config gets told where they went instead of only "unknown key".
MOVED_KEYS = {
    "model.fpn": "model.neck (fpn | none)",
    "model.fpn_channels": "model.neck_channels",
    "model.faster_rcnn.box_score_thresh": "model.postprocess.score_threshold",
    "model.faster_rcnn.box_nms_thresh": "model.postprocess.nms_iou",
    "model.faster_rcnn.detections_per_img": "model.postprocess.max_detections",
    "train.warmup_iters": "train.warmup_epochs (warmup is counted in epochs, before the schedule)",
}


def _coerce(value: Any, kind: Any, key: str) -> Any:
    """Check/convert `value` to the annotated type `kind`; UserError naming `key` otherwise."""
    origin = typing.get_origin(kind)
    if origin in (typing.Union, types.UnionType):
        return _coerce(value, next(a for a in typing.get_args(kind) if a is not type(None)), key)
    if origin is list:
        if not isinstance(value, (list, tuple)):
            raise UserError(f"config key {key!r}: expected a list, got {value!r}")
        (item,) = typing.get_args(kind)
        return [_coerce(v, item, f"{key}[{i}]") for i, v in enumerate(value)]
    if kind is bool:
        if isinstance(value, bool):
            return value
        raise UserError(f"config key {key!r}: expected true or false, got {value!r}")
    if kind is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if kind is float and isinstance(value, str):  # YAML 1.1 reads 1e-4 (no dot) as a string
        try:
            return float(value)
        except ValueError:
            pass
    if kind is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if kind is str and isinstance(value, str):
        return value
    if kind is str and isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    raise UserError(f"config key {key!r}: expected {getattr(kind, '__name__', kind)}, got {value!r}")


def _build(cls: type, data: Any, prefix: str, sections: tuple[str, ...] = ()) -> Any:
    """Build dataclass `cls` from a mapping; unknown keys are errors naming the full key and the allowed ones
    (`sections`: keys read elsewhere at this level, listed first)."""
    if not isinstance(data, dict):
        raise UserError(f"config key {prefix.rstrip('.') or '<root>'!r}: expected a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls) if not f.metadata.get("internal")}
    kwargs = {}
    for key, value in data.items():
        full = f"{prefix}{key}"
        if key not in names:
            raise _unknown_key(full, [*sections, *sorted(names)])
        kind = hints[key]
        if kind is ModelConfig:
            kwargs[key] = _build_model(value or {}, f"{full}.")
        elif dataclasses.is_dataclass(kind):
            kwargs[key] = _build(kind, value or {}, f"{full}.")
        else:
            kwargs[key] = _coerce(value, kind, full)
    return cls(**kwargs)


def _unknown_key(full: str, allowed: list[str]) -> UserError:
    if full in MOVED_KEYS:
        return UserError(f"config key {full!r} has moved: use {MOVED_KEYS[full]}")
    return UserError(f"unknown config key {full!r} (allowed here: {', '.join(allowed)})")


def model_families() -> list[str]:
    """What `model.name` may name: the detector families (DETECTORS) and the trainable trackers (the TRACKERS
    entries with options, e.g. siamfc)."""
    return sorted([*DETECTORS.names(), *(name for name in TRACKERS.names() if hasattr(TRACKERS.get(name), "options"))])


def family_of(name: Any, key: str = "model.name"):
    """The registered model family `name` (a detector family, or a trainable tracker); UserError with close matches.

    A family has `name`, `options` (its dataclass), `default_neck` and `task` (which detection.tasks entry trains
    it). The first read of DETECTORS imports every family (and torch); importing this module does not.
    """
    if not isinstance(name, str):
        raise UserError(f"config key {key!r}: expected str, got {name!r}")
    if name in DETECTORS:
        return DETECTORS.get(name)
    if name in model_families():
        return TRACKERS.get(name)
    known = model_families()
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    raise UserError(f"{key}: unknown model {name!r}{hint} (known: {', '.join(known)})")


def _build_model(data: Any, prefix: str) -> ModelConfig:
    """ModelConfig plus the options of its family, read from `model.<name>`; other families' sections are errors."""
    if not isinstance(data, dict):
        raise UserError(f"config key {prefix.rstrip('.')!r}: expected a mapping, got {data!r}")
    family = family_of(data.get("name", ModelConfig.name), f"{prefix}name")
    families = model_families()
    shared = {k: v for k, v in data.items() if k != family.name and not (k in families and v is None)}
    for key in shared:  # another family's section; set to null (model.faster_rcnn=null) it is dropped
        if key not in ModelConfig.__dataclass_fields__ and key in families:
            raise UserError(f"config key '{prefix}{key}': options of the {key!r} family, but {prefix}name is "
                            f"{family.name!r}; only {prefix}{family.name} is read (remove the section or set "
                            f"{prefix}name={key})")
    cfg = _build(ModelConfig, shared, prefix, sections=(family.name,))
    cfg.options = _build(family.options, data.get(family.name) or {}, f"{prefix}{family.name}.")
    if hasattr(cfg.options, "check"):  # value checks of the family's own options
        cfg.options.check(f"{prefix}{family.name}.")
    cfg.neck = cfg.neck or family.default_neck
    return cfg


def _set_path(tree: dict, dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    node = tree
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise UserError(f"override {dotted!r}: {part!r} is not a section")
        node = child
    node[parts[-1]] = value


def parse_overrides(overrides: list[str]) -> dict:
    """['train.lr=0.01', 'model.fpn=false'] -> nested dict; values parsed as YAML scalars."""
    tree: dict = {}
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise UserError(f"override {item!r} is not of the form key.sub=value")
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError as exc:
            raise UserError(f"override {item!r}: value is not valid YAML ({exc})") from None
        _set_path(tree, key.strip(), value)
    return tree


def _merge(base: dict, extra: dict) -> dict:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def read_yaml(path: str | Path) -> dict:
    """Read a YAML mapping; UserError naming the file on a missing file or bad YAML."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise UserError(f"{path}: malformed YAML: {exc}".replace("\n", " ")) from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected a mapping at the top level")
    return data


def config_from_dict(data: dict, overrides: list[str] | None = None) -> Config:
    """Build a validated Config from a nested dict plus key=value overrides."""
    merged = _merge(data, parse_overrides(overrides or []))
    cfg = _build(Config, {"model": {}, **merged}, "")  # the model section is always resolved
    check_config(cfg)
    return cfg


def load_config(path: str | Path, overrides: list[str] | None = None) -> Config:
    """Load a YAML config file and apply `key.sub=value` overrides."""
    return config_from_dict(read_yaml(path), overrides)


def save_config(cfg: Config, path: str | Path) -> None:
    """Write the resolved config as YAML, atomically."""
    with atomic_open(path, "w") as handle:
        yaml.safe_dump(cfg.to_dict(), handle, sort_keys=False)


def check_config(cfg: Config) -> None:
    """Value checks that types alone do not catch."""
    choices = {
        "device": (cfg.device, ("auto", "cpu", "cuda")),
        "train.optimizer": (cfg.train.optimizer, ("sgd", "adamw")),
        "train.scheduler": (cfg.train.scheduler, ("cosine", "step")),
        "data.cache_images": (cfg.data.cache_images, ("", "ram", "disk")),
        "data.sampler": (cfg.data.sampler, ("random", "repeat_factor")),
    }
    for key, (value, allowed) in choices.items():
        if value not in allowed and not (key == "device" and value.startswith("cuda:")):
            raise UserError(f"config key {key!r}: {value!r} is not one of {', '.join(a or repr(a) for a in allowed)}")
    post = cfg.model.postprocess
    positive = {"train.epochs": cfg.train.epochs, "train.batch_size": cfg.train.batch_size,
                "data.input_size": cfg.data.input_size, "train.lr": cfg.train.lr,
                "model.neck_channels": cfg.model.neck_channels, "model.postprocess.max_detections": post.max_detections}
    scales = cfg.data.multi_scale
    if scales and not (len(scales) == 2 and 0 < scales[0] <= scales[1]):
        raise UserError(f"config key 'data.multi_scale': expected [low, high] with 0 < low <= high, got {scales}")
    if not 0 < cfg.data.repeat_threshold <= 1:
        raise UserError(f"config key 'data.repeat_threshold' must be within (0, 1], got {cfg.data.repeat_threshold}")
    if not 0 <= cfg.train.ema < 1:
        raise UserError(f"config key 'train.ema' must be in [0, 1) (0: off, e.g. 0.9998), got {cfg.train.ema}")
    if cfg.train.warmup_epochs < 0:
        raise UserError(f"config key 'train.warmup_epochs' must be 0 (no warmup) or more, got {cfg.train.warmup_epochs}")
    if cfg.model.neck_levels < 0:
        raise UserError(f"config key 'model.neck_levels' must be 0 (the neck's default) or more, got {cfg.model.neck_levels}")
    check_trainer(cfg)
    positive["trainer.cpus_per_worker"] = cfg.trainer.cpus_per_worker
    for key, value in positive.items():
        if value <= 0:
            raise UserError(f"config key {key!r} must be positive, got {value}")
    for key, value in {"score_threshold": post.score_threshold, "nms_iou": post.nms_iou}.items():
        if not 0 <= value <= 1:
            raise UserError(f"config key 'model.postprocess.{key}' must be within 0..1, got {value}")


def check_trainer(cfg: Config) -> None:
    """trainer.*: a worker count of 0 or more that divides the global batch."""
    workers, batch = cfg.trainer.num_workers, cfg.train.batch_size
    if workers < 0:
        raise UserError(f"config key 'trainer.num_workers' must be 0 (train in this process) or a number of Ray "
                        f"Train workers, got {workers}")
    if cfg.trainer.max_failures < 0:
        raise UserError(f"config key 'trainer.max_failures' must be 0 or more, got {cfg.trainer.max_failures}")
    if workers > 1 and batch % workers:
        even = batch - batch % workers or workers
        raise UserError(f"config key 'train.batch_size' ({batch}) is the global batch and must divide evenly among "
                        f"trainer.num_workers={workers} workers (e.g. train.batch_size={even})")
