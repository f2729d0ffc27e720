"""The paper's Table 2 campaign in one command: the Table 2 systems and VAE-MINE's alpha grid
trained side by side (one process per run, spread over the visible GPUs), each to the end of its
lr schedule; then the best run of each system evaluated on the test split (IW-NLL, KL, MI, AU and
the prior samples FPPL / RPPL score). FPPL / RPPL and the table are core.reproduce's, later, where
KenLM is.

    python -m core.campaign run --out runs/ptb-campaign [--stop-after MINUTES]
        [--alphas 2:5:0.5] [--systems all] [--jobs 0 | --ray [ADDRESS]] [core.train's run flags, e.g. --tf32]
    python -m core.reproduce --checkpoints runs/ptb-campaign

--stop-after is the command's own time limit: the runs are stopped then (each saves its state;
exit status 3), or --eval-minutes earlier so the finished systems' test evaluations still fit, and
the same command later continues them. OUT/campaign.md and campaign.json say where every run
stands. (Bringing a campaign back from a machine that returns only a few files:
scripts/campaign_pack.py.)
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from ..library import catalogue
from ..library.checkpoint import LOG, METRICS, OUTPUT, write_json
from ..library.corpora import resolve as resolve_corpus
from ..library.errors import EXIT_STOPPED, SettingError, VaeMineError
from ..library.evaluation import weights_digest
from ..library.objectives import table2
from ..library.tables import fmt, markdown
from . import sweep
from .cli import run_cli
from .cluster import add_cluster_arguments, runner_for
from .evaluate import eval_defaults, eval_settings, evaluate_argv
from .parallel import Job, run_jobs
from .reproduce import best_of, usable_evaluation
from .train import add_run_arguments

log = logging.getLogger(__name__)


@dataclass
class Run:
    name: str  # its folder under --out
    model: str
    alpha: float | None
    folder: Path

    @property
    def finished(self) -> bool:
        return (self.folder / METRICS).is_file()


def plan(out: Path, systems: list[str], alphas: list[float]) -> list[Run]:
    runs = [Run(s, s, None, out / s) for s in systems if s != "vae-mine"]
    if "vae-mine" in systems:
        runs += [Run(f"vae-mine/alpha-{a:g}", "vae-mine", a, sweep.run_dir(out / "vae-mine", a)) for a in alphas]
    return runs


def parse_systems(spec: str) -> list[str]:
    names = table2()
    chosen = names if spec == "all" else [s.strip() for s in spec.split(",") if s.strip()]
    unknown = [s for s in chosen if s not in names]
    if unknown or not chosen:
        raise SettingError(f"--systems {spec!r}: choose 'all' or some of {', '.join(names)}")
    return [s for s in names if s in chosen]  # the paper's row order


def eval_args(args: argparse.Namespace) -> argparse.Namespace:
    """core.evaluate's settings for each system's best run: the test split, and the samples FPPL /
    RPPL will score (KenLM is core.reproduce's, later)."""
    corpus = resolve_corpus(args.corpus, args.data_dir).name  # as the runs' configs record it
    return eval_defaults(
        split="test",
        iw_samples=args.iw_samples,
        fppl_samples=args.fppl_samples,
        corpus=corpus,
        data_dir=args.data_dir,
        device=args.device,
    )


def evaluated(folder: Path, ev: argparse.Namespace) -> bool:
    """The folder's evaluation is of its present weights, with these settings, and its samples are there."""
    return usable_evaluation(folder, weights_digest(folder), ev) is not None


def best_runs(runs: list[Run]) -> dict[str, Run]:
    """Each system whose runs have all finished, and its best run on validation NLL."""
    best = {}
    for system in dict.fromkeys(r.model for r in runs):
        mine = [r for r in runs if r.model == system]
        if all(r.finished for r in mine):
            folder = best_of([r.folder for r in mine])
            best[system] = next(r for r in mine if r.folder == folder)
    return best


def campaign(args: argparse.Namespace) -> int:
    for flag, value, low in (
        ("--stop-after", args.stop_after, 0),
        ("--jobs", args.jobs, 0),
        ("--iw-samples", args.iw_samples, 0),
        ("--fppl-samples", args.fppl_samples, 1),
    ):
        if value is not None and not value >= low:
            raise SettingError(f"{flag} must be at least {low:g}, got {value}")
    if args.eval_minutes and (args.stop_after is None or not 0 < args.eval_minutes < args.stop_after):
        raise SettingError(f"--eval-minutes {args.eval_minutes} needs a --stop-after above it")
    start = time.time()
    deadline = start + 60 * args.stop_after if args.stop_after is not None else None
    # the test evaluations' share: one slow run (an aggressive LaggingVAE epoch) must not eat it
    train_deadline = deadline - 60 * args.eval_minutes if deadline is not None else None
    alphas, systems = sweep.parse_alphas(args.alphas), parse_systems(args.systems)
    with runner_for(args) as runner:
        out: Path = args.out  # absolute with --ray
        runs = plan(out, systems, alphas)
        out.mkdir(parents=True, exist_ok=True)
        todo = [r for r in runs if not r.finished]
        log.info("%d runs, %d to train (%s)", len(runs), len(todo), ", ".join(r.name for r in todo) or "none")
        jobs = run_jobs(
            [sweep.train_job(args, r.model, r.folder, r.alpha, r.name) for r in todo],
            runner,
            train_deadline,
            progress=not args.no_progress,
            describe=sweep.epochs_logged,
            desc="training",
        )
        status = {j.name: j.status for j in jobs}
        vae_mine = [r for r in runs if r.model == "vae-mine"]
        if vae_mine and all(r.finished for r in vae_mine):
            sweep.summarise(out / "vae-mine", alphas, args.corpus, args.config)
        ev = eval_args(args)
        best = best_runs(runs)
        eval_jobs = [
            Job(f"evaluate {r.name}", evaluate_argv(r.folder, ev, r.folder), r.folder / OUTPUT)
            for r in best.values()
            if not evaluated(r.folder, ev)
        ]
        for j in run_jobs(eval_jobs, runner, deadline, progress=not args.no_progress, desc="evaluating"):
            status[j.name] = j.status
    summary = report(out, runs, best, ev, status, time.time() - start)
    failed = [name for name, s in status.items() if s == "failed"]
    if failed:
        raise VaeMineError(f"failed: {', '.join(failed)} (their {OUTPUT} files say why); {out / 'campaign.md'}")
    if not summary["complete"]:
        log.warning("not finished: the same command continues it (%s)", out / "campaign.md")
        return EXIT_STOPPED
    return 0


def run_row(r: Run, best: dict[str, Run], ev: argparse.Namespace, status: dict[str, str]) -> dict:
    lines = [json.loads(ln) for ln in (r.folder / LOG).read_text().splitlines()] if (r.folder / LOG).is_file() else []
    top = min(lines, key=lambda ln: ln["val_nll"]) if lines else {}
    row = {
        "run": r.name,
        "system": r.model,
        "alpha": r.alpha,
        "epochs": len(lines),
        "best_epoch": top.get("epoch"),
        **{f"val_{m.key}": top.get(f"val_{m.key}") for m in catalogue.metrics(catalogue.CAMPAIGN)},
        "lr": lines[-1]["lr"] if lines else None,
        "train_minutes": round(sum(ln["seconds"] for ln in lines) / 60, 2),
        "finished": r.finished,
        "best_of_system": best.get(r.model) is r,
        "evaluated": best.get(r.model) is r and evaluated(r.folder, ev),
    }
    row["state"] = ("finished" if r.finished else status.get(r.name, "not started")) + (
        ", evaluated" if row["evaluated"] else ""
    )
    return row


def report(
    out: Path, runs: list[Run], best: dict[str, Run], ev: argparse.Namespace, status: dict[str, str], seconds: float
) -> dict:
    """OUT/campaign.md and campaign.json: where each run stands."""
    rows = [run_row(r, best, ev, status) for r in runs]
    complete = all(r["finished"] for r in rows) and all(r["evaluated"] for r in rows if r["best_of_system"])
    figures = catalogue.metrics(catalogue.CAMPAIGN)
    headers = [
        "run",
        "state",
        "epochs",
        "best epoch",
        *(f"val {m.short}" for m in figures),
        "lr now",
        "train min",
        "best",
    ]
    table = [
        [
            r["run"],
            r["state"],
            r["epochs"],
            r["best_epoch"],
            *(fmt(r[f"val_{m.key}"], m.digits) for m in figures),
            fmt(r["lr"], 4),
            fmt(r["train_minutes"]),
            "**best**" if r["best_of_system"] else "",
        ]
        for r in rows
    ]
    text = (
        f"# Campaign: {len(runs)} runs, {sum(r['finished'] for r in rows)} finished, "
        f"{sum(r['evaluated'] for r in rows)} of {len(best)} best runs evaluated\n\n"
        f"This command: {seconds / 60:.1f} min. Train min: each run's training and validation time summed over its "
        f"epochs (runs train side by side, so they overlap). `best`: the system's best run on validation NLL, "
        f"once all its runs finished.\n\n" + markdown(headers, table)
    )
    (out / "campaign.md").write_text(text)
    summary = {
        "complete": complete,
        "seconds": round(seconds, 1),
        "eval_settings": eval_settings(ev),
        "runs": rows,
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }
    write_json(out / "campaign.json", summary)
    print(text)
    return summary


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m core.campaign", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="train and evaluate the campaign (continues one stopped earlier)")
    r.add_argument("--out", required=True, type=Path, help="folder for the runs (OUT/SYSTEM, OUT/vae-mine/alpha-A)")
    r.add_argument("--systems", default="all", help=f"'all' or a comma list of {', '.join(table2())}")
    r.add_argument(
        "--alphas", default="2:5:0.5", help="VAE-MINE's grid: START:STOP:STEP or a comma list (default 2:5:0.5)"
    )
    r.add_argument("--jobs", type=int, default=0, help="processes at once (0: every run at once)")
    r.add_argument("--stop-after", type=float, help="minutes: then stop the runs (each saves its state)")
    r.add_argument(
        "--eval-minutes",
        type=float,
        default=0.0,
        help="of --stop-after, the minutes kept for the test evaluations: training stops this much earlier",
    )
    r.add_argument(
        "--iw-samples", type=int, default=eval_defaults().iw_samples, help="importance samples per test sentence"
    )
    r.add_argument(
        "--fppl-samples", type=int, default=eval_defaults().fppl_samples, help="prior samples kept for FPPL / RPPL"
    )
    add_run_arguments(r)
    add_cluster_arguments(r)
    return run_cli(p, campaign, argv)


if __name__ == "__main__":
    sys.exit(main())
