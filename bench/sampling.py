"""Prior-sampling speed (the cost of FPPL / RPPL), printed as JSON.

    .venv/bin/python -m bench.sampling CHECKPOINT [--n 5000] [--device cpu] [--out bench/results/sampling-cpu.json]

Compares, in one run on the same codes, core's sampler (inverse-CDF draws, finished sentences leave
the batch) with the textbook loop (torch.multinomial, every sentence decoded to the longest).
Medians over repeats; sentences/s.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch

from bench import report
from core.library.checkpoint import load_bundle
from core.library.decoding import prior_samples
from core.library.device import pick_device


@torch.no_grad()
def textbook(model, vocab, n: int, batch_size: int, max_len: int, seed: int) -> int:
    gen = torch.Generator().manual_seed(seed)
    dec, done = model.decoder, 0
    while done < n:
        m = min(batch_size, n - done)
        z = torch.randn(m, model.z_dim, generator=gen)
        state, tokens = dec.initial_state(z), torch.full((m,), vocab.bos)
        finished = torch.zeros(m, dtype=torch.bool)
        for _ in range(max_len):
            logp, state = dec.step(tokens, z, state)
            tokens = torch.multinomial(logp.softmax(-1), 1, generator=gen).squeeze(1).masked_fill(finished, vocab.eos)
            finished |= tokens == vocab.eos
            if bool(finished.all()):
                break
        done += m
    return done


def rate(fn, n: int, repeats: int) -> float:
    times = []
    for r in range(repeats):
        t = time.perf_counter()
        fn(r)
        times.append(time.perf_counter() - t)
    return round(n / statistics.median(times), 1)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("checkpoint")
    p.add_argument("--n", type=int, default=5000)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", type=Path)
    args = p.parse_args()
    device = pick_device(args.device)
    cfg, vocab, model, _ = load_bundle(args.checkpoint, device)
    ours = rate(lambda r: prior_samples(model, vocab, args.n, 1000, 100, seed=r), args.n, args.repeats)
    base = (
        rate(lambda r: textbook(model, vocab, args.n, 1000, 100, seed=r), args.n, args.repeats)
        if device.type == "cpu"
        else None
    )
    result = {
        "checkpoint": str(args.checkpoint),
        "config": cfg.config_name,
        "vocab": len(vocab),
        "device": str(device),
        "torch_threads": torch.get_num_threads(),
        "sentences": args.n,
        "batch_size": 1000,
        "max_len": 100,
        "core_sentences_per_s": ours,
        "textbook_multinomial_sentences_per_s": base,
        "speedup": round(ours / base, 2) if base else None,
    }
    report(result, args.out)


if __name__ == "__main__":
    main()
