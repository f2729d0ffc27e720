"""Evaluate a checkpoint on a split: ELBO-NLL, IW-NLL, KL, PPL, MI, AU, and KenLM FPPL / RPPL.

    python -m core.evaluate DIR --split test [--iw-samples 500] [--fppl-samples 100000 | --no-fppl] [--json OUT]
        [--samples FILE]

--samples keeps the prior samples that FPPL / RPPL score (gzip where FILE ends in .gz). With
--no-fppl it draws them without KenLM: a GPU machine evaluates and samples, and core.reproduce
scores the samples with KenLM later on a CPU machine (the figures in --json say which weights and
settings they belong to).
"""
from __future__ import annotations

import argparse
import functools
import gzip
import json
import logging
import math
import sys
import time
from pathlib import Path

import torch
from safetensors import safe_open
from tqdm.auto import tqdm

from .batching import Dataset
from .checkpoint import EVALUATION, SAMPLES, WEIGHTS, load_bundle
from .config import RunConfig
from .corpora import data_dir as resolve_data_dir
from .corpora import file_sha256, read_split
from .tokenize import LEGACY
from .decoding import prior_samples
from .device import pick_device
from .cli import given_flags, run_cli
from .metrics import AU_THRESHOLD, active_units, aggregate_mi, batch_mi, iw_log_likelihood
from .models import TextVAE, evaluating
from .ngram import perplexity, train_ngram

log = logging.getLogger(__name__)
MI_BATCH = 50  # sentences per aggregate in the batch-wise (He et al.) MI estimate


def evaluate_split(
    model: TextVAE,
    data: Dataset,
    batch_size: int = 128,
    iw_samples: int = 0,
    seed: int = 0,
    progress: bool = False,
    desc: str = "evaluate",
) -> dict[str, float]:
    """Figures per sentence (NLLs, KL) and per token (PPL: tokens count </s>, not <s>).

    One posterior sample per sentence for the ELBO, `iw_samples` for the importance-weighted NLL.
    A fixed-seed generator is used, so evaluation is repeatable and leaves the global RNG alone.
    """
    sums = {"rec": 0.0, "kl": 0.0, "iw": 0.0}
    mus, logvars = [], []
    with evaluating(model, seed) as (device, gen):
        for batch in tqdm(list(data.batches(batch_size)), desc=desc, disable=not progress, leave=False):
            batch = batch.to(device)
            z = None
            if model.latent:
                _, mu, logvar = model.encode(batch)
                z = model.sample_z(mu, logvar, 1, gen)[:, 0]
                sums["kl"] += float(model.kl(mu, logvar).sum())
                mus.append(mu.float().cpu())
                logvars.append(logvar.float().cpu())
                if iw_samples:
                    sums["iw"] += float(iw_log_likelihood(model, batch, mu, logvar, iw_samples, gen).sum())
            sums["rec"] += float(model.reconstruction(batch, z).sum())
    n, tokens = len(data), data.n_tokens
    nll = (sums["rec"] + sums["kl"]) / n
    out: dict[str, float] = {"sentences": n, "tokens": tokens, "nll": nll, "reconstruction": sums["rec"] / n,
                             "ppl": math.exp(nll * n / tokens)}
    if model.latent:
        out.update(latent_figures(torch.cat(mus), torch.cat(logvars), sums, n, tokens, iw_samples, seed))
    return out


def latent_figures(mu: torch.Tensor, logvar: torch.Tensor, sums: dict, n: int, tokens: int, iw_samples: int,
                   seed: int) -> dict[str, float]:
    """KL, IW-NLL/PPL, MI (two estimates) and AU of a split's posteriors."""
    out: dict[str, float] = {"kl": sums["kl"] / n}
    if iw_samples:
        out.update(iw_nll=-sums["iw"] / n, iw_ppl=math.exp(-sums["iw"] / tokens), iw_samples=iw_samples)
    out["mi"] = aggregate_mi(mu, logvar, generator=torch.Generator().manual_seed(seed))
    out["mi_batch"] = _batchwise_mi(mu, logvar, torch.Generator().manual_seed(seed))
    out["au"] = active_units(mu)[0]
    return out


def _batchwise_mi(mu: torch.Tensor, logvar: torch.Tensor, generator: torch.Generator) -> float:
    """He et al.'s estimate over a split: the mean over consecutive batches of MI_BATCH posteriors."""
    total = sum(float(batch_mi(m, lv, generator)) * len(m) for m, lv in zip(mu.split(MI_BATCH), logvar.split(MI_BATCH)) if len(m) > 1)
    return total / len(mu)


def forward_reverse_ppl(model: TextVAE, vocab, corpus: str, split: str = "test", n: int = 100_000,
                        data_dir: str | None = None, seed: int = 0, progress: bool = False,
                        tokenizer: str = LEGACY) -> dict[str, float]:
    """FPPL and RPPL (see core.ngram) from n sentences sampled from the model's prior; the forward
    5-gram is trained on the corpus's whole training split, the reverse one scores `split`. A
    sample ends at </s> or at the length of the training split's longest sentence (and its </s>):
    a barely trained model writes to the cap, and no corpus sentence is longer."""
    generated, info = draw_samples(model, vocab, corpus, n, data_dir, seed, progress, tokenizer)
    return info | kenlm_ppl(generated, corpus, split, data_dir, tokenizer)


def draw_samples(model: TextVAE, vocab, corpus: str, n: int = 100_000, data_dir: str | None = None, seed: int = 0,
                 progress: bool = False, tokenizer: str = LEGACY) -> tuple[list[list[str]], dict]:
    """The n prior samples FPPL / RPPL score, and how they were drawn."""
    if n < 1:
        raise ValueError("--fppl-samples must be at least 1")
    cap = _longest_training_sentence(corpus, resolve_data_dir(data_dir), tokenizer) + 1
    start = time.perf_counter()
    generated = prior_samples(model, vocab, n, max_len=cap, seed=seed, progress=progress)
    return generated, {"fppl_samples": n, "fppl_max_len": cap, "sampling_seconds": round(time.perf_counter() - start, 2)}


def kenlm_ppl(generated: list[list[str]], corpus: str, split: str = "test", data_dir: str | None = None,
              tokenizer: str = LEGACY) -> dict[str, float]:
    """FPPL and RPPL of these samples (KenLM; CPU only)."""
    start = time.perf_counter()
    reference = read_split(corpus, split, data_dir, tokenizer=tokenizer)
    fppl = perplexity(_train_5gram(corpus, resolve_data_dir(data_dir), tokenizer), generated)
    rppl = perplexity(train_ngram(generated), reference)
    return {"fppl": fppl, "rppl": rppl, "kenlm_seconds": round(time.perf_counter() - start, 2)}


def write_samples(path: Path, sentences: list[list[str]]) -> None:
    """One sentence a line, words split by spaces (gzip where the name ends in .gz)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "".join(" ".join(words) + "\n" for words in sentences).encode()
    path.write_bytes(gzip.compress(text, mtime=0) if path.suffix == ".gz" else text)


def read_samples(path: Path) -> list[list[str]]:
    data = path.read_bytes()
    return [line.split() for line in (gzip.decompress(data) if path.suffix == ".gz" else data).decode().splitlines()]


def eval_settings(args: argparse.Namespace) -> dict:
    """What an evaluation's figures depend on besides the weights (the key of saved evaluations)."""
    return {"split": args.split, "iw": args.iw_samples, "fppl": args.fppl_samples if args.fppl else 0,
            "seed": args.seed, "max_sentences": args.max_sentences}


def weights_digest(folder: Path) -> str:
    """sha256 of a bundle's weights; for a packed lower-precision copy (core.campaign), of the weights
    it was made from, as its header records."""
    path = Path(folder) / WEIGHTS
    with safe_open(str(path), "pt") as f:
        source = (f.metadata() or {}).get("source_sha256")
    return source or file_sha256(path)


@functools.lru_cache(maxsize=1)
def _training_split(corpus: str, root: Path, tokenizer: str) -> list[list[str]]:
    """The training split, read once per process for the sampling cap and the forward 5-gram."""
    return read_split(corpus, "train", root, tokenizer=tokenizer)


def _longest_training_sentence(corpus: str, root: Path, tokenizer: str) -> int:
    return max(map(len, _training_split(corpus, root, tokenizer)))


@functools.lru_cache(maxsize=2)
def _train_5gram(corpus: str, root: Path, tokenizer: str):
    """The forward 5-gram of a corpus's training split, built once per process (core.reproduce
    scores several models against it)."""
    return train_ngram(_training_split(corpus, root, tokenizer))


def add_eval_arguments(p: argparse.ArgumentParser, splits: tuple[str, ...] = ("train", "valid", "test")) -> None:
    """The evaluation settings shared by core.evaluate and core.reproduce."""
    p.add_argument("--split", default="test", choices=list(splits))
    p.add_argument("--iw-samples", type=int, default=500, help="samples per sentence for IW-NLL (0 = skip)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--max-sentences", type=int, help="use only the first N sentences of the split")
    p.add_argument("--fppl", action=argparse.BooleanOptionalAction, default=True,
                   help="forward / reverse perplexity with KenLM (needs scripts/install_kenlm.sh); --no-fppl skips it")
    p.add_argument("--fppl-samples", type=int, default=100_000, help="sentences sampled from the prior for FPPL / RPPL")
    p.add_argument("--data-dir", help="corpus folder (default: $VAE_MINE_DATA, else ./data)")
    p.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda")
    p.add_argument("--seed", type=int, default=0)


def eval_defaults(**given) -> argparse.Namespace:
    """add_eval_arguments' settings: its defaults, with `given` (dest names) in their place."""
    p = argparse.ArgumentParser(add_help=False)
    add_eval_arguments(p)
    return argparse.Namespace(**{**vars(p.parse_args([])), **given})


def evaluate_argv(folder: Path, args: argparse.Namespace, place: Path, corpus: str | None = None) -> list[str]:
    """`python -m` arguments of a core.evaluate process that evaluates `folder` as `args` say and
    writes EVALUATION (and, where FPPL / RPPL are asked for, the samples) into `place`, leaving
    KenLM to core.reproduce."""
    return ["core.evaluate", str(folder), *(["--corpus", corpus] if corpus else []),
            *given_flags(add_eval_arguments, args, skip={"fppl"}), "--no-fppl", "--json", str(place / EVALUATION),
            *(["--samples", str(place / SAMPLES)] if args.fppl else [])]


def evaluate_checkpoint(folder: str | Path, args: argparse.Namespace, corpus: str | None = None) -> tuple[RunConfig, str, dict]:
    """Load a bundle and evaluate it as add_eval_arguments' flags say: (its config, the corpus
    used, the figures). The corpus defaults to the one the bundle was trained on."""
    cfg, vocab, model, _ = load_bundle(folder, pick_device(args.device))
    corpus = corpus or cfg.corpus
    data = Dataset(read_split(corpus, args.split, args.data_dir, args.max_sentences, cfg.train.max_len, cfg.tokenizer), vocab)
    start = time.perf_counter()
    metrics = evaluate_split(model, data, args.batch_size, args.iw_samples if model.latent else 0, seed=args.seed,
                             progress=True, desc=f"{cfg.objective.name} on {corpus}/{args.split}")
    metrics["seconds"] = round(time.perf_counter() - start, 2)
    keep = getattr(args, "samples", None)  # core.evaluate's flag; core.reproduce has none
    if args.fppl or keep:
        generated, info = draw_samples(model, vocab, corpus, args.fppl_samples, args.data_dir, args.seed, True, cfg.tokenizer)
        metrics.update(info)
        if keep:
            write_samples(keep, generated)
        if args.fppl:
            metrics.update(kenlm_ppl(generated, corpus, args.split, args.data_dir, cfg.tokenizer))
    return cfg, corpus, metrics


ROWS = [
    ("nll", "NLL (neg. ELBO, per sentence)"),
    ("iw_nll", "NLL (importance-weighted)"),
    ("reconstruction", "reconstruction"),
    ("kl", "KL"),
    ("ppl", "PPL (from ELBO-NLL)"),
    ("iw_ppl", "PPL (from IW-NLL)"),
    ("mi", "MI (whole-split aggregate)"),
    ("mi_batch", f"MI (batch-wise, He et al. 2019, {MI_BATCH} per batch)"),
    ("au", f"AU (active units, var >= {AU_THRESHOLD:g})"),
    ("fppl", "FPPL (KenLM 5-gram on train, scores samples)"),
    ("rppl", "RPPL (KenLM 5-gram on samples, scores split)"),
    ("fppl_samples", "sentences sampled for FPPL / RPPL"),
    ("sentences", "sentences"),
    ("tokens", "tokens (words + </s>)"),
]


def format_table(metrics: dict[str, float], title: str) -> str:
    lines = [title, "-" * len(title)]
    for key, label in ROWS:
        if key in metrics:
            v = metrics[key]
            lines.append(f"{label:<48} {v:>12.4f}" if isinstance(v, float) else f"{label:<48} {v:>12}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m core.evaluate", description=__doc__.splitlines()[0])
    p.add_argument("checkpoint", help="checkpoint bundle folder")
    p.add_argument("--corpus", help="corpus to evaluate on (default: the one it was trained on)")
    p.add_argument("--json", type=Path, help="write the figures here as JSON, with the settings and the weights' sha256")
    p.add_argument("--samples", type=Path, help="keep the prior samples FPPL / RPPL score here (.gz: gzip); with --no-fppl, "
                   "draw them without scoring (core.reproduce scores them later)")
    add_eval_arguments(p)

    def body(args):
        cfg, corpus, metrics = evaluate_checkpoint(args.checkpoint, args, args.corpus)
        result = {"checkpoint": str(args.checkpoint), "model": cfg.objective.name, "corpus": corpus, "split": args.split,
                  "settings": eval_settings(args), "weights_sha256": weights_digest(Path(args.checkpoint)),
                  **({"samples": str(args.samples)} if args.samples else {}), **metrics}
        print(format_table(metrics, f"{cfg.objective.name} on {corpus}/{args.split} ({args.checkpoint})"))
        if args.json:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(result, indent=2) + "\n")

    return run_cli(p, body, argv)


if __name__ == "__main__":
    sys.exit(main())
