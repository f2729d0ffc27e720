"""What a user sees of a model, measured: reconstruction, prior samples, interpolation paths and
neighbours, beside NLL, KL, MI and AU, for each checkpoint; a table and JSON.

    .venv/bin/python -m bench.quality CHECKPOINT... [--corpus C] [--split test] [--out FILE.json] [--cards] [--jobs 2]

With --cards, each checkpoint's model card (README.md) gets the table of all of them, its own row
marked, under "What a user sees" (replacing an earlier one).

Per checkpoint, on the split (whole by default; `--limit N` for its first N sentences):
  * NLL (negative ELBO), KL, MI, AU: core's definitions (`TextVAEModel.evaluate`);
  * word-F1 between each sentence and its reconstruction from the posterior mean, greedy and beam 5
    (`core.word_f1`), and the share reconstructed exactly (greedy);
  * the distinct share of 100 greedy prior samples (`core.diversity`, as the Sample tab), the mean
    over seeds 0-19 (one seed's share moves by about 0.02, as much as two models differ), and its sd;
  * the mean number of distinct sentences on 10-point linear paths between 20 random pairs, seed 0;
  * decoder use of z (`decoder_use_of_z`, nats a word against a prior draw): on the explorer's example
    sentence, the mean over prior draws at seeds 0-19; and over the split's first 500 sentences;
  * the mean word-F1 between each sentence and its top-5 cosine neighbours (posterior means) among
    the whole training split, beside the same figure for random training sentences.
"""

from __future__ import annotations

import argparse
import json
import sys
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

import core
from bench import replace_section, report
from core.library.tables import fmt, markdown

PAIRS, PATH_POINTS, PRIOR_SAMPLES, PRIOR_SEEDS, NEIGHBOURS, USE_SENTENCES = 20, 10, 100, 20, 5, 500
EXAMPLE = core.EXAMPLE  # the Reconstruct, Probe and collapse tabs' first sentence
COLUMNS = [
    ("nll", "NLL"),
    ("kl", "KL"),
    ("mi", "MI"),
    ("au", "AU"),
    ("f1_greedy", "rec. F1 greedy"),
    ("f1_beam", "rec. F1 beam 5"),
    ("exact", "exact"),
    ("prior_distinct", "prior distinct"),
    ("prior_distinct_sd", "sd"),
    ("path_distinct", f"distinct / {PATH_POINTS}-pt path"),
    ("use_of_z", "use of z (example)"),
    ("use_of_z_split", "use of z (split)"),
    ("neighbour_f1", "neighbour F1"),
    ("random_f1", "random-pair F1"),
]


def mean_f1(a: list[str], b: list[str]) -> float:
    return float(np.mean([core.word_f1(x, y) for x, y in zip(a, b)]))


def reconstruction(model, sentences: list[str], chunk: int = 500) -> dict:
    greedy, beam = [], []
    for start in tqdm(range(0, len(sentences), chunk), desc=f"{model.name}: reconstructing", leave=False):
        part = sentences[start : start + chunk]
        greedy += model.reconstruct(part)
        beam += model.reconstruct(part, strategy="beam", beam_size=5)
    exact = np.mean([core.word_f1(s, r) == 1.0 and len(s.split()) == len(r.split()) for s, r in zip(sentences, greedy)])
    return {"f1_greedy": mean_f1(sentences, greedy), "f1_beam": mean_f1(sentences, beam), "exact": float(exact)}


def prior(model) -> dict:
    shares = [core.diversity(model.sample_prior(PRIOR_SAMPLES, seed=s))["distinct"] for s in range(PRIOR_SEEDS)]
    return {"prior_distinct": float(np.mean(shares)), "prior_distinct_sd": float(np.std(shares, ddof=1))}


def use_of_z(model, sentences: list[str]) -> dict:
    """One draw moves the example's figure by about 0.5-0.8 nats: hence the mean over draws."""
    split = [model.decoder_use_of_z(x, seed=i)["mean_prior"] for i, x in enumerate(sentences[:USE_SENTENCES])]
    return {"use_of_z": model.use_of_z(EXAMPLE, PRIOR_SEEDS), "use_of_z_split": float(np.mean(split))}


def paths(model, sentences: list[str]) -> float:
    rng = np.random.default_rng(0)
    pairs = rng.choice(len(sentences), size=(PAIRS, 2), replace=False)
    return float(np.mean([len(set(model.interpolate(sentences[i], sentences[j], PATH_POINTS))) for i, j in pairs]))


def neighbours(model, sentences: list[str], train: list[str]) -> dict:
    """Mean word-F1 of each sentence with its top-5 training neighbours, and with 5 random ones."""
    means, _ = model.encode_many(train, None)
    unit = means / np.maximum(np.linalg.norm(means, axis=1, keepdims=True), 1e-12)
    queries, _ = model.encode_many(sentences, None)
    queries /= np.maximum(np.linalg.norm(queries, axis=1, keepdims=True), 1e-12)
    rng = np.random.default_rng(0)
    near, rand = [], []
    for start in range(0, len(sentences), 1000):
        sims = queries[start : start + 1000] @ unit.T
        top = np.argpartition(-sims, NEIGHBOURS, axis=1)[:, :NEIGHBOURS]
        for q, idx in enumerate(top, start):
            near.append(np.mean([core.word_f1(sentences[q], train[i]) for i in idx]))
            rand.append(
                np.mean([core.word_f1(sentences[q], train[i]) for i in rng.integers(len(train), size=NEIGHBOURS)])
            )
    return {"neighbour_f1": float(np.mean(near)), "random_f1": float(np.mean(rand))}


def measure(path: str, corpus: str | None, split: str, limit: int | None, data_dir: str | None) -> dict:
    model = core.load(path)
    corpus = corpus or model.corpus
    sentences = core.read_sentences(corpus, split, data_dir, limit)
    out = {
        "checkpoint": path,
        "model": model.name,
        "corpus": corpus,
        "split": split,
        "sentences": len(sentences),
        **{k: model.evaluate(sentences)[k] for k in ("nll", "kl", "mi", "au")},
    }
    out |= reconstruction(model, sentences)
    out |= prior(model)
    out["path_distinct"] = paths(model, sentences)
    out |= use_of_z(model, sentences)
    out |= neighbours(model, sentences, core.read_sentences(corpus, "train", data_dir))
    return out


def table(results: list[dict]) -> str:
    rows = [
        [
            r["checkpoint"] if r["checkpoint"].startswith("**") else Path(r["checkpoint"]).name,
            *(fmt(r[k], 3 if k not in ("nll", "au") else 2) for k, _ in COLUMNS),
        ]
        for r in results
    ]
    return markdown(["checkpoint", *(label for _, label in COLUMNS)], rows)


CARD_HEADING = "## What a user sees (`bench.quality`)"


def write_cards(results: list[dict], args) -> None:
    for r in results:
        card = Path(r["checkpoint"]) / "README.md"
        if not card.is_file():
            continue
        marked = [
            dict(x, checkpoint=f"**{Path(x['checkpoint']).name}**" if x is r else x["checkpoint"]) for x in results
        ]
        card.write_text(
            replace_section(
                card.read_text(),
                CARD_HEADING,
                f"{CARD_HEADING}\n\n`python -m bench.quality {' '.join(x['checkpoint'] for x in results)} "
                f"--split {args.split}` on {r['sentences']:,} {r['corpus']}/{args.split} sentences "
                f"(reconstruction F1: word overlap with the input; distinct: of {PRIOR_SAMPLES} prior "
                f"samples, the mean over {PRIOR_SEEDS} seeds, and "
                f"on {PATH_POINTS}-point paths; neighbour F1: with the top {NEIGHBOURS} training neighbours):\n\n"
                f"{table(marked)}",
            )
        )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.quality", description=__doc__.splitlines()[0])
    p.add_argument("checkpoints", nargs="+")
    p.add_argument("--corpus", help="default: each checkpoint's own")
    p.add_argument("--split", default="test", choices=["valid", "test"])
    p.add_argument("--limit", type=int, help="the first N sentences of the split (default: all)")
    p.add_argument("--data-dir")
    p.add_argument("--out", type=Path, help="write the figures here as JSON")
    p.add_argument("--cards", action="store_true", help="put the table into each checkpoint's model card")
    p.add_argument("--jobs", type=int, default=1, help="checkpoints measured side by side, one process each")
    p.add_argument(
        "--from-json",
        type=Path,
        help="take the figures from an earlier --out file instead of measuring "
        "(to rewrite the cards after an export replaced them)",
    )
    args = p.parse_args(argv)
    one = partial(measure, corpus=args.corpus, split=args.split, limit=args.limit, data_dir=args.data_dir)
    if args.from_json:
        found = {r["checkpoint"]: r for r in json.loads(args.from_json.read_text())["results"]}
        missing = [c for c in args.checkpoints if c not in found]
        if missing:
            p.error(f"{args.from_json} has no figures for {', '.join(missing)}")
        results = [found[c] for c in args.checkpoints]
    elif args.jobs > 1:
        with ProcessPoolExecutor(min(args.jobs, len(args.checkpoints))) as pool:
            results = list(pool.map(one, args.checkpoints))
    else:
        results = [one(c) for c in args.checkpoints]
    if not args.from_json:
        report({"results": results}, args.out)
    print(table(results))
    if args.cards:
        write_cards(results, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
