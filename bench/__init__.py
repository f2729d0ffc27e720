"""Benchmarks that print figures; they assert nothing."""
from __future__ import annotations

import json
from pathlib import Path

import torch

from core.checkpoint import build
from core.config import PRESETS, RunConfig
from core.objectives import objective_class


def report(result: dict, out: Path | None) -> None:
    """Print a benchmark's figures as JSON, and write them to `out` when given."""
    text = json.dumps(result, indent=2)
    print(text)
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text + "\n")


def fresh_training(config: str, objective: str, settings: dict, vocab_size: int, device: torch.device, seed: int = 0):
    """A freshly initialised model and objective of a preset, in train mode on `device`, and their
    optimisers at training's lr (1.0 times each group's scale): (model, objective, optimisers)."""
    torch.manual_seed(seed)
    model, obj = build(RunConfig(model=PRESETS[config], objective=objective_class(objective).config(**settings)), vocab_size)
    model.init_weights(0.01, 0.1, torch.Generator().manual_seed(seed))
    model.to(device).train()
    obj.to(device).train()
    return model, obj, {k: obj.optimizer(k, v, obj.lr_scale(k)) for k, v in obj.param_groups(model).items()}
