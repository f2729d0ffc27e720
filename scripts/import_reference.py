"""Bring a LaggingVAE trained by He et al.'s own code (jxhe/vae-lagging-encoder's text.py) into a
bundle of ours, so the same metrics, bench.quality and the explorer read it beside our runs.

    python scripts/import_reference.py REF.pt --like runs/long/lagging-he-s783435 --train TRAIN.txt \
        --out runs/ref/bundles/ref-s783435 [--data-dir ../shared/data] [--log ref.log]

--like is a run of ours on the same training sentences and sizes: its config and vocabulary are
used (the words are matched by name: their ids differ). Their model has no bias in the encoder's
output layer, the decoder's initial-state layer or its output layer: ours get zeros there, which
computes exactly what theirs does. The weights are loaded with torch.load(weights_only=True).
--log adds their per-epoch validation figures to the bundle as train_log.jsonl.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.library import checkpoint as ckpt  # noqa: E402
from core.library.batching import Dataset  # noqa: E402
from core.library.corpora import read_split  # noqa: E402
from core.library.evaluation import evaluate_split  # noqa: E402
from core.library.objectives import build  # noqa: E402
from core.library.vocab import SPECIALS, Vocab  # noqa: E402

NAMES = {  # ours <- theirs
    "encoder.embed.weight": "encoder.embed.weight",
    "encoder.to_gaussian.weight": "encoder.linear.weight",
    "decoder.embed.weight": "decoder.embed.weight",
    "decoder.init_state.weight": "decoder.trans_linear.weight",
    "decoder.project.weight": "decoder.pred_linear.weight",
    **{
        f"{part}.lstm.{w}_l0": f"{part}.lstm.{w}_l0"
        for part in ("encoder", "decoder")
        for w in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
    },
}
BY_WORD = {"encoder.embed.weight", "decoder.embed.weight", "decoder.project.weight"}  # rows indexed by word id


def their_vocab(train: Path) -> list[str]:
    """text.py's VocabEntry.from_corpus: <pad> <s> </s> <unk>, then words in order of first appearance."""
    words = list(SPECIALS)
    seen = set(words)
    for line in train.read_text().splitlines():
        for w in line.split():
            if w not in seen:
                seen.add(w)
                words.append(w)
    return words


def log_lines(path: Path) -> list[dict]:
    """Their per-epoch validation lines (KL weight, NLL, KL, batch MI, AU) as our log's keys."""
    lines, weight, val = [], None, None
    for ln in path.read_text().splitlines():
        if ln.startswith("kl weight"):
            weight = float(ln.split()[-1])
        elif ln.startswith("VAL"):
            val = dict(re.findall(r"(\w+): ([-\d.]+)", ln))
        elif ln.endswith("active units") and val:
            lines.append(
                {
                    "epoch": len(lines) + 1,
                    "val_nll": float(val["nll"]),
                    "val_kl": float(val["kl"]),
                    "val_mi_batch": float(val["mi"]),
                    "val_au": int(ln.split()[0]),
                    "kl_weight": weight,
                    "source": "He et al.'s text.py log",
                }
            )
            val = None
    return lines


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("weights", type=Path)
    p.add_argument("--like", type=Path, required=True)
    p.add_argument("--train", type=Path, required=True, help="the training file their run read")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--data-dir")
    p.add_argument("--log", type=Path)
    args = p.parse_args()
    cfg, size = ckpt.read_config(args.like)
    ours = Vocab.load(args.like / ckpt.VOCAB)
    theirs = their_vocab(args.train)
    if sorted(theirs) != sorted(ours.itos):
        sys.exit(f"error: the vocabularies differ ({len(theirs)} words there, {len(ours)} here)")
    order = torch.tensor([theirs.index(w) for w in ours.itos])  # our id -> their id
    state = torch.load(args.weights, map_location="cpu", weights_only=True)
    model, objective = build(cfg, size)
    with torch.no_grad():
        for name, p_ in model.named_parameters():
            if name in NAMES:
                value = state[NAMES[name]]
                p_.copy_(value[order] if name in BY_WORD else value)
            else:  # the biases their layers do not have
                p_.zero_()
    ckpt.save_bundle(args.out, cfg, ours, model, objective)
    metrics = {
        "model": cfg.objective.name,
        "corpus": cfg.corpus,
        "trained_by": "He et al.'s text.py (jxhe/vae-lagging-encoder)",
        "source_weights": args.weights.name,
    }
    for split in ("valid", "test"):
        data = Dataset(read_split(cfg.corpus, split, args.data_dir, None, cfg.train.max_len, cfg.tokenizer), ours)
        metrics[split] = evaluate_split(model.eval(), data, cfg.train.eval_batch_size, seed=cfg.train.seed)
    if args.log:
        lines = log_lines(args.log)
        metrics["epochs"] = len(lines)
        (args.out / ckpt.LOG).write_text("".join(json.dumps(x) + "\n" for x in lines))
    ckpt.write_json(args.out / ckpt.METRICS, metrics)
    print(json.dumps({k: metrics[k] for k in ("valid", "test")}, indent=1))


if __name__ == "__main__":
    main()
