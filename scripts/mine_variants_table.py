"""The table of docs/mine-variants.md: each run's bench.quality figures, its decoder use of z on the
the explorer's example sentence (bench.quality's, when its JSON has it; else measured at seed 0, as
the older rows were), and bench.mine's diagnostics from its train_log.jsonl (the last epoch's).

    .venv/bin/python scripts/mine_variants_table.py QUALITY.json [QUALITY.json ...] [--use-of-z]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import core  # noqa: E402
from bench.quality import EXAMPLE  # noqa: E402
from core.library.tables import fmt, markdown  # noqa: E402

DIAG = [
    ("bound", "bound"),
    ("mi", "probe MI"),
    ("grad_mu_mine", "|g mu| bound"),
    ("grad_mu_kl", "|g mu| KL"),
    ("grad_mu_rec", "|g mu| rec"),
    ("near_bound_neg", "neg. at floor"),
    ("mi_per_kl", "MI / KL step"),
]
QUALITY = [
    ("nll", "NLL"),
    ("kl", "KL"),
    ("mi", "MI"),
    ("au", "AU"),
    ("f1_greedy", "F1 greedy"),
    ("f1_beam", "F1 beam"),
    ("path_distinct", "distinct / path"),
    ("prior_distinct", "prior distinct"),
    ("neighbour_f1", "neighbour F1"),
]


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("quality", nargs="+", type=Path)
    p.add_argument("--use-of-z", action="store_true", help="measure decoder use of z (core's decoder_use_of_z, seed 0)")
    args = p.parse_args()
    rows = []
    for path in args.quality:
        for r in json.loads(path.read_text())["results"]:
            run = Path(r["checkpoint"])
            lines = [json.loads(x) for x in (run / "train_log.jsonl").read_text().splitlines()]
            last = lines[-1]
            best = min(lines, key=lambda x: x["val_nll"])["epoch"]
            use = r.get("use_of_z")
            if use is None and args.use_of_z:
                use = core.load(run).decoder_use_of_z(EXAMPLE, seed=0)["mean_prior"]
            rows.append(
                [
                    run.name,
                    f"{last['epoch']} ({best})",
                    *(fmt(r[k], 2 if k in ("nll", "kl", "mi") else 3) for k, _ in QUALITY),
                    fmt(use, 2),
                    *(fmt(last.get(f"diag_{k}"), 2) for k, _ in DIAG),
                ]
            )
    print(markdown(["run", "epochs (best)", *(h for _, h in QUALITY), "use of z", *(h for _, h in DIAG)], rows))


if __name__ == "__main__":
    main()
