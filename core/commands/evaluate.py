"""Evaluate a checkpoint on a split (the command line over core.library.evaluation): ELBO-NLL, IW-NLL, KL, PPL,
MI, AU, and KenLM FPPL / RPPL.

    python -m core.evaluate DIR --split test [--iw-samples 500] [--fppl-samples 100000 | --no-fppl] [--json OUT]
        [--samples FILE]

--samples keeps the prior samples that FPPL / RPPL score (gzip where FILE ends in .gz). With
--no-fppl it draws them without KenLM: a GPU machine evaluates and samples, and core.reproduce
scores the samples with KenLM later on a CPU machine (the figures in --json say which weights and
settings they belong to).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from ..library import catalogue, precision
from ..library.batching import Dataset
from ..library.checkpoint import EVALUATION, SAMPLES, load_bundle
from ..library.config import RunConfig
from ..library.corpora import read_split
from ..library.device import pick_device
from ..library.evaluation import draw_samples, evaluate_split, kenlm_ppl, weights_digest, write_samples
from .cli import given_flags, run_cli


def eval_settings(args: argparse.Namespace) -> dict:
    """What an evaluation's figures depend on besides the weights (the key of saved evaluations)."""
    return {
        "split": args.split,
        "iw": args.iw_samples,
        "fppl": args.fppl_samples if args.fppl else 0,
        "seed": args.seed,
        "max_sentences": args.max_sentences,
        "precision": args.precision,
    }


def add_eval_arguments(p: argparse.ArgumentParser, splits: tuple[str, ...] = ("train", "valid", "test")) -> None:
    """The evaluation settings shared by core.evaluate and core.reproduce."""
    p.add_argument("--split", default="test", choices=list(splits))
    p.add_argument("--iw-samples", type=int, default=500, help="samples per sentence for IW-NLL (0 = skip)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--max-sentences", type=int, help="use only the first N sentences of the split")
    p.add_argument(
        "--fppl",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="forward / reverse perplexity with KenLM (needs scripts/install_kenlm.sh); --no-fppl skips it",
    )
    p.add_argument("--fppl-samples", type=int, default=100_000, help="sentences sampled from the prior for FPPL / RPPL")
    p.add_argument("--data-dir", help="corpus folder (default: $VAE_MINE_DATA, else ./data)")
    p.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--precision",
        choices=precision.CHOICES,
        default="fp32",
        help="fp32, or bf16 matrix products with float32 sums (auto: bf16 where native); docs/cpu-notes.md",
    )


def eval_defaults(**given) -> argparse.Namespace:
    """add_eval_arguments' settings: its defaults, with `given` (dest names) in their place."""
    p = argparse.ArgumentParser(add_help=False)
    add_eval_arguments(p)
    return argparse.Namespace(**{**vars(p.parse_args([])), **given})


def evaluate_argv(folder: Path, args: argparse.Namespace, place: Path, corpus: str | None = None) -> list[str]:
    """`python -m` arguments of a core.evaluate process that evaluates `folder` as `args` say and
    writes EVALUATION (and, where FPPL / RPPL are asked for, the samples) into `place`, leaving
    KenLM to core.reproduce."""
    return [
        "core.evaluate",
        str(folder),
        *(["--corpus", corpus] if corpus else []),
        *given_flags(add_eval_arguments, args, skip={"fppl"}),
        "--no-fppl",
        "--json",
        str(place / EVALUATION),
        *(["--samples", str(place / SAMPLES)] if args.fppl else []),
    ]


def evaluate_checkpoint(
    folder: str | Path, args: argparse.Namespace, corpus: str | None = None
) -> tuple[RunConfig, str, dict]:
    """Load a bundle and evaluate it as add_eval_arguments' flags say: (its config, the corpus
    used, the figures). The corpus defaults to the one the bundle was trained on."""
    device = pick_device(args.device)
    cfg, vocab, model, _ = load_bundle(folder, device)
    corpus = corpus or cfg.corpus
    data = Dataset(
        read_split(corpus, args.split, args.data_dir, args.max_sentences, cfg.train.max_len, cfg.tokenizer), vocab
    )
    start = time.perf_counter()
    metrics = evaluate_split(
        model,
        data,
        args.batch_size,
        args.iw_samples if model.latent else 0,
        seed=args.seed,
        progress=True,
        desc=f"{cfg.objective.name} on {corpus}/{args.split}",
        precision=precision.resolve(args.precision, device),
    )
    metrics["seconds"] = round(time.perf_counter() - start, 2)
    keep = getattr(args, "samples", None)  # core.evaluate's flag; core.reproduce has none
    if args.fppl or keep:
        generated, info = draw_samples(
            model, vocab, corpus, args.fppl_samples, args.data_dir, args.seed, True, cfg.tokenizer
        )
        metrics.update(info)
        if keep:
            write_samples(keep, generated)
        if args.fppl:
            metrics.update(kenlm_ppl(generated, corpus, args.split, args.data_dir, cfg.tokenizer))
    return cfg, corpus, metrics


def format_table(metrics: dict[str, float], title: str) -> str:
    lines = [title, "-" * len(title)]
    for m in catalogue.metrics(catalogue.EVALUATE):
        if m.key in metrics:
            v = metrics[m.key]
            lines.append(f"{m.label:<48} {v:>12.4f}" if isinstance(v, float) else f"{m.label:<48} {v:>12}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m core.evaluate", description=__doc__.splitlines()[0])
    p.add_argument("checkpoint", help="checkpoint bundle folder")
    p.add_argument("--corpus", help="corpus to evaluate on (default: the one it was trained on)")
    p.add_argument(
        "--json", type=Path, help="write the figures here as JSON, with the settings and the weights' sha256"
    )
    p.add_argument(
        "--samples",
        type=Path,
        help="keep the prior samples FPPL / RPPL score here (.gz: gzip); with --no-fppl, "
        "draw them without scoring (core.reproduce scores them later)",
    )
    add_eval_arguments(p)

    def body(args):
        cfg, corpus, metrics = evaluate_checkpoint(args.checkpoint, args, args.corpus)
        result = {
            "checkpoint": str(args.checkpoint),
            "model": cfg.objective.name,
            "corpus": corpus,
            "split": args.split,
            "settings": eval_settings(args),
            "weights_sha256": weights_digest(Path(args.checkpoint)),
            **({"samples": str(args.samples)} if args.samples else {}),
            **metrics,
        }
        print(format_table(metrics, f"{cfg.objective.name} on {corpus}/{args.split} ({args.checkpoint})"))
        if args.json:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(result, indent=2) + "\n")

    return run_cli(p, body, argv)


if __name__ == "__main__":
    sys.exit(main())
