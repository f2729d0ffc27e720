"""Training tokens/s and evaluation sentences/s on this machine, printed as JSON.

    VAE_MINE_DATA=../shared/data .venv/bin/python -m bench.speed [--device cpu] [--out bench/results/cpu.json]

Each figure is the median over several timed windows after warm-up, on the first PTB training
sentences (real text, real vocabulary of the whole training split). `bucketed_speedup` compares
our length-bucketed batches with batches of random sentences in the same run.
"""
from __future__ import annotations

import argparse
import platform
import statistics
import time
from pathlib import Path

import torch

from bench import report
from core.batching import Dataset
from core.checkpoint import build
from core.config import PRESETS, RunConfig
from core.corpora import read_split
from core.device import pick_device
from core.evaluate import evaluate_split
from core.objectives import StepContext, objective_class
from core.vocab import Vocab


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def train_speed(config: str, objective: str, data: Dataset, device, bucketed: bool = True, windows: int = 3, steps: int = 8) -> float:
    torch.manual_seed(0)
    model, obj = build(RunConfig(model=PRESETS[config], objective=objective_class(objective).config()), len(data.vocab))
    model.init_weights(0.01, 0.1, torch.Generator().manual_seed(0))
    model.to(device).train()
    obj.to(device).train()
    opts = {k: torch.optim.SGD(v, lr=1.0) for k, v in obj.param_groups(model).items()}
    if bucketed:
        batches = list(data.batches(32, torch.Generator().manual_seed(0)))
    else:
        batches = [data.batch(idx) for idx in torch.randperm(len(data), generator=torch.Generator().manual_seed(0)).split(32)]
    batches = [b.to(device) for b in batches]
    ctx = StepContext(opts, 5.0, None, 1, 0)
    for b in batches[:3]:
        obj.train_step(model, b, ctx)
    rates, i = [], 3
    for _ in range(windows):
        chunk = [batches[(i + k) % len(batches)] for k in range(steps)]
        i += steps
        sync(device)
        t = time.perf_counter()
        for b in chunk:
            obj.train_step(model, b, ctx)
        sync(device)
        rates.append(sum(b.n_tokens for b in chunk) / (time.perf_counter() - t))
    return round(statistics.median(rates), 1)


def eval_speed(config: str, data: Dataset, device, iw_samples: int, repeats: int = 3) -> float:
    torch.manual_seed(0)
    model, _ = build(RunConfig(model=PRESETS[config], objective=objective_class("vae").config()), len(data.vocab))
    model.to(device).eval()
    times = []
    for r in range(repeats):
        sync(device)
        t = time.perf_counter()
        evaluate_split(model, data, batch_size=64, iw_samples=iw_samples, seed=r)
        sync(device)
        times.append(time.perf_counter() - t)
    return round(len(data) / statistics.median(times), 1)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="auto")
    p.add_argument("--data-dir")
    p.add_argument("--out", type=Path, help="also write the JSON here")
    args = p.parse_args()
    device = pick_device(args.device)
    train_all = read_split("ptb", "train", args.data_dir)
    vocab = Vocab.build(train_all)
    train_data = Dataset(train_all[:4000], vocab)
    valid = read_split("ptb", "valid", args.data_dir)
    result = {
        "device": str(device) if device.type == "cpu" else torch.cuda.get_device_name(device),
        "cpu": platform.processor() or platform.machine(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "batch_size": 32,
        "vocab": len(vocab),
        "train_tokens_per_s": {},
    }
    for config in ("paper", "small"):
        for objective in ("vae", "vae-mine"):
            result["train_tokens_per_s"][f"{config}/{objective}"] = train_speed(config, objective, train_data, device)
    unbucketed = train_speed("paper", "vae", train_data, device, bucketed=False)
    result["train_tokens_per_s"]["paper/vae, random batches (no bucketing)"] = unbucketed
    result["bucketed_speedup_paper_vae"] = round(result["train_tokens_per_s"]["paper/vae"] / unbucketed, 2)
    result["eval_sentences_per_s"] = {
        "small, ELBO + MI + AU (PTB valid, 500 sentences)": eval_speed("small", Dataset(valid[:500], vocab), device, 0),
        "small, IW-NLL with 50 samples (PTB valid, 100 sentences)": eval_speed("small", Dataset(valid[:100], vocab), device, 50, repeats=2),
        "paper, ELBO + MI + AU (PTB valid, 500 sentences)": eval_speed("paper", Dataset(valid[:500], vocab), device, 0),
    }
    report(result, args.out)


if __name__ == "__main__":
    main()
