"""Registry: duplicates refused, unknown names answered with close matches, names sorted."""
import pytest

from datasets.core.errors import UserError
from detection.backbones import build_backbone, list_backbones
from detection.config import ModelConfig
from detection.models import build_detector, list_detectors
from detection.necks import list_necks
from detection.registry import DETECTORS, TRACKERS, Registry


def make_registry() -> Registry:
    reg = Registry("widget")

    @reg.register("resnet50")
    def a():
        return "a"

    @reg.register()
    def mobilenet():
        return "m"

    @reg.register("alexnet")
    def c():
        return "c"

    return reg


def test_register_and_get_returns_the_function():
    reg = make_registry()
    assert reg.get("resnet50")() == "a"
    assert reg.get("mobilenet")() == "m"  # default name is the function's __name__
    assert "alexnet" in reg and "vgg" not in reg
    assert len(reg) == 3


def test_duplicate_name_raises_and_keeps_the_first():
    reg = make_registry()
    with pytest.raises(ValueError, match="resnet50.*already registered"):
        @reg.register("resnet50")
        def other():
            return "other"
    assert reg.get("resnet50")() == "a"
    assert len(reg) == 3


def test_unknown_name_lists_close_match():
    reg = make_registry()
    with pytest.raises(KeyError) as info:
        reg.get("resnet5")
    message = info.value.args[0]
    assert "resnet5" in message
    assert "did you mean resnet50" in message
    assert "widget" in message


def test_unknown_name_without_close_match_still_lists_known():
    reg = make_registry()
    with pytest.raises(KeyError) as info:
        reg.get("zzzzzz")
    message = info.value.args[0]
    assert "did you mean" not in message
    assert "alexnet" in message and "mobilenet" in message


def test_names_sorted_and_iteration_order():
    reg = make_registry()
    assert reg.names() == ["alexnet", "mobilenet", "resnet50"]
    assert list(reg) == reg.names()


def test_project_registries_hold_the_documented_entries():
    assert set(list_backbones()) == {
        "tiny", "resnet18", "resnet34", "resnet50", "resnet101", "vgg16", "vgg16_pooled", "mobilenet_v2",
        "mobilenet_v3_small", "mobilenet_v3_large", "mobilenet_v3_large_det", "mobilenet_v3_large_ssdlite",
        "squeezenet1_1", "alexnet", "efficientnet_b0", "siamfc_alexnet", "siamfc_tiny", "csp_tiny"}
    assert {"none", "fpn", "ssd_extra", "ssd300_vgg", "ssdlite_extra"} <= set(list_necks())
    assert "faster_rcnn" in list_detectors() and "faster_rcnn" in DETECTORS
    assert {"bytetrack", "siamfc"} <= set(TRACKERS) and "siamfc" not in DETECTORS


def test_package_registry_finds_entries_in_files_nobody_imported(tmp_path, monkeypatch):
    """A new family or neck is one file: the registry imports every module of its package when first read."""
    package = tmp_path / "plugins_pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "_private.py").write_text("raise RuntimeError('modules starting with _ are skipped')\n")
    registry_module = tmp_path / "plugins_registry.py"
    registry_module.write_text("from detection.registry import Registry\nREG = Registry('plugin', 'plugins_pkg')\n")
    (package / "alpha.py").write_text("from plugins_registry import REG\n\n@REG.register('alpha')\ndef alpha():\n"
                                      "    return 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    from plugins_registry import REG

    assert "alpha" in REG and REG.get("alpha")() == 1 and REG.names() == ["alpha"]


def test_build_backbone_unknown_is_user_error_with_suggestion():
    with pytest.raises(UserError, match="model.backbone.*resnet18"):
        build_backbone("resnet19")


def test_build_detector_unknown_is_user_error_with_suggestion():
    with pytest.raises(UserError, match="model.name.*faster_rcnn"):
        build_detector(ModelConfig(name="faster_rcn", backbone="tiny"), num_classes=2, input_size=64)
