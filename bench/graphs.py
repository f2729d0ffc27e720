"""Graphed training steps (core/library/graphs.py) against eager ones: for every objective, two copies of
one model train on the same batches from the same random state, one with StepContext's eager
update and one through StepGraphs, and this prints the largest relative difference in the
per-step losses and in the final parameters, as JSON.

    VAE_MINE_DATA=../shared/data .venv/bin/python -m bench.graphs --device cuda [--config small]
        [--steps 10] [--tf32] [--out bench/results/graphs-h100.json]

On the CPU (no CUDA graphs there) the graphed side runs the same step without capturing it, which
is what tests/test_graphs.py checks. The KL weight moves every step and the lr is halved half-way,
so the device scalars a graph reads are exercised; LaggingVAE's inner loop draws from one fixed
stream of batches on both sides.
"""

from __future__ import annotations

import argparse
import itertools
from dataclasses import replace
from pathlib import Path

import torch

from bench import fresh_training, report
from core.library.batching import Dataset, on_device
from core.library.corpora import read_split
from core.library.device import pick_device, set_tf32
from core.library.graphs import StepGraphs
from core.library.objectives import StepContext, registry
from core.library.vocab import Vocab

# every objective with its defaults, and VAE-MINE's other two kinds of negatives
CASES = [(name, {}) for name in registry()] + [
    ("vae-mine", {"negatives": "all-pairs"}),
    ("vae-mine", {"negatives": "queue"}),
]


def run_steps(
    case: tuple[str, dict],
    config: str,
    data: Dataset,
    device: torch.device,
    graphed: bool,
    steps: int = 10,
    seed: int = 0,
    capture: bool = True,
    clip: float = 5.0,
):
    """Train a fresh model `steps` steps: (losses, final parameters on the CPU, the StepGraphs or None)."""
    name, settings = case
    model, obj, opts = fresh_training(config, name, settings, len(data.vocab), device, seed)
    batches = list(data.batches(32, torch.Generator().manual_seed(seed)))
    if device.type == "cpu":  # as on_device leaves them on a GPU: with their lengths "on the device" too
        batches = [replace(b, device_lengths=b.lengths.clone()) for b in batches]
    batches = on_device(batches, device)
    extra = itertools.cycle(batches[steps:] or batches)  # LaggingVAE's inner-loop batches
    graphs = StepGraphs(model, obj, opts, clip, capture=capture) if graphed else None
    if graphed and not capture:  # a capture would freeze a KL weight read inside the step: refuse it
        schedule = obj.kl_weight

        def kl_weight() -> float:
            if obj.live is not None:
                raise AssertionError("kl_weight() read inside a graphed step, where a capture freezes it")
            return schedule()

        obj.kl_weight = kl_weight
    ctx = StepContext(opts, clip, lambda: next(extra), graphs)
    torch.manual_seed(seed + 1)
    losses = []
    for i, batch in enumerate(itertools.islice(itertools.cycle(batches), steps)):
        obj.position = i / 3  # annealed KL weights move every step
        if i == steps // 2:  # a halving
            for opt in opts.values():
                opt.param_groups[0]["lr"] *= 0.5
        losses.append(float(obj.train_step(model, batch, ctx)["loss"]))
    params = [t.detach().cpu().double() for t in (*model.parameters(), *obj.parameters())]
    return losses, params, graphs


def compare(
    case: tuple[str, dict],
    config: str,
    data: Dataset,
    device: torch.device,
    steps: int = 10,
    capture: bool = True,
    clip: float = 5.0,
) -> dict:
    """Largest relative differences between the eager and the graphed run of one case."""
    eager_losses, eager_params, _ = run_steps(case, config, data, device, False, steps, clip=clip)
    losses, params, graphs = run_steps(case, config, data, device, True, steps, capture=capture, clip=clip)
    loss_diff = max(abs(a - b) / max(abs(b), 1e-12) for a, b in zip(losses, eager_losses))
    param_diff = max(float((a - b).norm() / b.norm().clamp(min=1e-12)) for a, b in zip(params, eager_params))
    return {
        "losses": losses,
        "eager_losses": eager_losses,
        "max_rel_loss_diff": loss_diff,
        "max_rel_param_diff": param_diff,
        "graphs": len(graphs.steps),
        "captures": graphs.captures,
        "graphs_failed": graphs.failed or (list(graphs.eager.values())[:3] if graphs.eager else None),
    }


def label(case: tuple[str, dict]) -> str:
    name, settings = case
    return name + "".join(f" {k}={v}" for k, v in settings.items())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="auto")
    p.add_argument("--data-dir")
    p.add_argument("--config", default="small")
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--clip", type=float, default=5.0, help="gradient-norm clip (5: training's)")
    p.add_argument("--tf32", action="store_true", help="TF32 products (off: full float32, as the check asks)")
    p.add_argument("--out", type=Path, help="also write the JSON here")
    args = p.parse_args()
    device = pick_device(args.device)
    if device.type == "cuda":
        set_tf32(args.tf32)
    train = read_split("ptb", "train", args.data_dir, 2000)
    data = Dataset(train, Vocab.build(read_split("ptb", "train", args.data_dir)))
    result = {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "torch": torch.__version__,
        "config": args.config,
        "steps": args.steps,
        "clip": args.clip,
        "tf32": args.tf32 and device.type == "cuda",
        "cases": {},
    }
    for case in CASES:
        result["cases"][label(case)] = compare(
            case, args.config, data, device, args.steps, device.type == "cuda", args.clip
        )
    result["max_rel_loss_diff"] = max(c["max_rel_loss_diff"] for c in result["cases"].values())
    result["max_rel_param_diff"] = max(c["max_rel_param_diff"] for c in result["cases"].values())
    report(result, args.out)


if __name__ == "__main__":
    main()
