"""Why VAE-MINE's bound buys the information it does: VAEMine.diagnostics on a run or bundle, and
the same figures from the run's train_log.jsonl epoch by epoch where it recorded them.

    .venv/bin/python -m bench.mine RUN_OR_BUNDLE... [--split valid] [--limit 500] [--steps 10] [--out FILE.json]

Per checkpoint, on the first --limit sentences of the split (the probe training logs them on):
the bound's estimate against the probe's MI; the median norm of each term's gradient on the
posterior means and log-variances; the share of energies near the energy's bound; the probe's MI and
KL after --steps encoder-only SGD steps along alpha x the bound, and MI gained per nat of KL.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from bench import report
from core.library import checkpoint as ckpt
from core.library.batching import Dataset
from core.library.corpora import read_split
from core.library.tables import fmt, markdown
from core.library.training import DIAGNOSTIC_BATCHES

SHOWN = [
    "bound",
    "mi",
    "kl",
    "grad_mu_rec",
    "grad_mu_kl",
    "grad_mu_mine",
    "grad_logvar_rec",
    "grad_logvar_kl",
    "grad_logvar_mine",
    "near_bound_joint",
    "near_bound_neg",
    "step_mi",
    "step_kl",
    "mi_per_kl",
]


def measure(path: str, split: str, limit: int, steps: int, data_dir: str | None) -> dict:
    cfg, vocab, model, objective = ckpt.load_bundle(path)
    if cfg.objective.name != "vae-mine":
        raise SystemExit(f"{path}: a {cfg.objective.name} checkpoint; bench.mine measures VAE-MINE's bound")
    data = Dataset(read_split(cfg.corpus, split, data_dir, limit, cfg.train.max_len, cfg.tokenizer), vocab)
    probe = data.batch(torch.arange(len(data)))
    batches = list(data.batches(cfg.train.batch_size, torch.Generator().manual_seed(cfg.train.seed)))[
        :DIAGNOSTIC_BATCHES
    ]
    figures = objective.diagnostics(model, probe, batches, steps=steps)
    log = Path(path) / ckpt.LOG
    epochs = []
    if log.is_file():
        for line in log.read_text().splitlines():
            row = json.loads(line)
            if any(k.startswith("diag_") for k in row):
                epochs.append({"epoch": row["epoch"], **{k: row.get(f"diag_{k}") for k in SHOWN}})
    return {"checkpoint": path, "split": split, "sentences": len(data), **figures, "epochs": epochs}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.mine", description=__doc__.splitlines()[0])
    p.add_argument("checkpoints", nargs="+")
    p.add_argument("--split", default="valid", choices=["train", "valid", "test"])
    p.add_argument("--limit", type=int, default=500, help="the first N sentences of the split (default 500)")
    p.add_argument("--steps", type=int, default=10, help="encoder-only steps along the bound (default 10)")
    p.add_argument("--data-dir")
    p.add_argument("--out", type=Path)
    args = p.parse_args(argv)
    results = [measure(c, args.split, args.limit, args.steps, args.data_dir) for c in args.checkpoints]
    report({"results": results}, args.out)
    print(
        markdown(
            ["checkpoint", *SHOWN], [[Path(r["checkpoint"]).name, *(fmt(r[k], 3) for k in SHOWN)] for r in results]
        )
    )
    for r in results:
        if r["epochs"]:
            print(f"\n{r['checkpoint']}, by epoch (train_log.jsonl):")
            print(markdown(["epoch", *SHOWN], [[e["epoch"], *(fmt(e[k], 3) for k in SHOWN)] for e in r["epochs"]]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
