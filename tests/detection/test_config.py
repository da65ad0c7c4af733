"""Config: YAML round trip, typed overrides, errors that name the key or file, shipped configs load."""
import dataclasses
from pathlib import Path

import pytest
import yaml

from datasets.core.errors import UserError
from detection.config import Config, config_from_dict, load_config, parse_overrides, save_config
from tiny_run import DEMO, ROOT


def test_yaml_round_trip_equals(tmp_path):
    cfg = load_config(DEMO, ["train.lr=0.005", "model.features=[c4, c5]", "model.neck=none", "seed=7"])
    path = tmp_path / "sub" / "config.yaml"
    save_config(cfg, path)
    again = load_config(path)
    assert again == cfg
    assert again.to_dict() == cfg.to_dict()
    # the written file is plain YAML with every section
    data = yaml.safe_load(path.read_text())
    assert set(data) == {f.name for f in dataclasses.fields(Config)}
    assert not list(path.parent.glob(".*tmp"))  # atomic write leaves no temporary file


def test_defaults_round_trip(tmp_path):
    defaults = config_from_dict({})  # Config() with the model section resolved: family options, neck
    assert defaults.model.options is not None and defaults.model.neck == "fpn"
    save_config(defaults, tmp_path / "c.yaml")
    assert load_config(tmp_path / "c.yaml") == defaults


def test_overrides_set_nested_values_with_types():
    cfg = load_config(DEMO, [
        "train.epochs=3",                       # int
        "train.lr=0.125",                       # float
        "train.momentum=1",                     # int given for a float: becomes float
        "model.neck=none",                      # str
        "model.postprocess.class_agnostic=true",  # bool
        "train.amp=true",
        "model.faster_rcnn.aspect_ratios=[1, 2.5]",  # list of float, nested two levels
        "model.faster_rcnn.anchor_sizes=[8,16,32,64]",
        "model.features=[c4,c5]",               # list of str
        "data.augment.hflip=0.0",
        "output_dir=/tmp/x y",                  # str with a space
    ])
    assert cfg.train.epochs == 3 and type(cfg.train.epochs) is int
    assert cfg.train.lr == 0.125 and type(cfg.train.lr) is float
    assert cfg.train.momentum == 1.0 and type(cfg.train.momentum) is float
    assert cfg.model.neck == "none" and cfg.model.postprocess.class_agnostic is True and cfg.train.amp is True
    assert cfg.model.options.aspect_ratios == [1.0, 2.5]
    assert all(type(v) is float for v in cfg.model.options.aspect_ratios)
    assert cfg.model.options.anchor_sizes == [8, 16, 32, 64]
    assert cfg.model.features == ["c4", "c5"]
    assert cfg.data.augment.hflip == 0.0
    assert cfg.output_dir == "/tmp/x y"
    # keys not overridden keep the file's values
    assert cfg.model.backbone == "tiny" and cfg.data.input_size == 128
    assert cfg.model.options.representation_size == 256
    assert cfg.model.postprocess.max_detections == 50


def test_parse_overrides_builds_nested_dict():
    assert parse_overrides(["a.b.c=1", "a.b.d=x", "e=[1, 2]", "f=", "g=null"]) == {
        "a": {"b": {"c": 1, "d": "x"}}, "e": [1, 2], "f": "", "g": None}


def test_override_later_wins():
    assert load_config(DEMO, ["train.epochs=2", "train.epochs=5"]).train.epochs == 5


@pytest.mark.parametrize("override, key", [
    ("model.bakbone=resnet18", "model.bakbone"),
    ("trian.lr=0.1", "trian"),
    ("model.faster_rcnn.anchor_size=[8]", "model.faster_rcnn.anchor_size"),
    ("data.augment.flip=0.5", "data.augment.flip"),
])
def test_unknown_key_error_names_the_key(override, key):
    with pytest.raises(UserError) as info:
        load_config(DEMO, [override])
    assert repr(key) in str(info.value)


def test_unknown_key_in_file_names_the_key(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("model:\n  backbone: tiny\n  bakbone: resnet18\n")
    with pytest.raises(UserError, match="'model.bakbone'"):
        load_config(path)


@pytest.mark.parametrize("override, key", [
    ("train.epochs=three", "train.epochs"),
    ("train.epochs=1.5", "train.epochs"),
    ("train.lr=fast", "train.lr"),
    ("model.postprocess.class_agnostic=1", "model.postprocess.class_agnostic"),
    ("model.postprocess.class_agnostic=maybe", "model.postprocess.class_agnostic"),
    ("model.neck=[fpn]", "model.neck"),
    ("model.features=c5", "model.features"),
    ("model.faster_rcnn.anchor_sizes=[8, big]", "model.faster_rcnn.anchor_sizes[1]"),
    ("train.amp=[true]", "train.amp"),
])
def test_wrong_type_error_names_the_key(override, key):
    with pytest.raises(UserError) as info:
        load_config(DEMO, [override])
    assert repr(key) in str(info.value)


@pytest.mark.parametrize("override, key", [
    ("train.optimizer=adam", "train.optimizer"),
    ("train.scheduler=linear", "train.scheduler"),
    ("device=tpu", "device"),
    ("train.epochs=0", "train.epochs"),
    ("train.batch_size=-1", "train.batch_size"),
    ("train.lr=0", "train.lr"),
    ("data.input_size=0", "data.input_size"),
    ("model.neck_channels=0", "model.neck_channels"),
    ("model.postprocess.score_threshold=1.5", "model.postprocess.score_threshold"),
    ("model.postprocess.nms_iou=-0.1", "model.postprocess.nms_iou"),
    ("model.postprocess.max_detections=0", "model.postprocess.max_detections"),
])
def test_bad_value_error_names_the_key(override, key):
    with pytest.raises(UserError) as info:
        load_config(DEMO, [override])
    assert repr(key) in str(info.value)


@pytest.mark.parametrize("key", ["branch_depth", "reg_max", "tal_topk"])
def test_free_yolo_counts_below_one_are_refused_by_name(key):
    with pytest.raises(UserError) as info:
        load_config(ROOT / "configs" / "yolo_tiny.yaml", [f"model.yolo.{key}=0"])
    assert f"'model.yolo.{key}'" in str(info.value)


def test_family_options_are_read_from_their_section_and_saved_there(tmp_path):
    from detection.models.faster_rcnn import FasterRCNNOptions

    cfg = load_config(DEMO, ["model.faster_rcnn.representation_size=64"])
    assert isinstance(cfg.model.options, FasterRCNNOptions) and cfg.model.options.representation_size == 64
    model = cfg.to_dict()["model"]
    assert model["faster_rcnn"]["representation_size"] == 64 and "options" not in model
    assert list(model)[-1] == "faster_rcnn"


@dataclasses.dataclass
class OtherOptions:
    anchors: list[int] = dataclasses.field(default_factory=lambda: [1, 2])


def test_section_of_another_family_is_an_error_naming_it(tmp_path, monkeypatch):
    from detection.models.base import Family
    from detection.registry import DETECTORS

    DETECTORS.names()  # load the real families first; the stand-in leaves the registry with this test
    monkeypatch.setitem(DETECTORS._entries, "other_family", Family("other_family", lambda p, o: None, OtherOptions))
    with pytest.raises(UserError, match=r"'model.other_family'.*model.name is 'faster_rcnn'"):
        load_config(DEMO, ["model.other_family.anchors=[3]"])
    # the same section is read when that family is chosen, and the demo's faster_rcnn section is then the error
    path = tmp_path / "other.yaml"
    path.write_text("model:\n  name: other_family\n  backbone: tiny\n  other_family: {anchors: [5, 6]}\n")
    cfg = load_config(path)
    assert cfg.model.options == OtherOptions(anchors=[5, 6]) and cfg.model.neck == "fpn"
    assert "faster_rcnn" not in cfg.to_dict()["model"]
    with pytest.raises(UserError, match=r"'model.faster_rcnn'.*model.name is 'other_family'"):
        load_config(DEMO, ["model.name=other_family"])


def test_family_default_neck_fills_an_empty_neck(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("model:\n  backbone: tiny\n")
    assert load_config(path).model.neck == "fpn"


@pytest.mark.parametrize("override, hint", [
    ("model.fpn=false", "model.neck"),
    ("model.fpn_channels=64", "model.neck_channels"),
    ("model.faster_rcnn.detections_per_img=10", "model.postprocess.max_detections"),
    ("model.faster_rcnn.box_score_thresh=0.1", "model.postprocess.score_threshold"),
])
def test_moved_keys_say_where_they_went(override, hint):
    with pytest.raises(UserError, match=f"has moved: use {hint}"):
        load_config(DEMO, [override])


def test_unknown_family_is_an_error_with_suggestion():
    with pytest.raises(UserError, match="model.name.*did you mean faster_rcnn"):
        load_config(DEMO, ["model.name=faster_rcn"])


def test_unknown_key_in_model_lists_the_family_section():
    with pytest.raises(UserError, match=r"allowed here: faster_rcnn, backbone"):
        load_config(DEMO, ["model.bakbone=tiny"])


def test_unknown_key_below_model_lists_only_its_own_keys():
    with pytest.raises(UserError) as info:
        load_config(DEMO, ["model.postprocess.foo=1"])
    assert "allowed here: class_agnostic, max_detections, nms_iou, score_threshold)" in str(info.value)


def test_section_given_a_scalar_names_the_section():
    with pytest.raises(UserError) as info:
        load_config(DEMO, ["model=resnet"])
    assert "'model'" in str(info.value)


@pytest.mark.parametrize("text", ["1e-4", "5e-3", "1E6"])
def test_exponent_notation_floats(tmp_path, text):
    assert load_config(DEMO, [f"train.lr={text}"]).train.lr == float(text)
    path = tmp_path / "c.yaml"
    path.write_text(f"train:\n  lr: {text}\n")
    assert load_config(path).train.lr == float(text)


def test_override_without_equals_is_user_error():
    with pytest.raises(UserError, match="train.lr"):
        load_config(DEMO, ["train.lr"])


def test_override_into_a_scalar_is_user_error():
    with pytest.raises(UserError, match="'train.lr'"):
        load_config(DEMO, ["train.lr.x=1"])


def test_malformed_yaml_names_the_file(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("model:\n  backbone: [tiny\n  neck: fpn\n")
    with pytest.raises(UserError) as info:
        load_config(path)
    assert str(path) in str(info.value)
    assert "\n" not in str(info.value)  # one line for the CLI


def test_top_level_list_names_the_file(tmp_path):
    path = tmp_path / "list.yaml"
    path.write_text("- a\n- b\n")
    with pytest.raises(UserError, match="list.yaml"):
        load_config(path)


def test_missing_file_names_the_file(tmp_path):
    with pytest.raises(UserError, match="nope.yaml"):
        load_config(tmp_path / "nope.yaml")


def test_empty_file_gives_defaults(tmp_path):
    path = tmp_path / "empty.yaml"
    path.write_text("")
    assert load_config(path) == config_from_dict({})


def test_config_from_dict_equals_load(tmp_path):
    data = yaml.safe_load(DEMO.read_text())
    assert config_from_dict(data, ["seed=3"]) == load_config(DEMO, ["seed=3"])


CONFIGS = sorted(p for p in (ROOT / "configs").glob("*.yaml") if p.name != "serve.yaml")


@pytest.mark.parametrize("path", CONFIGS, ids=[p.name for p in CONFIGS])
def test_every_shipped_config_loads(path: Path):
    cfg = load_config(path)
    assert isinstance(cfg, Config)
    # and its model section names registered entries
    from detection.backbones import list_backbones
    from detection.config import model_families
    assert cfg.model.backbone in list_backbones()
    assert cfg.model.name in model_families()  # a detector family, or a trainable tracker (siamfc)


def test_there_is_at_least_the_demo_config():
    assert DEMO in CONFIGS


def test_demo_epochs_do_not_depend_on_a_time_cap():
    """On a slower or busier machine `make demo` takes longer but trains the same schedule (no
    train.max_minutes in configs/demo.yaml nor on the Makefile's train line)."""
    assert load_config(DEMO).train.max_minutes == 0
    demo_lines = (ROOT / "Makefile").read_text().split("\ndemo:")[1].split("\n\n")[0]
    assert "max_minutes" not in demo_lines and "configs/demo.yaml" in demo_lines


def test_old_warmup_iters_key_says_where_it_went():
    with pytest.raises(UserError, match="train.warmup_epochs"):
        config_from_dict({"train": {"warmup_iters": 200}})
