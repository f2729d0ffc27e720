"""Training tokens/s of N runs side by side on one device, each in its own process (as a sweep or a
campaign of runs would share a GPU), printed as JSON: per run and in total, for each N.

    VAE_MINE_DATA=../shared/data .venv/bin/python -m bench.side_by_side --device cuda [--runs 1,2,4,8]
        [--config paper] [--model vae-mine] [--seconds 10] [--tf32] [--out bench/results/side-by-side.json]

Whether a GPU runs several graphed runs at once, or only takes turns between them, decides how
long a campaign of ten runs takes. Each process builds its model and warms up (capturing every
batch shape, with graphed steps); all start timing together and train for --seconds on the first
PTB training sentences, as bench.speed does.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import time
from pathlib import Path

import torch

from bench import report
from bench.speed import prepared_steps, sync
from core.library.batching import Dataset
from core.library.corpora import read_split
from core.library.device import pick_device, set_tf32
from core.library.vocab import Vocab


def worker(args: argparse.Namespace, start: mp.synchronize.Barrier, results: mp.Queue) -> None:
    device = pick_device(args.device)
    if device.type == "cuda":
        set_tf32(args.tf32)
    else:
        torch.set_num_threads(1)  # side by side on the CPU: one core each
    train = read_split("ptb", "train", args.data_dir)
    data = Dataset(train[:4000], Vocab.build(train))
    step, batches = prepared_steps(args.config, args.model, data, device, graphed=args.graphed)
    sync(device)
    start.wait()
    began, tokens, i = time.perf_counter(), 0, 0
    while time.perf_counter() - began < args.seconds:
        batch = batches[i % len(batches)]
        step(batch)
        tokens, i = tokens + batch.n_tokens, i + 1
    sync(device)
    results.put(tokens / (time.perf_counter() - began))


def side_by_side(args: argparse.Namespace, n: int) -> dict:
    ctx = mp.get_context("spawn")  # CUDA cannot be forked
    start, results = ctx.Barrier(n), ctx.Queue()
    procs = [ctx.Process(target=worker, args=(args, start, results)) for _ in range(n)]
    for p in procs:
        p.start()
    rates = sorted(round(results.get(timeout=600), 1) for _ in procs)
    for p in procs:
        p.join()
    return {"runs": n, "tokens_per_s_per_run": rates, "tokens_per_s_total": round(sum(rates), 1)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="auto")
    p.add_argument("--data-dir")
    p.add_argument("--runs", default="1,2,4,8", help="numbers of runs side by side, comma-separated")
    p.add_argument("--config", default="paper")
    p.add_argument("--model", default="vae-mine")
    p.add_argument("--seconds", type=float, default=10.0, help="timed training per run")
    p.add_argument("--eager", dest="graphed", action="store_false", help="eager steps (default on CUDA: graphed)")
    p.add_argument("--tf32", action="store_true")
    p.add_argument("--out", type=Path)
    args = p.parse_args()
    device = pick_device(args.device)
    args.graphed = args.graphed and device.type == "cuda"
    result = {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "torch": torch.__version__,
        "config": args.config,
        "model": args.model,
        "steps": "graphed" if args.graphed else "eager",
        "tf32": args.tf32 and device.type == "cuda",
        "batch_size": 32,
        "seconds": args.seconds,
        "side_by_side": [side_by_side(args, int(n)) for n in args.runs.split(",")],
    }
    report(result, args.out)


if __name__ == "__main__":
    main()
