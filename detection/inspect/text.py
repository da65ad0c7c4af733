"""Text helpers for the inspection report: numbers with thousands separators, shapes, aligned columns.

Shared by the layer table and the coverage section.
"""
from __future__ import annotations


def number(value: float | int | None) -> str:
    """1234567 -> '1,234,567'; 3.0 -> '3'; 3.5 -> '3.5'; None -> '-'."""
    if value is None:
        return "-"
    if float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:,.2f}".rstrip("0").rstrip(".")


def human(value: int) -> str:
    """11176512 -> '11.18 M'."""
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(value) >= size:
            return f"{value / size:.2f} {unit}"
    return str(value)


def shape_text(shape: list) -> str:
    if shape and isinstance(shape[0], list):
        return f"{shape_text(shape[0])} +{len(shape) - 1} more"
    return "[" + ", ".join(str(v) for v in shape) + "]"


def align(rows: list[list[str]], left: int) -> list[str]:
    """Columns padded to their widest cell; the first `left` columns left-aligned, the rest right-aligned."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return ["  ".join(cell.ljust(w) if i < left else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths)))
            .rstrip() for row in rows]
