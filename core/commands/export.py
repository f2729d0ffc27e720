"""Ship a trained run: a bundle without resume state, optionally in fp16, with a model card.

    python -m core.export runs/flickr8k/vae-mine checkpoints/flickr8k-vae-mine --dtype float16 \
        --command "python -m core.train ..."

The exported weights are re-evaluated on the test split as they will be loaded (fp16 stored,
computed in fp32), and the card (README.md) gives the command, data, config, those figures, the
training-time figures and the training time.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
from pathlib import Path

import torch

from ..library import catalogue
from ..library.batching import Dataset
from ..library.checkpoint import (
    CONFIG,
    LOG,
    METRICS,
    VOCAB,
    WEIGHTS,
    copy_probe,
    load_bundle,
    load_tensors,
    read_config,
    read_log,
    save_tensors,
    write_json,
)
from ..library.corpora import read_split
from ..library.errors import VaeMineError
from ..library.evaluation import evaluate_split
from ..library.objectives import departures, objective_class
from ..library.objectives.schedules import how_training_ended
from ..serving import atlas
from ..serving.api import TextVAEModel, departure_text
from .cli import run_cli

log = logging.getLogger(__name__)
DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
CARD = "README.md"


def export(
    src: Path,
    dst: Path,
    dtype: str = "float16",
    command: str = "",
    data_dir: str | None = None,
    force: bool = False,
    note: str = "",
    with_atlas: bool = True,
    probe_epochs: int = 12,
) -> dict:
    if not (src / METRICS).is_file():
        raise VaeMineError(f"{src} has no {METRICS}: export a run that finished training")
    if dst.exists() and not force:
        raise VaeMineError(f"{dst} exists; pass --force to replace it")
    tmp = dst.with_name(f".{dst.name}.export")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for name in (CONFIG, VOCAB, LOG):
        if (src / name).is_file():
            shutil.copy2(src / name, tmp / name)
    copy_probe(src, tmp, probe_epochs)
    shareable = objective_class(read_config(src)[0].objective.name).shareable
    save_tensors(tmp / WEIGHTS, shareable(load_tensors(src / WEIGHTS)), DTYPES[dtype])
    metrics = json.loads((src / METRICS).read_text())
    cfg, vocab, model, _ = load_bundle(tmp)
    try:
        test = Dataset(read_split(cfg.corpus, "test", data_dir, None, cfg.train.max_len, cfg.tokenizer), vocab)
        shipped = evaluate_split(
            model, test, cfg.train.eval_batch_size, seed=cfg.train.seed, progress=True, desc=f"{dtype} weights on test"
        )
        metrics["shipped_test"] = {"dtype": dtype, **shipped}
    except VaeMineError as e:
        log.warning("exported weights not re-evaluated: %s", e)
    if with_atlas:
        try:
            atlas.save(tmp, atlas.build(TextVAEModel(tmp), data_dir))
        except VaeMineError as e:
            log.warning("no atlas: %s", e)
    write_json(tmp / METRICS, metrics)
    log_lines = read_log(tmp / LOG) if (tmp / LOG).is_file() else []
    card = model_card(
        cfg,
        metrics,
        model,
        command,
        (tmp / WEIGHTS).stat().st_size,
        atlas.size(tmp),
        log_lines[-1] if log_lines else None,
    )
    (tmp / CARD).write_text(card + (f"\n## Notes\n\n{note.strip()}\n" if note.strip() else ""))
    shutil.rmtree(dst, ignore_errors=True)
    tmp.rename(dst)
    return metrics


def _row(name: str, m: dict) -> str:
    cells = [metric.format(m.get(metric.key)) for metric in catalogue.metrics(catalogue.CARD)]
    return f"| {name} | " + " | ".join(cells) + " |"


def model_card(
    cfg, metrics: dict, model, command: str, weights_bytes: int, atlas_bytes: int = 0, last_log_line: dict | None = None
) -> str:
    lines = [
        f"# {objective_class(cfg.objective.name).display_name} on {cfg.corpus}",
        "",
        f"A `{cfg.objective.name}` text VAE (LSTM encoder and decoder) trained with this project's `core.train`; "
        f'load it with `core.load("<this folder>")` or pick it in the explorer (`python app.py`).',
        "",
        "## Training",
        "",
        *training_facts(cfg, metrics, model, command, weights_bytes, atlas_bytes, last_log_line),
        "",
        "## Evaluation (`core.evaluate` figures; NLL and KL in nats per sentence, one posterior sample)",
        "",
        "| weights / split | " + " | ".join(m.short for m in catalogue.metrics(catalogue.CARD)) + " |",
        "|---|" + "---|" * len(catalogue.metrics(catalogue.CARD)),
    ]
    for split in ("valid", "test"):
        if split in metrics:
            lines.append(_row(f"trained (fp32), {split}", metrics[split]))
    if "shipped_test" in metrics:
        lines.append(_row(f"as shipped ({metrics['shipped_test']['dtype']}), test", metrics["shipped_test"]))
    lines += [
        "",
        "`train_log.jsonl` holds one line per epoch (loss, KL, MI, AU, lr, ...); the explorer's "
        "Posterior collapse tab plots it.",
        "",
    ]
    return "\n".join(lines)


def training_facts(
    cfg, metrics: dict, model, command: str, weights_bytes: int, atlas_bytes: int = 0, last_log_line: dict | None = None
) -> list[str]:
    """The card's Training section: command, data, model, objective settings, optimiser, time, size."""
    mc, tc, oc = cfg.model, cfg.train, cfg.objective
    cls = objective_class(oc.name)
    params = sum(p.numel() for p in model.parameters())
    settings = ", ".join(f"{k}={v}" for k, v in cls.describe_settings(oc.settings).items()) or "none"
    return [
        f"- Command: `{command}`" if command else "- Command: not recorded",
        f"- Data: the `{cfg.corpus}` training split"
        + (f" (first {tc.max_train} sentences)" if tc.max_train else "")
        + ", best weights chosen on its valid split. The corpus itself is not included.",
        f"- Model: `{cfg.config_name}` config: embeddings {mc.emb_dim}, LSTM {mc.hidden_dim}, z {mc.z_dim}; "
        f"{params:,} parameters in the encoder and decoder.",
        f"- Objective: {cls.display_name} ({cls.source}); settings: {settings}.",
        *(
            [
                "- Beyond the papers (named settings, docs/mine-variants.md, docs/lagging-reference.md): "
                f"{departure_text(departures(cfg))}."
            ]
            if departures(cfg)
            else []
        ),
        f"- Optimiser: SGD lr {tc.lr}, clip {tc.clip}, batch {tc.batch_size}, seed {tc.seed}; lr halved after "
        f"{tc.decay_patience} epochs without improvement, from epoch {tc.decay_from_epoch}; budget {tc.epochs} epochs"
        + (f" or {tc.minutes:g} minutes of training (no epoch starts after that)" if tc.minutes else "")
        + ".",
        f"- Trained {metrics.get('epochs')} epochs (best: epoch {metrics.get('best_epoch')}; "
        f"{how_training_ended(tc.lr, tc.lr_decay, tc.max_halvings, tc.epochs, tc.minutes, last_log_line)}) in "
        f"{metrics.get('train_seconds', 0) / 60:.0f} min on {metrics.get('device', '?')}, in "
        + (
            "bfloat16 mixed precision (bf16 products, float32 weights and sums; core.library.precision)."
            if tc.precision == "bf16"
            else "float32."
        ),
        f"- Weights: `{WEIGHTS}`, {weights_bytes / 2**20:.1f} MiB"
        + (f", stored as {metrics['shipped_test']['dtype']}" if "shipped_test" in metrics else "")
        + ".",
    ] + (
        [
            f"- Atlas: `{atlas.ATLAS}`, {atlas_bytes / 2**20:.1f} MiB: float16 posterior means of the whole training "
            f"split and of the first {atlas.MAP_N:,} {atlas.MAP_SPLIT} sentences, each with its UMAP layout, so the "
            "explorer's Neighbours, default Latent map (every training sentence) and compare view answer at once "
            "(numbers only; the sentences come from your corpus)."
        ]
        if atlas_bytes
        else []
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m core.export", description=__doc__.splitlines()[0])
    p.add_argument("src", type=Path, help="finished run folder")
    p.add_argument("dst", type=Path, help="bundle folder to write")
    p.add_argument("--dtype", default="float16", choices=list(DTYPES), help="storage type of the weights")
    p.add_argument("--command", default="", help="the training command, for the model card")
    p.add_argument("--data-dir", help="corpus folder (default: $VAE_MINE_DATA, else ./data)")
    p.add_argument("--note", default="", help="a paragraph for the card's Notes section")
    p.add_argument("--force", action="store_true", help="replace dst if it exists")
    p.add_argument("--no-atlas", action="store_true", help="ship no atlas (posterior means and map layout)")
    p.add_argument(
        "--probe-epochs",
        type=int,
        default=12,
        help="epochs of probe-set means kept for the training "
        "replay, evenly spaced, first and last included (default 12)",
    )

    def body(args):
        metrics = export(
            args.src,
            args.dst,
            args.dtype,
            args.command,
            args.data_dir,
            args.force,
            args.note,
            not args.no_atlas,
            max(1, args.probe_epochs),
        )
        shipped = metrics.get("shipped_test", {})
        print(
            f"wrote {args.dst} ({sum(f.stat().st_size for f in args.dst.iterdir()) / 2**20:.1f} MiB); "
            f"test NLL {shipped.get('nll', float('nan')):.2f} KL {shipped.get('kl', float('nan')):.2f} "
            f"MI {shipped.get('mi', float('nan')):.2f} AU {shipped.get('au', '-')}"
        )

    return run_cli(p, body, argv)


if __name__ == "__main__":
    sys.exit(main())
