"""Small writers for result tables (markdown for people, CSV for tools)."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

from .files import atomic_write


def markdown(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    def cell(v: object) -> str:
        return "-" if v is None else str(v).replace("|", "\\|")

    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def write_csv(path: Path, headers: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    def write(tmp):
        with open(tmp, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(headers)
            w.writerows(["" if v is None else v for v in row] for row in rows)

    atomic_write(Path(path), write)


def fmt(v: float | int | None, digits: int = 2) -> str | None:
    if v is None:
        return None
    if isinstance(v, int):
        return str(v)
    text = f"{v:.{digits}f}"
    return text[1:] if text.startswith("-") and float(text) == 0 else text  # no "-0.00"
