"""Plain-text tables: one header line, a rule, one line per row."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Column:
    """A table column: the row key it shows, its header and how to render a value."""

    key: str
    header: str
    render: Callable[[Any], str] = str
    left: bool = False


def human(value: float | None) -> str:
    """1234567 -> ``1.23M``, 45600 -> ``45.6k``; None -> ``-``."""
    if value is None:
        return "-"
    rounded = float(f"{value:.3g}")  # first, so 999,700 is 1M, not "1e+03k"
    for limit, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(rounded) >= limit:
            return f"{rounded / limit:.3g}{suffix}"
    return f"{rounded:.3g}"


def percent(value: float | None) -> str:
    """0.01234 -> ``1.234%``; None -> ``-``."""
    return "-" if value is None else f"{value * 100:.3f}%"


def count(value: int | None) -> str:
    """Thousands separators; None -> ``-``."""
    return "-" if value is None else f"{value:,}"


def fixed(digits: int) -> Callable[[float | None], str]:
    """A renderer with that many decimals; None -> ``-``."""

    def render(value: float | None) -> str:
        return "-" if value is None else f"{value:.{digits}f}"

    return render


def text(value: object) -> str:
    """str(), with None as ``-``."""
    return "-" if value is None else str(value)


def format_table(columns: Sequence[Column], rows: Sequence[Mapping[str, Any]]) -> str:
    """The table as text (no trailing newline); missing keys show as ``-``."""
    cells = [[c.render(row.get(c.key)) for c in columns] for row in rows]
    widths = [max([len(c.header)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]

    def line(values: Sequence[str]) -> str:
        parts = [
            v.ljust(w) if c.left else v.rjust(w)
            for v, w, c in zip(values, widths, columns, strict=True)
        ]
        return "  ".join(parts).rstrip()

    out = [line([c.header for c in columns]), "  ".join("-" * w for w in widths)]
    out += [line(r) for r in cells]
    return "\n".join(out)
