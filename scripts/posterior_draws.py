"""NLL (the negative ELBO), reconstruction and MI of each model over several posterior draws: a single
draw's NLL moves by about 0.02-0.03 nats and its MI by 0.02-0.03, as much as a near miss of a target.

    .venv/bin/python scripts/posterior_draws.py BUNDLE_OR_RUN [...] [--split test] [--draws 10] [--out F.json]

Each draw is core's evaluation at one seed (seeds 0 .. draws-1); KL and AU do not depend on the draw.
With --against BUNDLE, each model's NLL is also given as the paired difference from that one's.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import core  # noqa: E402

FIGURES = ("nll", "reconstruction", "mi")


def draws(path: str, split: str, n: int, data_dir: str | None) -> dict[str, list[float]]:
    model = core.load(path)
    sentences = core.read_sentences(model.corpus, split, data_dir, None, model.config.tokenizer)
    runs = [model.evaluate(sentences, seed=s) for s in range(n)]
    return {k: [r[k] for r in runs] for k in (*FIGURES, "kl")}


def line(name: str, figures: dict[str, list[float]]) -> str:
    parts = [
        f"{k} {np.mean(v):.3f} (sd {np.std(v, ddof=1):.3f}, {min(v):.3f} - {max(v):.3f})"
        for k, v in figures.items()
        if k in FIGURES
    ]
    return f"{name}: " + "; ".join(parts) + f"; kl {figures['kl'][0]:.3f}"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("models", nargs="+")
    p.add_argument("--split", default="test", choices=["valid", "test"])
    p.add_argument("--draws", type=int, default=10)
    p.add_argument("--against", help="a bundle whose NLL each model's is paired with, draw by draw")
    p.add_argument("--data-dir", help="corpus folder (default: $VAE_MINE_DATA, else ./data)")
    p.add_argument("--out", type=Path, help="write every draw's figures here as JSON")
    args = p.parse_args(argv)
    if args.draws < 2:
        p.error("--draws must be at least 2")
    out = {}
    base = draws(args.against, args.split, args.draws, args.data_dir) if args.against else None
    if base:
        out[args.against] = base
        print(line(args.against, base), flush=True)
    for m in args.models:
        out[m] = draws(m, args.split, args.draws, args.data_dir)
        print(line(m, out[m]), flush=True)
        if base:
            diff = np.array(out[m]["nll"]) - np.array(base["nll"])
            print(
                f"  NLL minus {Path(args.against).name}'s, draw by draw: {diff.mean():.3f} (sd {diff.std(ddof=1):.3f}; "
                f"{int((diff <= 1.0).sum())} of {len(diff)} draws within 1.0)",
                flush=True,
            )
    if args.out:
        args.out.write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
