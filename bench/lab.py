"""Does the classroom lab show collapse within its time? Per seed, each model's figures at its last
lab epoch: validation KL, MI (core's aggregate MI on the lab's validation sentences) and AU.

    .venv/bin/python -m bench.lab [--seeds 1 2 3] [--seconds 60] [--sentences 2000] [--alpha 3]
        [--faithful] [--set KEY=VALUE ...] [--out FILE.json]

VAE-MINE takes the lab's settings (LabConfig.mine_settings), or with --faithful none beyond the
paper's; --set changes one on top.

The lab trains the two models in turn, so each gets about half the time. Run it on a quiet machine:
the figures depend on how many epochs fit.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bench import report
from core.library.objectives import objective_class
from core.library.precision import PRECISIONS
from core.serving.lab import LabConfig, live_training


def parse_settings(items: list[str]) -> dict:
    """--set strings, checked and typed by VAE-MINE's own settings."""
    settings = objective_class("vae-mine").settings_from_strings(items).settings
    return {k: getattr(settings, k) for k in (i.partition("=")[0].strip().replace("-", "_") for i in items)}


def run(
    seed: int,
    seconds: float,
    sentences: int,
    alpha: float,
    settings: dict,
    data_dir: str | None,
    precision: str = "fp32",
) -> dict:
    last: dict[str, dict] = {}
    lab = LabConfig(
        seed=seed,
        seconds=seconds,
        max_train=sentences,
        alpha=alpha,
        mine_settings=tuple(settings.items()),
        precision=precision,
    )
    for line in live_training(lab, data_dir):
        last[line["model"]] = line
    return {
        m: {
            "epochs": ln["epoch"],
            "elapsed_s": ln["elapsed"],
            "kl": round(ln["val_kl"], 4),
            "mi": round(ln["val_mi"], 4),
            "au": ln["val_au"],
        }
        for m, ln in last.items()
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.lab", description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    p.add_argument("--seconds", type=float, default=LabConfig.seconds)
    p.add_argument("--sentences", type=int, default=LabConfig.max_train)
    p.add_argument("--alpha", type=float, default=LabConfig.alpha)
    p.add_argument("--faithful", action="store_true", help="VAE-MINE as the paper describes it (no settings beyond)")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a VAE-MINE setting (as core.train's --set), e.g. estimator=infonce",
    )
    p.add_argument("--precision", choices=PRECISIONS, default=LabConfig.precision, help="core.library.precision's")
    p.add_argument("--data-dir")
    p.add_argument("--out", type=Path)
    args = p.parse_args(argv)
    settings = {} if args.faithful else dict(LabConfig.mine_settings)
    settings |= parse_settings(args.set)
    runs = {
        str(s): run(s, args.seconds, args.sentences, args.alpha, settings, args.data_dir, args.precision)
        for s in args.seeds
    }
    for seed, models in runs.items():
        print(
            f"seed {seed}: "
            + " · ".join(
                f"{m}: {v['epochs']} epochs, KL {v['kl']:.3f}, MI {v['mi']:.3f}, AU {v['au']}"
                for m, v in models.items()
            ),
            file=sys.stderr,
        )
    report(
        {
            "precision": args.precision,
            "seconds": args.seconds,
            "sentences": args.sentences,
            "alpha": args.alpha,
            "settings": settings,
            "runs": runs,
        },
        args.out,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
