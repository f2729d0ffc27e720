"""Evaluation of a model on a split: ELBO-NLL, IW-NLL, KL, PPL, MI, AU and the catalogue's computed
figures (core.catalogue), and KenLM's FPPL / RPPL of prior samples. Its command line: core.evaluate.
"""

from __future__ import annotations

import functools
import gzip
import logging
import math
import time
from pathlib import Path

import torch
from safetensors import safe_open
from tqdm.auto import tqdm

from . import catalogue
from .batching import Dataset
from .checkpoint import WEIGHTS
from .corpora import data_dir as resolve_data_dir
from .corpora import file_sha256, read_split
from .decoding import prior_samples
from .errors import SettingError, VaeMineError
from .metrics import iw_log_likelihood
from .models import TextVAE, evaluating
from .ngram import perplexity, train_ngram
from .precision import autocast
from .tokenize import UNRECORDED

log = logging.getLogger(__name__)


def evaluate_split(
    model: TextVAE,
    data: Dataset,
    batch_size: int = 128,
    iw_samples: int = 0,
    seed: int = 0,
    progress: bool = False,
    desc: str = "evaluate",
    precision: str = "fp32",
) -> dict[str, float]:
    """Figures per sentence (NLLs, KL) and per token (PPL: tokens count </s>, not <s>).

    One posterior sample per sentence for the ELBO, `iw_samples` for the importance-weighted NLL.
    A fixed-seed generator is used, so evaluation is repeatable and leaves the global RNG alone.
    `precision` is what the forward passes compute in (core.library.precision); the sums stay float32.
    """
    sums = {"rec": 0.0, "kl": 0.0, "iw": 0.0}
    mus, logvars, lengths = [], [], []
    with evaluating(model, seed) as (device, gen), autocast(precision, device):
        for batch in tqdm(list(data.batches(batch_size)), desc=desc, disable=not progress, leave=False):
            batch = batch.to(device)
            z = None
            if model.latent:
                _, mu, logvar = model.encode(batch)
                z = model.sample_z(mu, logvar, 1, gen)[:, 0]
                sums["kl"] += float(model.kl(mu, logvar).sum())
                mus.append(mu.float().cpu())
                lengths.append(batch.lengths.cpu())
                logvars.append(logvar.float().cpu())
                if iw_samples:
                    sums["iw"] += float(iw_log_likelihood(model, batch, mu, logvar, iw_samples, gen).sum())
            sums["rec"] += float(model.reconstruction(batch, z).sum())
    n, tokens = len(data), data.n_tokens
    nll = (sums["rec"] + sums["kl"]) / n
    out: dict[str, float] = {
        "sentences": n,
        "tokens": tokens,
        "nll": nll,
        "reconstruction": sums["rec"] / n,
        "ppl": math.exp(nll * n / tokens),
    }
    if model.latent:
        out.update(
            latent_figures(torch.cat(mus), torch.cat(logvars), sums, n, tokens, iw_samples, seed, torch.cat(lengths))
        )
    return out


def evaluate_best(
    model: TextVAE, cfg, vocab, valid: Dataset, data_dir: str | None, progress: bool = True, precision: str = "fp32"
) -> dict[str, dict[str, float]]:
    """A finished run's figures of its best weights on valid and test ({split: figures}), as its
    metrics.json records them; a split this data folder lacks is left out, with a warning."""
    figures = {}
    for split in ("valid", "test"):
        try:
            data = (
                valid
                if split == "valid"
                else Dataset(read_split(cfg.corpus, split, data_dir, None, cfg.train.max_len, cfg.tokenizer), vocab)
            )
        except VaeMineError as e:
            log.warning("no %s metrics: %s", split, e)
            continue
        figures[split] = evaluate_split(
            model,
            data,
            cfg.train.eval_batch_size,
            seed=cfg.train.seed,
            progress=progress,
            desc=f"best weights on {split}",
            precision=precision,
        )
    return figures


def latent_figures(
    mu: torch.Tensor,
    logvar: torch.Tensor,
    sums: dict,
    n: int,
    tokens: int,
    iw_samples: int,
    seed: int,
    lengths: torch.Tensor,
) -> dict[str, float]:
    """KL and IW-NLL/PPL (from the sums the loop kept), then the catalogue's computed figures of a split's
    posteriors."""
    out: dict[str, float] = {"kl": sums["kl"] / n}
    if iw_samples:
        out.update(iw_nll=-sums["iw"] / n, iw_ppl=math.exp(-sums["iw"] / tokens), iw_samples=iw_samples)
    posteriors = catalogue.Posteriors(mu, logvar, lengths, seed)
    for m in catalogue.computed():  # MI (both estimates), AU and any figure added to the catalogue
        out[m.key] = m.compute(posteriors)
    return out


def draw_samples(
    model: TextVAE,
    vocab,
    corpus: str,
    n: int = 100_000,
    data_dir: str | None = None,
    seed: int = 0,
    progress: bool = False,
    tokenizer: str = UNRECORDED,
) -> tuple[list[list[str]], dict]:
    """The n prior samples FPPL / RPPL score, and how they were drawn."""
    if n < 1:
        raise SettingError("--fppl-samples must be at least 1")
    cap = _longest_training_sentence(corpus, resolve_data_dir(data_dir), tokenizer) + 1
    start = time.perf_counter()
    generated = prior_samples(model, vocab, n, max_len=cap, seed=seed, progress=progress)
    return generated, {
        "fppl_samples": n,
        "fppl_max_len": cap,
        "sampling_seconds": round(time.perf_counter() - start, 2),
    }


def kenlm_ppl(
    generated: list[list[str]],
    corpus: str,
    split: str = "test",
    data_dir: str | None = None,
    tokenizer: str = UNRECORDED,
) -> dict[str, float]:
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
