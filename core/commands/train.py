"""Train a text VAE: the command line over core.library.training's loop.

    python -m core.train --corpus ptb --model vae-mine --out runs/ptb-mine [--config small] [--resume]

add_run_arguments holds the run flags that core.sweep and core.campaign share; run_config turns
them into a RunConfig.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..library import checkpoint as ckpt
from ..library import graphs, precision
from ..library.config import RunConfig, TrainConfig, model_config
from ..library.corpora import resolve as resolve_corpus
from ..library.device import pick_device
from ..library.errors import SettingError
from ..library.objectives import objective_class, registry
from ..library.objectives.mine import RECIPES
from ..library.tokenize import TOKENIZERS
from ..library.tokenize import default_for as default_tokenizer
from ..library.training import train
from .cli import given_flags, run_cli


def non_negative(text: str) -> float:
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {text}")
    return value


def add_run_arguments(p: argparse.ArgumentParser) -> None:
    """The settings of a run shared by core.train and core.sweep."""
    p.add_argument(
        "--corpus",
        default="ptb",
        help="a folder under the data directory (ptb, flickr8k, yours), a path to a folder with "
        "train.txt/valid.txt/test.txt, or a path to one text file (split 80/10/10)",
    )
    p.add_argument(
        "--tokenizer",
        choices=TOKENIZERS,
        help="treebank (raw text: lower-cased, punctuation split) or pretokenized (text already tokenised); "
        "default: pretokenized for ptb, flickr8k, yahoo and snli, else treebank",
    )
    p.add_argument(
        "--config", default="paper", help="model preset (paper, small, tiny) or a JSON file of ModelConfig fields"
    )
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="a setting of the chosen objective, e.g. --set anneal_epochs=5 (an unknown field lists the known ones)",
    )
    p.add_argument("--epochs", type=int, default=TrainConfig.epochs)
    p.add_argument(
        "--minutes",
        type=float,
        help="time budget: no epoch starts that would end, if as long as the "
        "last, past this many minutes of training (summed over resumes)",
    )
    p.add_argument("--batch-size", type=int, default=TrainConfig.batch_size)
    p.add_argument("--max-train", type=int, help="use the first N training sentences")
    p.add_argument(
        "--decay-from-epoch",
        type=int,
        default=TrainConfig.decay_from_epoch,
        help="first epoch the lr may be halved in (He et al.: 16; 1 is the rule of format-1 runs)",
    )
    p.add_argument("--seed", type=int, default=TrainConfig.seed)
    p.add_argument("--data-dir", help="corpus folder (default: $VAE_MINE_DATA, else ./data)")
    p.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument(
        "--cuda-graphs",
        choices=graphs.MODES,
        default="auto",
        help="on CUDA, run each training step as a captured CUDA graph "
        "(auto: where possible; see core/library/graphs.py)",
    )
    p.add_argument(
        "--tf32",
        action="store_true",
        help="on CUDA, multiply float32 matrices in TF32 (cuBLAS and cuDNN): faster, about 1e-3 relative "
        "error per product; without it every product is full float32",
    )
    p.add_argument(
        "--precision",
        choices=precision.CHOICES,
        default="fp32",
        help="fp32, or bf16 matrix products with float32 weights and loss sums (mixed precision; auto: bf16 "
        "where the CPU or GPU multiplies it natively); see docs/cpu-notes.md",
    )
    p.add_argument(
        "--checkpoint-minutes",
        type=non_negative,
        default=10.0,
        help="inside an epoch, save a checkpoint for --resume every this many minutes (0: at epoch ends only)",
    )


def run_argv(args: argparse.Namespace) -> list[str]:
    """add_run_arguments' flags as given (those that differ from their defaults), for a core.train
    process started on the caller's behalf (core.commands.parallel)."""
    return given_flags(add_run_arguments, args)


def run_config(args: argparse.Namespace, model: str, alpha: float | None = None) -> RunConfig:
    """The RunConfig of core.train's flags; `alpha` is a shortcut for `--set alpha=A`."""
    name, mc = model_config(args.config)
    cls = objective_class(model)
    corpus = resolve_corpus(args.corpus, args.data_dir).name
    return RunConfig(
        corpus=corpus,
        tokenizer=args.tokenizer or default_tokenizer(corpus),
        config_name=name,
        model=mc,
        objective=cls.settings_from_strings([*args.set, *([f"alpha={alpha}"] if alpha is not None else [])]),
        train=TrainConfig(
            epochs=args.epochs,
            minutes=args.minutes,
            batch_size=args.batch_size,
            max_train=args.max_train,
            seed=args.seed,
            decay_from_epoch=args.decay_from_epoch,
            precision=precision.resolve(args.precision, pick_device(args.device)),
        ),
    )


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m core.train", description="Train a text VAE with one of the objectives.")
    p.add_argument("--model", default="vae-mine", choices=list(registry()), help="objective / system")
    p.add_argument("--out", required=True, type=Path, help="folder for the checkpoint bundle")
    p.add_argument("--alpha", type=float, help="VAE-MINE weight of the MI bound (same as --set alpha=A)")
    p.add_argument(
        "--recipe",
        choices=sorted(RECIPES),
        help="VAE-MINE: a named group of settings beyond the paper; reads-code: "
        + ", ".join(f"{k}={v}" for k, v in RECIPES["reads-code"])
        + " (the paper's settings without it)",
    )
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    add_run_arguments(p)
    return p


def main(argv: list[str] | None = None) -> int:
    def body(args):
        if args.recipe:
            if args.model != "vae-mine":
                raise SettingError(f"--recipe {args.recipe} is a group of VAE-MINE settings; --model is {args.model}")
            args.set = [*(f"{k}={v}" for k, v in RECIPES[args.recipe]), *args.set]
        train(
            run_config(args, args.model, args.alpha),
            args.out,
            args.data_dir,
            args.device,
            args.resume,
            progress=not args.no_progress,
            checkpoint_minutes=args.checkpoint_minutes,
            cuda_graphs=args.cuda_graphs,
            tf32=args.tf32,
        )
        metrics = json.loads((args.out / ckpt.METRICS).read_text())
        print(json.dumps(metrics, indent=2))
        warning = collapse_warning(metrics, args.model, decoder_use(args.out, args.data_dir))
        if warning:
            print(warning, file=sys.stderr)

    return run_cli(parser(), body, argv)


USE_FLOOR = 0.05  # nats a word: a decoder whose prediction moves less when z is swapped ignores z


def decoder_use(out: Path, data_dir: str | None) -> float | None:
    """The trained model's use of z (TextVAEModel.use_of_z) on its first validation sentence, or None."""
    from ..library.errors import VaeMineError
    from ..serving.api import load, read_sentences

    try:
        model = load(out)
        if not model.latent:
            return None
        first = read_sentences(model.corpus, "valid", data_dir, 1, model.config.tokenizer)
        return model.use_of_z(*first[:1])
    except VaeMineError:
        return None


def collapse_warning(metrics: dict, model: str, use: float | None = None) -> str | None:
    """One line when the trained model's code collapsed (no active unit on validation) or its decoder
    ignores z (use of z under USE_FLOOR nats a word), saying what to try."""
    valid = metrics.get("valid") or {}
    if "au" not in valid:
        return None
    collapsed, ignored = valid["au"] == 0, use is not None and use < USE_FLOOR
    if not (collapsed or ignored):
        return None
    hint = (
        "--recipe reads-code (the settings that kept VAE-MINE's code in use here), more --epochs or --max-train, "
        "or a larger --alpha"
        if model == "vae-mine"
        else "--model vae-mine --recipe reads-code, or --model lagging"
    )
    what = (
        f"the code collapsed (validation AU 0, MI {valid.get('mi', float('nan')):.2f}, KL "
        f"{valid.get('kl', float('nan')):.2f})"
        if collapsed
        else f"the decoder ignores z (use of z {use:.3f} nats a word, although AU is {valid['au']})"
    )
    return f"warning: {what}, so the explorer will show every sentence alike; try {hint}"


if __name__ == "__main__":
    sys.exit(main())
