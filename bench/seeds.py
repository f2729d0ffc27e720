"""Seeds of one setting side by side: mean ± sd of every `bench.quality` figure over the runs that
differ only in their seed, and which run ships (the one with the median validation NLL: chosen on
validation, never on the test figures shown beside it).

    .venv/bin/python -m bench.seeds QUALITY.json... [--out FILE.json] [--cards BUNDLE=SETTING ...]

Runs are grouped by their folder's name without its seed (`lagging-s101` -> `lagging`), and a
group's runs must agree on everything in config.json but the seed (else it stops and says what
differs). Each run's validation NLL is its metrics.json's (the best epoch's weights). With --cards,
the bundle's model card (README.md) gets the setting's table under "Seeds" (replacing an earlier one)
and its metrics.json the spread of NLL, KL, MI and AU under "seeds" (the explorer's collapse table).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import numpy as np

from bench import replace_section, report
from bench.quality import COLUMNS
from core.library.checkpoint import write_json
from core.library.tables import fmt, markdown

SEED_SUFFIX = re.compile(r"-s\d+$")
HEADING = "## Seeds (`bench.seeds`)"


def setting(run: str) -> str:
    return SEED_SUFFIX.sub("", Path(run).name)


def without_seed(config: dict) -> dict:
    """config.json with the seed and the names that need not match (the preset's file name) left out."""
    run = json.loads(json.dumps(config))["run"]
    run["train"].pop("seed", None)
    run.pop("config_name", None)
    return run


def group(results: list[dict]) -> dict[str, list[dict]]:
    """{setting: its runs, each its bench.quality figures with `seed`, `valid_nll` and `epochs` added}."""
    groups: dict[str, list[dict]] = {}
    for r in results:
        folder = Path(r["checkpoint"])
        config = json.loads((folder / "config.json").read_text())
        metrics = json.loads((folder / "metrics.json").read_text())
        groups.setdefault(setting(r["checkpoint"]), []).append(
            dict(
                r,
                seed=config["run"]["train"]["seed"],
                valid_nll=metrics["valid"]["nll"],
                epochs=metrics["epochs"],
                best_epoch=metrics["best_epoch"],
                minutes=metrics["train_seconds"] / 60,
                _config=without_seed(config),
            )
        )
    for name, runs in groups.items():
        first = runs[0]["_config"]
        for r in runs[1:]:
            if r["_config"] != first:
                raise SystemExit(
                    f"{name}: {r['checkpoint']} differs from {runs[0]['checkpoint']} in more than its seed"
                )
    return groups


def summary(runs: list[dict]) -> dict:
    """Mean and sd (n - 1) of each figure, and the run that ships: the median validation NLL."""
    order = sorted(runs, key=lambda r: r["valid_nll"])
    ships = order[(len(order) - 1) // 2]
    out = {"runs": len(runs), "seeds": [r["seed"] for r in runs], "ships": ships["checkpoint"]}
    for k in [c for c, _ in COLUMNS] + ["valid_nll", "epochs"]:
        values = np.array([r[k] for r in runs], dtype=float)
        out[k] = {"mean": float(values.mean()), "sd": float(values.std(ddof=1)) if len(values) > 1 else None}
    return out


def cell(stat: dict, digits: int) -> str:
    mean = fmt(stat["mean"], digits)
    return mean if stat["sd"] is None else f"{mean} ± {fmt(stat['sd'], digits)}"


def tables(groups: dict[str, list[dict]], only: str | None = None) -> str:
    """The settings' mean ± sd table, then each run's row (the shipped one in bold)."""
    keys = [("valid_nll", "valid NLL"), *COLUMNS]
    digits = {k: 2 if k in ("nll", "au", "valid_nll") else 3 for k, _ in keys}
    names = [only] if only else list(groups)
    stats = {n: summary(groups[n]) for n in names}
    means = markdown(
        ["setting", "seeds", *(label for _, label in keys)],
        [[n, len(groups[n]), *(cell(stats[n][k], digits[k]) for k, _ in keys)] for n in names],
    )
    rows = []
    for n in names:
        for r in sorted(groups[n], key=lambda r: r["seed"]):
            name = f"{n} seed {r['seed']}"
            rows.append(
                [
                    f"**{name}** (ships)" if r["checkpoint"] == stats[n]["ships"] else name,
                    f"{r['epochs']} ({r['best_epoch']})",
                    f"{r['minutes']:.0f}",
                    *(fmt(r[k], digits[k]) for k, _ in keys),
                ]
            )
    each = markdown(["run", "epochs (best)", "minutes", *(label for _, label in keys)], rows)
    return f"{means}\n{each}"


SPREAD = ("nll", "kl", "mi", "au")  # the figures the explorer's collapse table shows with their spread


def write_card(bundle: Path, name: str, groups: dict[str, list[dict]], split: str) -> None:
    """The card's Seeds section, and the spread of SPREAD in metrics.json's "seeds" (for the explorer)."""
    stats = summary(groups[name])
    metrics = json.loads((bundle / "metrics.json").read_text())
    metrics["seeds"] = {
        "runs": stats["runs"],
        "seeds": ", ".join(str(s) for s in sorted(stats["seeds"])),
        "split": split,
        **{f"{k}_{part}": stats[k][part] for k in SPREAD for part in ("mean", "sd")},
    }
    write_json(bundle / "metrics.json", metrics)
    card = bundle / "README.md"
    runs = groups[name]
    card.write_text(
        replace_section(
            card.read_text(),
            HEADING,
            f"{HEADING}\n\nThis bundle is one of {len(runs)} runs of its setting that differ only in their "
            f"seed ({', '.join(str(r['seed']) for r in sorted(runs, key=lambda r: r['seed']))}), each trained to the "
            f"end of its own schedule; it is the run with the median validation NLL (chosen on validation; "
            f"the {split} figures are read only to report). `bench.quality --split {split}` on the fp32 weights "
            f"of each run, mean ± sd (n - 1) over the seeds:\n\n{tables(groups, name)}",
        )
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.seeds", description=__doc__.splitlines()[0])
    p.add_argument("quality", nargs="+", type=Path, help="bench.quality --out files")
    p.add_argument("--out", type=Path, help="write the summaries here as JSON")
    p.add_argument("--cards", nargs="*", default=[], metavar="BUNDLE=SETTING", help="write the table into cards")
    args = p.parse_args(argv)
    results = [r for f in args.quality for r in json.loads(f.read_text())["results"]]
    splits = {r["split"] for r in results}
    if len(splits) != 1:
        p.error(f"the files measure different splits: {', '.join(sorted(splits))}")
    split = splits.pop()
    groups = group(results)
    report({n: summary(runs) for n, runs in groups.items()}, args.out)
    print(tables(groups))
    for spec in args.cards:
        bundle, _, name = spec.partition("=")
        if name not in groups:
            p.error(f"--cards {spec}: no setting {name!r} (known: {', '.join(groups)})")
        write_card(Path(bundle), name, groups, split)
    return 0


if __name__ == "__main__":
    sys.exit(main())
