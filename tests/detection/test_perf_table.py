"""benchmarks/perf_table.py --quick on one detector family and the SiamFC tracker: the generated markdown table
has a row each, every column, and measured numbers where numbers belong; results.json and the JSON line agree.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))

import perf_table  # noqa: E402

NUMERIC = slice(1, 8)  # params, GFLOPs, train img/s, CPU PyTorch b1, b8, ONNX Runtime b1, b8


def table_rows(text: str) -> tuple[list[str], list[list[str]]]:
    lines = [line for line in text.splitlines() if line.startswith("| ")]
    split = [[cell.strip() for cell in line.strip().strip("|").split("|")] for line in lines]
    return split[0], split[1:]


def test_quick_table_has_a_row_per_model_with_numbers(tmp_path, capsys):
    out = tmp_path / "bench" / "README.md"
    summary = perf_table.main(["--quick", "--families", "ssd,siamfc", "--out", str(out)])
    text = out.read_text()
    assert "QUICK SMOKE RUN" in text and "--quick --families ssd,siamfc --out" in text
    assert "Budget: 0.05 minutes of training per row" in text and "torch " in text and "onnxruntime " in text
    head, rows = table_rows(text)
    assert head[:4] == ["model (recipe)", "params", "GFLOPs", "train img/s"] and len(head) == 14
    assert [row[0] for row in rows] == ["SSD (`ssd_tiny.yaml`)", "SiamFC tracker (`siamfc_tiny.yaml`)"]
    for row in rows:
        assert len(row) == len(head)
        numbers = [float(cell.removesuffix(" M")) for cell in row[NUMERIC]]
        assert all(n > 0 for n in numbers), row
        gpu = row[8:12]
        assert all(cell == "not lent" for cell in gpu) if not torch.cuda.is_available() else "not lent" not in gpu
    assert rows[0][12].startswith("bbox_mAP 0.") and "mAP_50 0." in rows[0][12]
    assert rows[1][12].startswith("success AUC 0.") and "precision@20" in rows[1][12]
    assert rows[0][13] == "`python benchmarks/perf_table.py --families ssd --minutes 0.05 --images 40 --quick`"
    saved = json.loads((tmp_path / "bench" / "results.json").read_text())
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert saved["rows"] == printed["rows"] == json.loads(json.dumps(summary["rows"]))
    assert saved["rows"][0]["cpu"]["match"] and saved["rows"][1]["cpu"]["match"]


def test_hand_written_sections_after_the_keep_line_survive(tmp_path):
    out = tmp_path / "README.md"
    assert perf_table.kept_sections(out) == ""
    out.write_text("# Performance table\n\nold table\n\n" + perf_table.KEEP + "\n\n## The demo\n\nfigures\n")
    assert perf_table.kept_sections(out) == perf_table.KEEP + "\n\n## The demo\n\nfigures\n"
    out.write_text("# Performance table\n\nno hand-written part\n")
    assert perf_table.kept_sections(out) == ""
