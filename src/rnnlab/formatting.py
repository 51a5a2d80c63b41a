"""Numbers as text and as JSON: one format per kind of number, shared by tables, sentences,
the CLI and the report, so a number reads the same everywhere."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, TypeGuard

import numpy as np

MISSING = "—"
"""What a table cell or a sentence shows for a value that was not measured."""


# ----- JSON-safe numbers -------------------------------------------------------------------------
def finite(value: float | None) -> float | None:
    """A float for JSON: NaN and infinities become None (JSON has no such numbers)."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def finite_list(values: Any) -> list[float | None]:
    return [finite(v) for v in np.asarray(values, dtype=np.float64).ravel()]


def is_num(x: Any) -> TypeGuard[float]:
    """A finite int or float (not a bool, not None, not NaN)."""
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def num(x: Any) -> float | None:
    """`x` as a float when it is a finite number, else None."""
    return float(x) if is_num(x) else None


def mapping(x: Any) -> dict[str, Any]:
    """`x` when it is a JSON object, else an empty one."""
    return x if isinstance(x, dict) else {}


# ----- text --------------------------------------------------------------------------------------
def pct(x: float, digits: int = 1) -> str:
    """0.475 -> '47.5%'; small shares keep two significant digits (0.00031 -> '0.031%')."""
    value = 100.0 * x
    if value != 0 and abs(value) < 10 ** (-digits):
        return f"{value:.2g}%"
    return f"{value:.{digits}f}%"


def share(x: float) -> str:
    """A ratio as a percentage, or in scientific notation when it is below 0.01%."""
    return pct(x) if abs(x) >= 1e-4 or x == 0 else f"{x:.1e} of it"


def factor(x: float) -> str:
    """A growth factor: 1.23 -> '1.23x', 12.3 -> '12.3x'."""
    return f"{x:.2f}x" if abs(x) < 10 else f"{x:.1f}x"


def frac(x: float) -> str:
    """Table format of an accuracy or F1: 0.4750."""
    return f"{x:.4f}"


def count(n: float) -> str:
    return f"{round(n):,}"


def seconds(x: float) -> str:
    return f"{x:.2f} s" if x < 10 else f"{x:.1f} s"


def sig(x: float, digits: int = 3) -> str:
    """A plain number with `digits` significant digits: 0.000123 -> '0.000123', 1234.5 -> '1.23e+03'."""
    if x == 0:
        return "0"
    if 1e-4 <= abs(x) < 1e5:
        return (
            f"{x:.{digits}g}"
            if abs(x) < 1
            else f"{x:,.{max(0, digits - 1)}f}".rstrip("0").rstrip(".")
        )
    return f"{x:.{digits - 1}e}"


def sci(x: float | None, digits: int = 2) -> str:
    """Scientific notation for values spanning decades (gradient norms): 3.00e-06; — if None."""
    return MISSING if x is None else f"{x:.{digits}e}"


def fixed(x: float | None, spec: str = ".2f") -> str:
    """`format(x, spec)`, or — if None."""
    return MISSING if x is None else format(x, spec)


def pm(mean: float | None, std: float | None, spec: str = ".3f") -> str:
    """'0.812 ± 0.010' (the ± part only when std is non-zero); — if no mean."""
    if mean is None:
        return MISSING
    return format(mean, spec) if not std else f"{mean:{spec}} ± {std:{spec}}"


def cell(x: Any, kind: str = "frac") -> str:
    """A table cell: — for missing values."""
    if not is_num(x):
        return MISSING if x is None else str(x)
    if kind == "frac":
        return frac(x)
    if kind == "count":
        return count(x)
    if kind == "seconds":
        return f"{x:.2f}"
    if kind == "pct":
        return pct(x)
    return sig(x)


def names_list(items: Sequence[str]) -> str:
    """'a', 'a and b', 'a, b and c'."""
    items = list(items)
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def int_list(values: Sequence[int]) -> str:
    """[50, 100] -> '50, 100'."""
    return ", ".join(str(v) for v in values)
