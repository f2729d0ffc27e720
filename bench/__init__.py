"""Benchmarks that print figures; they assert nothing."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from core.library.config import PRESETS, RunConfig, TrainConfig
from core.library.objectives import objective_class
from core.library.training import fresh_model, optimizers


def report(result: dict, out: Path | None) -> None:
    """Print a benchmark's figures as JSON, and write them to `out` when given."""
    text = json.dumps(result, indent=2)
    print(text)
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text + "\n")


def replace_section(text: str, heading: str, body: str) -> str:
    """A markdown document with the section under `heading` (up to the next "## " heading) replaced
    by `body`, or `body` appended when it has none: two tools can each keep their section of a card."""
    if "\n" + heading in text:
        before, _, after = text.partition("\n" + heading)
        rest = after.partition("\n## ")
        tail = "\n## " + rest[2] if rest[1] else ""
        return before.rstrip() + "\n\n" + body.rstrip() + "\n" + tail
    return text.rstrip() + "\n\n" + body.rstrip() + "\n"


def fresh_training(config: str, objective: str, settings: dict, vocab_size: int, device: torch.device, seed: int = 0):
    """A freshly initialised model and objective of a preset, in train mode on `device`, and their
    optimisers at training's lr (1.0 times each group's scale): (model, objective, optimisers)."""
    cfg = RunConfig(
        model=PRESETS[config], objective=objective_class(objective).config(**settings), train=TrainConfig(seed=seed)
    )
    model, obj = fresh_model(cfg, vocab_size)
    model.to(device).train()
    obj.to(device).train()
    return model, obj, optimizers(model, obj, 1.0)
