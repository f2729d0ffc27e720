"""The paper's alpha sweep for VAE-MINE: train one run per alpha, pick the best on validation NLL.

    python -m core.sweep --corpus ptb --alphas 2:5:0.5 --out runs/ptb-sweep [--jobs N | --ray [ADDRESS]]
        [core.train's run flags]

Each alpha trains into OUT/alpha-A with core.train (an interrupted sweep continues where it
stopped: finished runs are kept, an unfinished one resumes). With --jobs the runs train side by
side, one process each, spread over the visible GPUs (core.commands.parallel); with --ray, as tasks of a Ray
cluster (core.commands.cluster). OUT/sweep.csv and OUT/sweep.md
hold the table, OUT/best.json names the winner and OUT/best links to its bundle.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

from ..library import catalogue
from ..library.checkpoint import LOG, METRICS, OUTPUT, write_json
from ..library.errors import SettingError, Stopped, VaeMineError
from ..library.tables import fmt, markdown, write_csv
from ..library.training import train
from .cli import run_cli
from .cluster import add_cluster_arguments, runner_for
from .parallel import Job, run_jobs
from .train import add_run_arguments, run_argv, run_config

log = logging.getLogger(__name__)
SPLITS = (("valid", "val"), ("test", "test"))


def figure_columns() -> list[tuple[str, str, str, catalogue.Metric]]:
    """(column, header, split, metric) of the catalogue's sweep figures, validation then test."""
    return [
        (f"{prefix}_{m.key}", f"{prefix} {m.short}", split, m)
        for split, prefix in SPLITS
        for m in catalogue.metrics(catalogue.SWEEP)
    ]


def parse_alphas(spec: str) -> list[float]:
    """'2:5:0.5' (start:stop:step, stop included) or '2,3.5,4'."""
    try:
        if ":" in spec:
            start, stop, step = (float(x) for x in spec.split(":"))
            if step <= 0 or stop < start:
                raise ValueError
            n = int(round((stop - start) / step))
            alphas = [round(start + i * step, 6) for i in range(n + 1) if start + i * step <= stop + 1e-9]
        else:
            alphas = [float(x) for x in spec.split(",") if x.strip()]
    except ValueError:
        raise SettingError(
            f"--alphas {spec!r}: expected START:STOP:STEP (e.g. 2:5:0.5) or a list like 2,3.5,4"
        ) from None
    if not alphas:
        raise SettingError(f"--alphas {spec!r}: no values")
    return alphas


def run_dir(out: Path, alpha: float) -> Path:
    return out / f"alpha-{alpha:g}"


def train_job(
    args: argparse.Namespace, model: str, folder: Path, alpha: float | None = None, name: str | None = None
) -> Job:
    """core.train of one run in its own process, resuming whatever the folder holds."""
    argv = [
        "core.train",
        "--model",
        model,
        *(["--alpha", f"{alpha:g}"] if alpha is not None else []),
        "--out",
        str(folder),
        "--resume",
        "--no-progress",
        *run_argv(args),
    ]
    return Job(name or model, argv, folder / OUTPUT, done=folder / METRICS)


def epochs_logged(job: Job) -> str:
    """A running training job's progress for the progress bar: the epochs in its run's log."""
    try:
        return f"e{(job.log.parent / LOG).read_text().count(chr(10))}"
    except OSError:
        return "e0"


def sweep(args: argparse.Namespace, alphas: list[float]) -> dict:
    out = Path(args.out)
    todo = []
    for i, alpha in enumerate(alphas, 1):
        folder = run_dir(out, alpha)
        if (folder / METRICS).exists():
            log.info("[%d/%d] alpha %g: finished earlier, kept (%s)", i, len(alphas), alpha, folder)
        else:
            todo.append(alpha)
    if args.jobs == 1 and args.ray is None:
        for alpha in todo:
            log.info("alpha %g: training into %s", alpha, run_dir(out, alpha))
            train(
                run_config(args, "vae-mine", alpha),
                run_dir(out, alpha),
                args.data_dir,
                args.device,
                resume=True,
                progress=not args.no_progress,
                checkpoint_minutes=args.checkpoint_minutes,
                cuda_graphs=args.cuda_graphs,
                tf32=args.tf32,
            )
    elif todo:
        with runner_for(args) as runner:
            out = args.out  # absolute with --ray
            jobs = run_jobs(
                [train_job(args, "vae-mine", run_dir(out, a), a, f"alpha-{a:g}") for a in todo],
                runner,
                progress=not args.no_progress,
                describe=epochs_logged,
                desc="alpha sweep",
            )
        unfinished = [f"{j.name} ({j.status}, log {j.log})" for j in jobs if j.status != "done"]
        if unfinished:
            error = Stopped if all(j.status in ("done", "stopped", "not started") for j in jobs) else VaeMineError
            raise error(f"not every alpha finished: {', '.join(unfinished)}; the same command continues them")
    return summarise(out, alphas, args.corpus, args.config)


def row_of(folder: Path, alpha: float) -> dict:
    m = json.loads((folder / METRICS).read_text())
    row = {
        "alpha": alpha,
        "best_epoch": m.get("best_epoch"),
        "train_seconds": m.get("train_seconds"),
        "run": str(folder),
    }
    for column, _, split, metric in figure_columns():
        row[column] = m.get(split, {}).get(metric.key)
    return row


def summarise(out: Path, alphas: list[float], corpus: str, config: str) -> dict:
    """The table of finished runs, the best on validation NLL, and the `best` link."""
    rows = [row_of(run_dir(out, a), a) for a in alphas]
    best = min(rows, key=lambda r: r["val_nll"])
    figures = figure_columns()
    columns = ["alpha", *(c for c, *_ in figures), "best_epoch", "train_seconds", "run"]
    write_csv(out / "sweep.csv", columns, [[r[c] for c in columns] for r in rows])
    headers = ["alpha", *(h for _, h, *_ in figures), "best epoch", ""]
    table = [
        [
            f"{r['alpha']:g}",
            *(fmt(r[c], m.digits) for c, _, _, m in figures),
            r["best_epoch"],
            "**best**" if r is best else "",
        ]
        for r in rows
    ]
    (out / "sweep.md").write_text(
        f"# VAE-MINE alpha sweep ({corpus}, config {config})\n\n"
        f"Best on validation NLL: alpha = {best['alpha']:g} ({best['run']}).\n\n" + markdown(headers, table)
    )
    write_json(out / "best.json", best)
    link = out / "best"
    if link.is_symlink() or link.exists():
        link.unlink()
    os.symlink(run_dir(out, best["alpha"]).name, link)
    return {"rows": rows, "best": best}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m core.sweep", description="Train VAE-MINE for each alpha; pick the best on validation NLL."
    )
    p.add_argument(
        "--alphas", default="2:5:0.5", help="START:STOP:STEP (stop included) or a comma list (default 2:5:0.5)"
    )
    p.add_argument("--out", required=True, type=Path, help="folder for the runs and the table")
    p.add_argument(
        "--jobs",
        type=int,
        default=1,
        help="runs trained at once, each in its own process on the least busy "
        "visible GPU (0: all at once; 1: one after another in this process)",
    )
    add_run_arguments(p)
    add_cluster_arguments(p)

    def body(args):
        result = sweep(args, parse_alphas(args.alphas))
        print((args.out / "sweep.md").read_text())
        print(f"best: alpha {result['best']['alpha']:g} -> {args.out / 'best'}")

    return run_cli(p, body, argv)


if __name__ == "__main__":
    sys.exit(main())
