"""The paper's Table 2 for whatever of the seven systems a folder of checkpoints holds.

    python -m core.reproduce --corpus ptb --checkpoints DIR [--iw-samples 500] [--fppl-samples 100000]
        [--jobs N | --ray [ADDRESS]]

Finds the bundles under DIR (two levels deep, so a sweep's folder counts), evaluates each with
core.evaluate (ELBO-NLL, IW-NLL, KL, PPL, MI, AU, FPPL, RPPL) and prints and writes the table in the
paper's layout beside the paper's numbers, with the differences. It evaluates; training is core.train's
job. Evaluations are cached in OUT/evals/ per system, keyed by the weights and the settings, so a
rerun after adding one system evaluates only that one. With --jobs the bundles are evaluated side by
side, one process each, spread over the visible GPUs (with --ray, as tasks of a Ray cluster); KenLM
then scores their samples here.

A bundle folder may hold its evaluation already (EVALUATION, written by `core.evaluate --json` with
`--samples`, as core.campaign does on a GPU): where its settings and weights are these, its figures
are used and only FPPL / RPPL are computed here, by KenLM from the saved samples. The weights need
not be there then (a campaign's pack brings back the best bundles only).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import sys
from pathlib import Path

from ..library import catalogue
from ..library.checkpoint import CONFIG, EVALUATION, METRICS, OUTPUT, SAMPLES, WEIGHTS, read_config, write_json
from ..library.errors import VaeMineError
from ..library.evaluation import kenlm_ppl, read_samples, weights_digest
from ..library.objectives import display_name, table2
from ..library.tables import fmt, markdown, write_csv
from .cli import run_cli
from .cluster import add_cluster_arguments, runner_for
from .evaluate import add_eval_arguments, eval_settings, evaluate_argv, evaluate_checkpoint
from .parallel import Job, run_jobs

log = logging.getLogger(__name__)


def find_bundles(root: Path, corpus: str) -> dict[str, Path]:
    """One bundle per Table 2 system trained on `corpus`: where several exist (a sweep), the one
    with the best validation NLL in its metrics.json."""
    if not root.is_dir():
        raise VaeMineError(f"checkpoint folder not found: {root}")
    found: dict[str, list[Path]] = {}
    for cfg_path in sorted({*root.glob(CONFIG), *root.glob(f"*/{CONFIG}"), *root.glob(f"*/*/{CONFIG}")}):
        folder = cfg_path.parent
        if folder.is_symlink():
            continue  # e.g. a sweep's `best` link: its target is found by name
        try:
            cfg, _ = read_config(folder)
        except VaeMineError as e:
            log.warning("skipping %s: %s", folder, e)
            continue
        if cfg.corpus != corpus or cfg.objective.name not in table2():
            continue
        if not (folder / WEIGHTS).is_file() and not (folder / EVALUATION).is_file():
            log.info(
                "skipping %s: neither weights nor an evaluation (a pack brings back only the best runs' weights)",
                folder,
            )
            continue
        found.setdefault(cfg.objective.name, []).append(folder)
    return {name: best_of(found[name]) for name in table2() if name in found}


def best_of(folders: list[Path]) -> Path:
    """The run with the best validation NLL in its metrics.json (an unfinished one only if alone)."""

    def val_nll(folder: Path) -> float:
        try:
            return json.loads((folder / METRICS).read_text())["valid"]["nll"]
        except (OSError, ValueError, KeyError):
            return float("inf")

    return min(folders, key=val_nll)


def bundle_digest(folder: Path) -> str:
    """The weights' sha256; where they were left behind, the one their evaluation records."""
    if (folder / WEIGHTS).is_file():
        return weights_digest(folder)
    try:
        return json.loads((folder / EVALUATION).read_text())["weights_sha256"]
    except (OSError, ValueError, KeyError):
        raise VaeMineError(
            f"{folder} has neither weights ({WEIGHTS}) nor an evaluation ({EVALUATION}) to use"
        ) from None


def cache_key(digest: str, settings: dict) -> str:
    return hashlib.sha256((digest + json.dumps(settings, sort_keys=True)).encode()).hexdigest()


def usable_evaluation(place: Path, digest: str, args: argparse.Namespace) -> dict | None:
    """The EVALUATION in `place` where it is of these weights and settings (with its samples, where
    FPPL / RPPL are asked for); else None."""
    try:
        saved = json.loads((place / EVALUATION).read_text())
    except (OSError, ValueError):
        return None
    settings = eval_settings(args)
    if (
        saved.get("weights_sha256") != digest
        or saved.get("corpus") != args.corpus
        or {**saved.get("settings", {}), "fppl": settings["fppl"]} != settings
    ):
        log.warning("%s: its %s is for other weights or settings (%s)", place, EVALUATION, saved.get("settings"))
        return None
    if args.fppl and (saved.get("fppl_samples") != args.fppl_samples or not (place / SAMPLES).is_file()):
        log.warning("%s: its %s has no %d saved samples", place, EVALUATION, args.fppl_samples)
        return None
    return saved


def from_saved(saved: dict, place: Path, args: argparse.Namespace, tokenizer: str) -> dict:
    """A saved evaluation's figures, and FPPL / RPPL of its samples (KenLM) if asked for."""
    drop = (
        "fppl",
        "rppl",
        "kenlm_seconds",
        "checkpoint",
        "model",
        "corpus",
        "split",
        "settings",
        "weights_sha256",
        "samples",
    )
    m = {k: v for k, v in saved.items() if k not in drop}
    log.info(
        "%s: figures from %s%s",
        place,
        EVALUATION,
        f"; FPPL / RPPL of its {args.fppl_samples} samples" if args.fppl else "",
    )
    if args.fppl:
        m |= kenlm_ppl(read_samples(place / SAMPLES), args.corpus, args.split, args.data_dir, tokenizer)
    return m


def cached_metrics(folder: Path, digest: str, args: argparse.Namespace, cache_dir: Path) -> dict | None:
    cfg, _ = read_config(folder)
    try:
        saved = json.loads((cache_dir / f"{cfg.objective.name}.json").read_text())
    except (OSError, ValueError):
        return None
    return saved["metrics"] if saved.get("key") == cache_key(digest, eval_settings(args)) else None


def evaluate_bundle(folder: Path, args: argparse.Namespace, cache_dir: Path) -> dict:
    """The bundle's figures: cached here, else its own saved evaluation or one a spread process
    wrote (cache_dir/NAME), else evaluated in this process."""
    settings = eval_settings(args)
    digest = bundle_digest(folder)
    cfg, _ = read_config(folder)
    m = cached_metrics(folder, digest, args, cache_dir)
    if m is not None:
        log.info("%s: cached evaluation of %s", cfg.objective.name, folder)
        return m
    for place in (folder, cache_dir / cfg.objective.name):
        if (saved := usable_evaluation(place, digest, args)) is not None:
            m = from_saved(saved, place, args, cfg.tokenizer)
            break
    else:
        log.info("%s: evaluating %s", cfg.objective.name, folder)
        _, _, m = evaluate_checkpoint(folder, args, args.corpus)
    try:
        m["train"] = {k: v for k, v in json.loads((folder / METRICS).read_text()).items() if k not in ("valid", "test")}
    except (OSError, ValueError):
        pass
    cache_dir.mkdir(parents=True, exist_ok=True)
    write_json(
        cache_dir / f"{cfg.objective.name}.json",
        {"key": cache_key(digest, settings), "checkpoint": str(folder), "settings": settings, "metrics": m},
    )
    return m


def evaluate_spread(bundles: dict[str, Path], args: argparse.Namespace, cache_dir: Path) -> None:
    """The bundles with no usable evaluation yet, each evaluated by its own core.evaluate process on
    the least busy visible GPU, or as a Ray task (samples drawn, not scored), into cache_dir/NAME."""
    todo = {}
    for name, folder in bundles.items():
        digest, place = bundle_digest(folder), cache_dir / name
        if cached_metrics(folder, digest, args, cache_dir) is None and all(
            usable_evaluation(p, digest, args) is None for p in (folder, place)
        ):
            todo[name] = (folder.absolute(), place.absolute())  # as a Ray task, in a folder of its own, sees them
    if not todo:
        return
    with runner_for(args, ("out", "checkpoints")) as runner:  # with --ray: args.data_dir absolute, for the tasks
        jobs = [
            Job(name, evaluate_argv(folder, args, place, args.corpus), place / OUTPUT)
            for name, (folder, place) in todo.items()
        ]
        failed = [f"{j.name} (log {j.log})" for j in run_jobs(jobs, runner, desc="evaluating") if j.status != "done"]
    if failed:
        raise VaeMineError(f"evaluation failed: {', '.join(failed)}")


def nll_cell(m: dict | None) -> str | None:
    if m is None or m.get("nll") is None:
        return None
    return f"{m['nll']:.2f} ({m['kl']:.2f})" if m.get("kl") is not None else f"{m['nll']:.2f} (-)"


def diff(ours: dict, paper: dict | None, key: str) -> str | None:
    if paper is None or ours.get(key) is None or paper.get(key) is None:
        return None
    d = ours[key] - paper[key]
    return f"{d:+d}" if isinstance(d, int) else f"{d:+.2f}"


EXTRA = ("iw_nll", "iw_ppl", "mi_batch")  # core.evaluate's figures beside Table 2's, in the differences table


def build_tables(results: dict[str, dict], corpus: str, iw: int) -> tuple[str, list[str], list[list]]:
    """(markdown of the Table 2 layout and the differences, CSV headers, CSV rows); the columns are
    the catalogue's Table 2 figures, NLL and KL in one cell as the paper prints them."""
    paper = catalogue.paper_values(corpus)
    shown = catalogue.metrics(catalogue.TABLE2)
    rest = [m for m in shown if m.key not in ("nll", "kl")]
    headers = ["model", "NLL (KL)", "paper", *(h for m in rest for h in (m.short, "paper"))]
    rows = []
    for name, m in results.items():
        p = paper.get(name)
        row = [display_name(name), nll_cell(m), nll_cell(p)]
        for metric in rest:
            row += [fmt(m.get(metric.key), metric.digits), fmt(p.get(metric.key), metric.digits) if p else None]
        rows.append(row)
    text = markdown(headers, rows)
    if paper:
        text += "\nOurs minus the paper's, and the importance-weighted figures:\n\n" + difference_table(
            results, paper, iw
        )
    else:
        text += f"\nThe paper has no {corpus} numbers to compare with.\n"
    keys = [m.key for m in shown]
    csv_headers = ["system", "checkpoint", *keys, *EXTRA, *(f"paper_{k}" for k in keys)]
    csv_rows = [
        [
            n,
            m.get("checkpoint"),
            *(m.get(k) for k in keys),
            *(m.get(k) for k in EXTRA),
            *((paper.get(n) or {}).get(k) for k in keys),
        ]
        for n, m in results.items()
    ]
    return text, csv_headers, csv_rows


def difference_table(results: dict[str, dict], paper: dict, iw: int) -> str:
    shown = catalogue.metrics(catalogue.TABLE2)
    extra = [catalogue.metric(k) for k in EXTRA]
    headers = [
        "model",
        *(f"Δ {m.short}" for m in shown),
        *(f"{m.short} (k={iw})" if m.key == "iw_nll" else m.short for m in extra),
    ]
    rows = [
        [display_name(n), *(diff(m, paper.get(n), k.key) for k in shown), *(fmt(m.get(k.key), k.digits) for k in extra)]
        for n, m in results.items()
    ]
    return markdown(headers, rows)


def reproduce(args: argparse.Namespace) -> None:
    out = args.out or args.checkpoints / "table2"
    bundles = find_bundles(args.checkpoints, args.corpus)
    if not bundles:
        raise VaeMineError(
            f"no {args.corpus} checkpoints of the Table 2 systems ({', '.join(table2())}) under {args.checkpoints}"
        )
    # a run still training (or stopped early) has no metrics.json yet: its row is its best weights so far
    unfinished = [display_name(n) for n, folder in bundles.items() if not (folder / METRICS).exists()]
    if unfinished:
        log.warning(
            "unfinished runs (no %s): %s; their rows are the best weights so far", METRICS, ", ".join(unfinished)
        )
    if args.jobs != 1 or args.ray is not None:
        evaluate_spread(bundles, args, out / "evals")
    results = {
        name: {"checkpoint": str(folder), **evaluate_bundle(folder, args, out / "evals")}
        for name, folder in bundles.items()
    }
    text, csv_headers, csv_rows = build_tables(results, args.corpus, args.iw_samples)
    missing = [display_name(n) for n in table2() if n not in results]
    title = (
        f"# Table 2 layout: {args.corpus} {args.split} ({len(results)} of 7 systems)\n\n"
        f"NLL is the negative ELBO per sentence (KL in brackets); PPL from it. MI uses the whole split's aggregate "
        f"posterior. FPPL/RPPL: KenLM 5-grams, {args.fppl_samples if args.fppl else 0} samples.\n"
        + (f"Not found under {args.checkpoints}: {', '.join(missing)}.\n" if missing else "")
        + (
            f"Unfinished (no {METRICS}: the best weights so far of a run still training or stopped early): "
            f"{', '.join(unfinished)}.\n"
            if unfinished
            else ""
        )
        + "\n"
    )
    out.mkdir(parents=True, exist_ok=True)
    (out / "table2.md").write_text(title + text)
    write_csv(out / "table2.csv", csv_headers, csv_rows)
    write_json(
        out / "table2.json",
        {
            "corpus": args.corpus,
            "split": args.split,
            "settings": vars(args) | {"checkpoints": str(args.checkpoints), "out": str(out)},
            "results": results,
            "paper": catalogue.paper_values(args.corpus),
        },
    )
    print(title + text)
    print(f"written: {out / 'table2.md'}, table2.csv, table2.json")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m core.reproduce", description="Table 2 of the paper for the checkpoints in a folder."
    )
    p.add_argument("--corpus", default="ptb")
    p.add_argument(
        "--checkpoints", required=True, type=Path, help="folder holding checkpoint bundles (searched two levels deep)"
    )
    p.add_argument("--out", type=Path, help="where to write table2.md / .csv / .json (default: CHECKPOINTS/table2)")
    p.add_argument(
        "--jobs",
        type=int,
        default=1,
        help="bundles evaluated at once, each in its own process on the least busy "
        "visible GPU (0: all at once; 1: one after another in this process); KenLM runs here after",
    )
    add_eval_arguments(p, splits=("valid", "test"))
    add_cluster_arguments(p)
    return run_cli(p, reproduce, argv)


if __name__ == "__main__":
    sys.exit(main())
