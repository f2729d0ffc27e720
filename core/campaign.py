"""The paper's Table 2 campaign in one command: the Table 2 systems and VAE-MINE's alpha grid
trained side by side (one process per run, spread over the visible GPUs), each to the end of its
lr schedule; then the best run of each system evaluated on the test split (IW-NLL, KL, MI, AU and
the prior samples FPPL / RPPL score); then everything packed into a few files a GPU lease can bring
back. FPPL / RPPL and the table are core.reproduce's, later, on a CPU machine with KenLM.

    python -m core.campaign run --out runs/ptb-campaign [--stop-after MINUTES] [--pack DIR]
        [--alphas 2:5:0.5] [--systems all] [--jobs 0 | --ray [ADDRESS]] [core.train's run flags, e.g. --tf32]
    python -m core.campaign unpack DIR DEST
    python -m core.reproduce --checkpoints DEST

--stop-after is the command's own time limit less the pack's minute: the runs are stopped then
(each saves its state; exit status 3), or --eval-minutes earlier so the finished systems' test
evaluations still fit and the same command later continues them, in this machine's
--out. OUT/campaign.md says where every run stands. The pack holds every run's config, vocabulary,
per-epoch log, figures, evaluation and samples, then the best bundle of each system as float16
(VAE-MINE and LaggingVAE first) while the parts stay within --pack-files files of --pack-mib MiB;
it names what it left out.
"""
from __future__ import annotations

import argparse
import gzip
import io
import json
import logging
import shutil
import sys
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from . import sweep
from .checkpoint import (CONFIG, EVALUATION, LOG, METRICS, OUTPUT, PROBE, SAMPLES, VOCAB, WEIGHTS, load_tensors, save_tensors,
                         write_json)
from .cli import run_cli
from .corpora import resolve as resolve_corpus
from .errors import EXIT_STOPPED, VaeMineError
from .evaluate import eval_defaults, eval_settings, evaluate_argv, weights_digest
from .objectives import display_name, table2
from .parallel import Job, run_jobs
from .cluster import add_cluster_arguments, runner_for
from .reproduce import best_of, usable_evaluation
from .tables import fmt, markdown
from .train import add_run_arguments

log = logging.getLogger(__name__)
PACK_NAME = "campaign.tar.gz"
FIRST = ("vae-mine", "lagging")  # the explorer's pair: packed before the other bundles


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
        raise ValueError(f"--systems {spec!r}: choose 'all' or some of {', '.join(names)}")
    return [s for s in names if s in chosen]  # the paper's row order


def eval_args(args: argparse.Namespace) -> argparse.Namespace:
    """core.evaluate's settings for each system's best run: the test split, and the samples FPPL /
    RPPL will score (KenLM is core.reproduce's, later)."""
    corpus = resolve_corpus(args.corpus, args.data_dir).name  # as the runs' configs record it
    return eval_defaults(split="test", iw_samples=args.iw_samples, fppl_samples=args.fppl_samples, corpus=corpus,
                         data_dir=args.data_dir, device=args.device)


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
    for flag, value, low in (("--stop-after", args.stop_after, 0), ("--pack-mib", args.pack_mib, 0.001),
                             ("--pack-files", args.pack_files, 1), ("--jobs", args.jobs, 0), ("--iw-samples", args.iw_samples, 0),
                             ("--fppl-samples", args.fppl_samples, 1)):
        if value is not None and not value >= low:
            raise ValueError(f"{flag} must be at least {low:g}, got {value}")
    if args.eval_minutes and (args.stop_after is None or not 0 < args.eval_minutes < args.stop_after):
        raise ValueError(f"--eval-minutes {args.eval_minutes} needs a --stop-after above it")
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
        jobs = run_jobs([sweep.train_job(args, r.model, r.folder, r.alpha, r.name) for r in todo], runner, train_deadline,
                        progress=not args.no_progress, describe=sweep.epochs_logged, desc="training")
        status = {j.name: j.status for j in jobs}
        vae_mine = [r for r in runs if r.model == "vae-mine"]
        if vae_mine and all(r.finished for r in vae_mine):
            sweep.summarise(out / "vae-mine", alphas, args.corpus, args.config)
        ev = eval_args(args)
        best = best_runs(runs)
        eval_jobs = [Job(f"evaluate {r.name}", evaluate_argv(r.folder, ev, r.folder), r.folder / OUTPUT)
                     for r in best.values() if not evaluated(r.folder, ev)]
        for j in run_jobs(eval_jobs, runner, deadline, progress=not args.no_progress, desc="evaluating"):
            status[j.name] = j.status
    summary = report(out, runs, best, ev, status, time.time() - start)
    if args.pack:
        pack(out, args.pack, runs, best, int(args.pack_mib * 2**20), args.pack_files)
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
    row = {"run": r.name, "system": r.model, "alpha": r.alpha, "epochs": len(lines), "best_epoch": top.get("epoch"),
           "val_nll": top.get("val_nll"), "val_kl": top.get("val_kl"), "val_mi": top.get("val_mi"), "val_au": top.get("val_au"),
           "lr": lines[-1]["lr"] if lines else None, "train_minutes": round(sum(ln["seconds"] for ln in lines) / 60, 2),
           "finished": r.finished, "best_of_system": best.get(r.model) is r,
           "evaluated": best.get(r.model) is r and evaluated(r.folder, ev)}
    row["state"] = ("finished" if r.finished else status.get(r.name, "not started")) + (", evaluated" if row["evaluated"] else "")
    return row


def report(out: Path, runs: list[Run], best: dict[str, Run], ev: argparse.Namespace, status: dict[str, str],
           seconds: float) -> dict:
    """OUT/campaign.md and campaign.json: where each run stands."""
    rows = [run_row(r, best, ev, status) for r in runs]
    complete = all(r["finished"] for r in rows) and all(r["evaluated"] for r in rows if r["best_of_system"])
    headers = ["run", "state", "epochs", "best epoch", "val NLL", "val KL", "val MI", "val AU", "lr now", "train min", "best"]
    table = [[r["run"], r["state"], r["epochs"], r["best_epoch"], *(fmt(r[k]) for k in ("val_nll", "val_kl", "val_mi")), r["val_au"],
              fmt(r["lr"], 4), fmt(r["train_minutes"]), "**best**" if r["best_of_system"] else ""] for r in rows]
    text = (f"# Campaign: {len(runs)} runs, {sum(r['finished'] for r in rows)} finished, "
            f"{sum(r['evaluated'] for r in rows)} of {len(best)} best runs evaluated\n\n"
            f"This command: {seconds / 60:.1f} min. Train min: each run's training and validation time summed over its "
            f"epochs (runs train side by side, so they overlap). `best`: the system's best run on validation NLL, "
            f"once all its runs finished.\n\n" + markdown(headers, table))
    (out / "campaign.md").write_text(text)
    summary = {"complete": complete, "seconds": round(seconds, 1), "eval_settings": eval_settings(ev), "runs": rows,
               "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}
    write_json(out / "campaign.json", summary)
    print(text)
    return summary


# -- the pack: at most N files of at most M MiB ------------------------------------------------------

class Parts(io.RawIOBase):
    """A byte stream written as DIR/NAME.00, .01, ... of at most `size` bytes each."""

    def __init__(self, folder: Path, name: str, size: int):
        self.folder, self.name, self.size = folder, name, size
        self.paths: list[Path] = []
        self.file = None
        self.left = 0
        self.total = 0

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        view = memoryview(data).cast("B")
        done = 0
        while done < len(view):
            if self.left == 0:
                if self.file:
                    self.file.close()
                self.paths.append(self.folder / f"{self.name}.{len(self.paths):02d}")
                self.file, self.left = open(self.paths[-1], "wb"), self.size
            n = min(self.left, len(view) - done)
            self.file.write(view[done:done + n])
            done, self.left, self.total = done + n, self.left - n, self.total + n
        return done

    def close(self) -> None:
        if self.file:
            self.file.close()
            self.file = None
        super().close()


def pack(out: Path, dest: Path, runs: list[Run], best: dict[str, Run], part_bytes: int, max_files: int) -> list[Path]:
    """Write OUT's results as gzip'd tar parts into `dest` (see the module docstring); returns them."""
    dest.mkdir(parents=True, exist_ok=True)
    for old in dest.glob(f"{PACK_NAME}.*"):
        old.unlink()
    budget = part_bytes * max_files
    records = [out / n for n in ("campaign.md", "campaign.json")] + [out / "vae-mine" / n for n in ("sweep.md", "sweep.csv", "best.json")]
    records += [r.folder / n for r in runs for n in (CONFIG, VOCAB, LOG, METRICS, EVALUATION, SAMPLES, OUTPUT)]
    records = [f for f in records if f.is_file() and not f.is_symlink()]
    size = sum(f.stat().st_size for f in records)
    if size + (1 << 18) > budget:  # as written (before compression), so a bound
        raise VaeMineError(f"the runs' records alone take {size / 2**20:.1f} MiB, over the pack's {budget / 2**20:.0f} MiB: "
                           f"raise --pack-mib or --pack-files, or keep fewer --fppl-samples")
    parts = Parts(dest, PACK_NAME, part_bytes)
    left_out = []
    # gzip level 1: float16 weights barely compress, and a lease's minutes are dear
    with gzip.GzipFile(fileobj=parts, mode="wb", compresslevel=1, mtime=0) as gz, tarfile.open(fileobj=gz, mode="w|") as tar:
        for f in records:
            tar.add(f, arcname=str(f.relative_to(out)))
        order = [s for s in FIRST if s in best] + [s for s in best if s not in FIRST]
        for system in order:
            r = best[system]
            half = out / ".pack" / r.name / WEIGHTS
            half.parent.mkdir(parents=True, exist_ok=True)
            save_tensors(half, load_tensors(r.folder / WEIGHTS), torch.float16,
                         metadata={"source_sha256": weights_digest(r.folder), "source": "float16 copy (core.campaign pack)"})
            size = half.stat().st_size + ((r.folder / PROBE).stat().st_size if (r.folder / PROBE).is_file() else 0)
            if parts.total + size + (1 << 18) > budget:  # what gzip holds back, and headers: 256 KiB is ample
                left_out.append(f"{display_name(system)} ({r.name}, {size / 2**20:.1f} MiB)")
            else:
                tar.add(half, arcname=str(r.folder.relative_to(out) / WEIGHTS))
                if (r.folder / PROBE).is_file():
                    tar.add(r.folder / PROBE, arcname=str(r.folder.relative_to(out) / PROBE))
            half.unlink()
    parts.close()
    shutil.rmtree(out / ".pack", ignore_errors=True)
    if len(parts.paths) > max_files:
        for path in parts.paths:
            path.unlink()
        raise VaeMineError(f"the pack took {len(parts.paths)} files, over --pack-files {max_files}: raise --pack-mib")
    left = f"; left out: {', '.join(left_out)}" if left_out else ""
    log.info("packed %s into %d files in %s (%.1f MiB)%s", out, len(parts.paths), dest, parts.total / 2**20, left)
    print(f"pack: {len(parts.paths)} files, {parts.total / 2**20:.1f} MiB in {dest}{left}")
    return parts.paths


class Joined(io.RawIOBase):
    """The parts read back as one stream."""

    def __init__(self, paths: list[Path]):
        self.files = [open(p, "rb") for p in paths]

    def readable(self) -> bool:
        return True

    def readinto(self, buf) -> int:
        while self.files:
            n = self.files[0].readinto(buf)
            if n:
                return n
            self.files.pop(0).close()
        return 0


def unpack(folder: Path, dest: Path) -> Path:
    paths = sorted(folder.glob(f"{PACK_NAME}.[0-9][0-9]"))
    if not paths:
        raise VaeMineError(f"no {PACK_NAME}.NN parts in {folder}")
    numbers = [int(p.suffix[1:]) for p in paths]
    if numbers != list(range(len(paths))):
        raise VaeMineError(f"the parts in {folder} are not {PACK_NAME}.00 to .{len(paths) - 1:02d}: one is missing")
    dest.mkdir(parents=True, exist_ok=True)
    try:
        with tarfile.open(fileobj=io.BufferedReader(Joined(paths)), mode="r|gz") as tar:
            tar.extractall(dest, filter="data")
    except (tarfile.TarError, EOFError, OSError) as e:
        raise VaeMineError(f"the pack in {folder} is damaged or incomplete: {e}") from None
    print(f"unpacked {len(paths)} parts into {dest}; next: python -m core.reproduce --checkpoints {dest}")
    return dest


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m core.campaign", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="train, evaluate and pack the campaign (continues one stopped earlier)")
    r.add_argument("--out", required=True, type=Path, help="folder for the runs (OUT/SYSTEM, OUT/vae-mine/alpha-A)")
    r.add_argument("--systems", default="all", help=f"'all' or a comma list of {', '.join(table2())}")
    r.add_argument("--alphas", default="2:5:0.5", help="VAE-MINE's grid: START:STOP:STEP or a comma list (default 2:5:0.5)")
    r.add_argument("--jobs", type=int, default=0, help="processes at once (0: every run at once)")
    r.add_argument("--stop-after", type=float, help="minutes: then stop the runs (each saves its state) and pack")
    r.add_argument("--eval-minutes", type=float, default=0.0,
                   help="of --stop-after, the minutes kept for the test evaluations: training stops this much earlier")
    r.add_argument("--iw-samples", type=int, default=eval_defaults().iw_samples, help="importance samples per test sentence")
    r.add_argument("--fppl-samples", type=int, default=eval_defaults().fppl_samples, help="prior samples kept for FPPL / RPPL")
    r.add_argument("--pack", type=Path, help="write the results here as gzip'd tar parts")
    r.add_argument("--pack-mib", type=float, default=16.0, help="largest part, MiB (default 16)")
    r.add_argument("--pack-files", type=int, default=8, help="most parts (default 8)")
    add_run_arguments(r)
    add_cluster_arguments(r)
    u = sub.add_parser("unpack", help="rebuild a campaign's folder from its pack")
    u.add_argument("folder", type=Path, help="the folder holding campaign.tar.gz.NN")
    u.add_argument("dest", type=Path)

    def body(args):
        if args.command == "unpack":
            unpack(args.folder, args.dest)
            return 0
        return campaign(args)

    return run_cli(p, body, argv)


if __name__ == "__main__":
    sys.exit(main())
