"""Benchmarks that print figures; they assert nothing."""
from __future__ import annotations

import json
from pathlib import Path


def report(result: dict, out: Path | None) -> None:
    """Print a benchmark's figures as JSON, and write them to `out` when given."""
    text = json.dumps(result, indent=2)
    print(text)
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text + "\n")
