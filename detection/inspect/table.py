"""The inspection as text: the layer table, its totals, the feature maps and the data coverage.

'-' where a layer has no window or its output is not a map; '*' where a receptive field is the largest path's.
"""
from __future__ import annotations

from detection.inspect.coverage import coverage_lines
from detection.inspect.report import Inspection, LayerRow
from detection.inspect.text import align, human, number, shape_text

LAYER_HEADER = ["layer", "type", "output", "params", "MACs", "k", "s", "p", "d", "RF", "jump", "start"]
LEFT_COLUMNS = 3  # name, type and output shape are left-aligned, numbers right-aligned


def layer_cells(row: LayerRow) -> list[str]:
    rf = number(row.receptive_field) + ("*" if row.largest_path and row.receptive_field is not None else "")
    return [row.name, row.type, shape_text(row.output_shape), number(row.params), number(row.macs),
            number(row.kernel), number(row.stride), number(row.padding), number(row.dilation),
            rf, number(row.jump), number(row.start)]


def totals_lines(report: Inspection) -> list[str]:
    size = "x".join(str(v) for v in report.input)
    lines = [f"total: {report.total_params:,} parameters ({human(report.total_params)}), "
             f"{report.total_macs:,} multiply-adds ({human(report.total_macs)}) for one {size} image"]
    idle = report.total_params - sum(row.params for row in report.layers)
    if idle:
        lines.append(f"  of the parameters, {idle:,} are in modules this forward pass did not run")
    if report.merges:
        lines.append(f"receptive fields (RF, jump, start: input pixels along the width) follow the largest path, "
                     f"marked *: maps meet at {report.merges} places (residual adds, concatenations, top-down "
                     f"adds) and there the path that sees most is kept")
    else:
        lines.append("receptive fields (RF, jump, start: input pixels along the width) are exact: a sequential stack")
    return lines


def map_lines(report: Inspection) -> list[str]:
    if not report.feature_maps:
        return []
    rows = [["map", "stride", "channels", "RF", "read by"]]
    for fmap in report.feature_maps:
        rows.append([fmap.name, number(fmap.stride), number(fmap.channels), number(fmap.receptive_field),
                     "head" if fmap.head else "neck"])
    if all(fmap.head for fmap in report.feature_maps):
        rows = [row[:4] for row in rows]
    return ["", "feature maps:"] + ["  " + line for line in align(rows, left=1)]


def render(report: Inspection, title: str) -> str:
    """The whole text report: title, layer table, totals, feature maps, coverage when present."""
    table = align([LAYER_HEADER] + [layer_cells(row) for row in report.layers], LEFT_COLUMNS)
    lines = [title, "", *table, "", *totals_lines(report), *map_lines(report)]
    if report.coverage is not None:
        lines += ["", *coverage_lines(report.coverage)]
    return "\n".join(lines)
