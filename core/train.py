"""The one training loop, for every objective.

    python -m core.train --corpus ptb --model vae-mine --out runs/ptb-mine [--config small] [--resume]

SGD as in He et al. (2019)'s public code: lr 1.0, gradient norm clipped at 5 (per optimiser),
lr halved when validation NLL has not improved for 2 epochs (the best weights are reloaded then),
stop after 5 halvings or the maximum number of epochs. The bundle's model.safetensors always
holds the best weights on validation; resume/ holds the last finished epoch. Killing a run loses
at most the epoch in progress, and a resumed run ends with the same parameters as one never stopped.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Iterator

import torch
from tqdm.auto import tqdm

from .batching import Batch, Dataset
from .checkpoint import (
    CONFIG,
    LOG,
    METRICS,
    WEIGHTS,
    atomic_write,
    build,
    load_tensors,
    load_weights,
    read_config,
    save_bundle,
    save_tensors,
    weights_of,
    write_json,
)
from .config import ObjectiveConfig, RunConfig, TrainConfig, model_config
from .corpora import read_split
from .device import pick_device
from .errors import CheckpointError, VaeMineError
from .evaluate import evaluate_split
from .objectives import OBJECTIVES, StepContext
from .vocab import Vocab

log = logging.getLogger(__name__)
RESUME_DIR, RESUME_WEIGHTS, RESUME_STATE = "resume", "last.safetensors", "trainer.json"


@dataclass
class LoopState:
    """Everything about the loop's position that --resume needs, besides weights and RNG."""

    epoch: int = 0  # finished epochs
    step: int = 0
    lr: float = 1.0
    best_nll: float | None = None
    best_epoch: int = 0
    bad_epochs: int = 0
    halvings: int = 0
    seconds: float = 0.0  # training time so far, validation included
    done: bool = False  # the lr schedule has run out of halvings


class Trainer:
    def __init__(self, cfg: RunConfig, out: Path, data_dir: str | None = None, device: str = "auto", progress: bool = True):
        self.cfg, self.out, self.progress, self.data_dir = cfg, Path(out), progress, data_dir
        self.device = pick_device(device)
        tc = cfg.train
        train_sents = read_split(cfg.corpus, "train", data_dir, tc.max_train, tc.max_len)
        valid_sents = read_split(cfg.corpus, "valid", data_dir, tc.max_valid, tc.max_len)
        vocab_path = self.out / "vocab.txt"
        self.vocab = Vocab.load(vocab_path) if vocab_path.exists() else Vocab.build(train_sents, tc.max_vocab)
        self.train_data = Dataset(train_sents, self.vocab)
        self.valid_data = Dataset(valid_sents, self.vocab)
        torch.manual_seed(tc.seed)  # the objective's own networks keep PyTorch's default init, seeded
        self.model, self.objective = build(cfg, len(self.vocab))
        self.model.init_weights(tc.init_range, tc.emb_init_range, torch.Generator().manual_seed(tc.seed))
        self.model.to(self.device)
        self.objective.to(self.device)
        self.state = LoopState(lr=tc.lr)
        self.optimizers = {
            name: torch.optim.SGD(params, lr=tc.lr * self.objective.lr_scale(name))
            for name, params in self.objective.param_groups(self.model).items()
        }
        torch.manual_seed(tc.seed)

    # -- saving and resuming ----------------------------------------------------------------------

    def save_best(self) -> None:
        save_bundle(self.out, self.cfg, self.vocab, self.model, self.objective)

    def save_resume(self) -> None:
        tensors = weights_of(self.model, self.objective)
        tensors["rng.cpu"] = torch.random.get_rng_state()
        if self.device.type == "cuda":
            tensors["rng.cuda"] = torch.cuda.get_rng_state(self.device)
        folder = self.out / RESUME_DIR
        save_tensors(folder / RESUME_WEIGHTS, tensors)
        write_json(folder / RESUME_STATE, {"loop": asdict(self.state), "objective": self.objective.extra_state()})

    def load_resume(self) -> bool:
        folder = self.out / RESUME_DIR
        if not (folder / RESUME_STATE).exists():
            return False
        tensors = load_tensors(folder / RESUME_WEIGHTS)
        rng = {k: tensors.pop(k) for k in [k for k in tensors if k.startswith("rng.")]}
        load_weights(folder / RESUME_WEIGHTS, self.model, self.objective, tensors)
        try:
            saved = json.loads((folder / RESUME_STATE).read_text())
            self.state = LoopState(**saved["loop"])
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise CheckpointError(f"corrupt resume state {folder / RESUME_STATE}: {e}") from None
        self.objective.load_extra_state(saved.get("objective", {}))
        torch.random.set_rng_state(rng["rng.cpu"])
        if self.device.type == "cuda" and "rng.cuda" in rng:
            torch.cuda.set_rng_state(rng["rng.cuda"], self.device)
        self.set_lr(self.state.lr)
        # A run killed after writing its log line but before its resume state repeats that epoch.
        log_path = self.out / LOG
        if log_path.exists():
            lines = [ln for ln in log_path.read_text().splitlines() if ln.strip()]
            kept = [ln for ln in lines if json.loads(ln)["epoch"] <= self.state.epoch]
            atomic_write(log_path, lambda tmp: Path(tmp).write_text("".join(ln + "\n" for ln in kept)))
        return True

    def set_lr(self, lr: float) -> None:
        for name, opt in self.optimizers.items():
            for g in opt.param_groups:
                g["lr"] = lr * self.objective.lr_scale(name)

    # -- the loop ---------------------------------------------------------------------------------

    def epoch_generator(self, epoch: int, stream: int = 0) -> torch.Generator:
        """Batch order depends only on (seed, epoch), so a resumed run sees the same batches."""
        return torch.Generator().manual_seed(self.cfg.train.seed * 1_000_003 + epoch * 101 + stream)

    def extra_batches(self, epoch: int) -> Iterator[Batch]:
        """An endless stream of fresh shuffled batches, for objectives with inner loops."""
        gen, bs = self.epoch_generator(epoch, stream=1), self.cfg.train.batch_size
        while True:
            yield from self.train_data.batches(bs, gen)

    def run(self) -> LoopState:
        tc = self.cfg.train
        self.out.mkdir(parents=True, exist_ok=True)
        if self.state.epoch == 0 and not (self.out / WEIGHTS).exists():
            self.save_best()  # the bundle is loadable from the start
        while not self.state.done and self.state.epoch < tc.epochs:
            self.train_epoch(self.state.epoch + 1)
        self.finish()
        return self.state

    def train_epoch(self, epoch: int) -> dict:
        tc, st = self.cfg.train, self.state
        start = time.perf_counter()
        self.model.train()
        self.objective.train()
        self.objective.start_epoch(epoch)
        extra = self.extra_batches(epoch)
        ctx = StepContext(self.optimizers, tc.clip, lambda: next(extra).to(self.device), epoch, st.step)
        batches = list(self.train_data.batches(tc.batch_size, self.epoch_generator(epoch)))
        sums: dict[str, torch.Tensor] = {}
        n_sent = n_tok = 0
        bar = tqdm(batches, desc=f"epoch {epoch}", disable=not self.progress, leave=False, dynamic_ncols=True)
        for i, batch in enumerate(bar):
            ctx.step = st.step
            self.objective.position = epoch - 1 + i / len(batches)
            stats = self.objective.train_step(self.model, batch.to(self.device), ctx)
            st.step += 1
            b = len(batch)
            for k, v in stats.items():
                sums[k] = sums.get(k, 0) + v * b
            n_sent += b
            n_tok += batch.n_tokens
            if self.progress and (i % 20 == 0 or i == len(batches) - 1):
                bar.set_postfix({k: f"{float(sums[k]) / n_sent:.2f}" for k in ("loss", "kl", "mi") if k in sums})
        bar.close()
        train_seconds = time.perf_counter() - start
        train = {k: float(v) / n_sent for k, v in sums.items()}
        valid = evaluate_split(self.model, self.valid_data, tc.eval_batch_size, seed=tc.seed, progress=self.progress,
                               desc=f"epoch {epoch} validation")
        self.objective.end_epoch(epoch, valid)

        improved = st.best_nll is None or valid["nll"] < st.best_nll
        if improved:
            st.best_nll, st.best_epoch, st.bad_epochs = valid["nll"], epoch, 0
            self.save_best()
        else:
            st.bad_epochs += 1
            if st.bad_epochs >= tc.decay_patience:
                st.halvings += 1
                st.bad_epochs = 0
                st.lr *= tc.lr_decay
                load_weights(self.out / WEIGHTS, self.model, self.objective)
                self.set_lr(st.lr)
                log.info("epoch %d: no improvement for %d epochs; lr -> %g, best weights reloaded", epoch, tc.decay_patience, st.lr)
                st.done = st.halvings >= tc.max_halvings
        st.epoch = epoch
        st.seconds += time.perf_counter() - start
        line = {
            "epoch": epoch,
            "step": st.step,
            **{k: round(v, 5) for k, v in train.items()},
            **{f"val_{k}": (round(v, 5) if isinstance(v, float) else v) for k, v in valid.items() if k not in ("au_variances", "sentences", "tokens")},
            **self.objective.logged(),
            "lr": st.lr,
            "tokens_per_s": round(n_tok / train_seconds, 1),
            "seconds": round(time.perf_counter() - start, 2),
        }
        with open(self.out / LOG, "a") as f:
            f.write(json.dumps(line) + "\n")
        self.save_resume()
        latent = f"  KL {valid['kl']:.2f}  MI {valid['mi']:.2f}  AU {valid['au']}" if "kl" in valid else ""
        schedule = "".join(f"  {k} {v}" for k, v in self.objective.logged().items())
        log.info("epoch %d  loss %.2f  val NLL %.2f%s%s  lr %g  %.0f tok/s",
                 epoch, train["loss"], valid["nll"], latent, schedule, st.lr, line["tokens_per_s"])
        return line

    def finish(self) -> dict:
        """Evaluate the best weights on valid and test and write metrics.json."""
        load_weights(self.out / WEIGHTS, self.model, self.objective)
        metrics = {"model": self.cfg.objective.name, "corpus": self.cfg.corpus, "best_epoch": self.state.best_epoch,
                   "epochs": self.state.epoch, "train_seconds": round(self.state.seconds, 1), "device": str(self.device)}
        for split, data in (("valid", self.valid_data), ("test", None)):
            if data is None:
                try:
                    data = Dataset(read_split(self.cfg.corpus, split, self.data_dir, None, self.cfg.train.max_len), self.vocab)
                except VaeMineError as e:
                    log.warning("no %s metrics: %s", split, e)
                    continue
            m = evaluate_split(self.model, data, self.cfg.train.eval_batch_size, seed=self.cfg.train.seed,
                               progress=self.progress, desc=f"best weights on {split}")
            m.pop("au_variances", None)
            metrics[split] = m
        write_json(self.out / METRICS, metrics)
        return metrics


def train(cfg: RunConfig, out: str | Path, data_dir: str | None = None, device: str = "auto", resume: bool = False,
          progress: bool = True) -> Path:
    """Train (or continue) a run in `out`; returns the bundle folder."""
    out = Path(out)
    if resume and (out / CONFIG).exists():
        saved, _ = read_config(out)
        if replace(saved, train=replace(saved.train, epochs=cfg.train.epochs)) != cfg:
            raise CheckpointError(
                f"{out / CONFIG} was written for a different run; resume with the same settings "
                f"(only --epochs may change) or train into another --out"
            )
    elif (out / CONFIG).exists():
        raise CheckpointError(f"{out} already holds a run; pass --resume to continue it, or choose another --out")
    trainer = Trainer(cfg, out, data_dir, device, progress)
    if resume and trainer.load_resume():
        log.info("resuming %s after epoch %d", out, trainer.state.epoch)
    elif resume:
        log.info("nothing to resume in %s: starting a new run", out)
    trainer.run()
    return out


def objective_config(name: str, alpha: float, settings: list[str]) -> ObjectiveConfig:
    """ObjectiveConfig from --model, --alpha and FIELD=VALUE strings, each cast to its field's type."""
    types = {f.name: f.type for f in fields(ObjectiveConfig)}
    values: dict = {"name": name, "alpha": alpha}
    for item in settings:
        key, sep, raw = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or key not in types or key == "name":
            known = ", ".join(k for k in types if k != "name")
            raise ValueError(f"--set {item!r}: expected FIELD=VALUE with FIELD one of {known}")
        kind = types[key]
        try:
            if kind == "bool":
                if raw.lower() not in ("true", "false", "1", "0"):
                    raise ValueError(raw)
                values[key] = raw.lower() in ("true", "1")
            else:
                values[key] = {"float": float, "int": int}[kind](raw)
        except ValueError:
            raise ValueError(f"--set {item!r}: {key} must be a {kind}") from None
    return ObjectiveConfig(**values)


def add_run_arguments(p: argparse.ArgumentParser) -> None:
    """The settings of a run shared by core.train and core.sweep."""
    p.add_argument("--corpus", default="ptb", help="ptb, flickr8k, yahoo or snli (needs a train split)")
    p.add_argument("--config", default="paper", help="model preset (paper, small, tiny) or a JSON file of ModelConfig fields")
    p.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                   help="any other objective setting, e.g. --set anneal_epochs=5 --set mmd_weight=20 (see ObjectiveConfig)")
    p.add_argument("--epochs", type=int, default=TrainConfig.epochs)
    p.add_argument("--batch-size", type=int, default=TrainConfig.batch_size)
    p.add_argument("--max-train", type=int, help="use the first N training sentences")
    p.add_argument("--seed", type=int, default=TrainConfig.seed)
    p.add_argument("--data-dir", help="corpus folder (default: $VAE_MINE_DATA, else ./data)")
    p.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def run_config(args: argparse.Namespace, model: str, alpha: float) -> RunConfig:
    name, mc = model_config(args.config)
    return RunConfig(
        corpus=args.corpus,
        config_name=name,
        model=mc,
        objective=objective_config(model, alpha, args.set),
        train=TrainConfig(epochs=args.epochs, batch_size=args.batch_size, max_train=args.max_train, seed=args.seed),
    )


def parse_args(argv: list[str] | None = None) -> tuple[argparse.Namespace, RunConfig]:
    p = argparse.ArgumentParser(prog="python -m core.train", description="Train a text VAE with one of the objectives.")
    p.add_argument("--model", default="vae-mine", choices=list(OBJECTIVES), help="objective / system")
    p.add_argument("--out", required=True, type=Path, help="folder for the checkpoint bundle")
    p.add_argument("--alpha", type=float, default=ObjectiveConfig.alpha, help="VAE-MINE weight of the MI bound")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last finished epoch")
    add_run_arguments(p)
    args = p.parse_args(argv)
    return args, run_config(args, args.model, args.alpha)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        args, cfg = parse_args(argv)
        train(cfg, args.out, args.data_dir, args.device, args.resume, progress=not args.no_progress)
    except (VaeMineError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(json.dumps(json.loads((args.out / METRICS).read_text()), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
