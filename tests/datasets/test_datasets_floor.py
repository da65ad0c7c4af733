"""The ground floor stands alone: python -m datasets and every datasets module load no torch, detection or serve.

Checked in a fresh interpreter through sys.modules, after real commands ran.
"""
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
UPPER = ("torch", "torchvision", "detection", "serve")

PROBE = """
import importlib, pkgutil, runpy, sys
import datasets
from datasets.cli import main

out = sys.argv[1]
for info in pkgutil.walk_packages(datasets.__path__, "datasets."):
    if info.name != "datasets.__main__":
        importlib.import_module(info.name)
sys.argv = ["datasets", "synth", "--out", out, "--num-images", "3"]
try:
    runpy.run_module("datasets", run_name="__main__", alter_sys=True)
except SystemExit as exc:
    assert exc.code == 0, exc.code
for args in (["validate", f"{out}/annotations.json", "--images", f"{out}/images"],
             ["stats", f"{out}/annotations.json", "--plot", f"{out}/stats.png"],
             ["draw", f"{out}/annotations.json", "--images", f"{out}/images", "--out", f"{out}/drawn"]):
    assert main(args) == 0, args
print("loaded:", *sorted({name.split(".")[0] for name in sys.modules} & set(UPPER)))
"""


def test_python_m_datasets_loads_no_torch_detection_or_serve(tmp_path):
    probe = f"UPPER = {UPPER!r}\n{PROBE}"
    result = subprocess.run([sys.executable, "-c", probe, str(tmp_path / "shapes")], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    loaded = result.stdout.splitlines()[-1].split()
    assert loaded == ["loaded:"], f"datasets loaded modules from a floor above it, or torch: {loaded[1:]}"
    assert (tmp_path / "shapes" / "stats.png").is_file()
