"""The one training loop, for every objective (its command line: core.train).

SGD as in He et al. (2019)'s public code: lr 1.0, gradient norm clipped at 5 (per optimiser),
lr halved when validation NLL has not improved for 2 epochs, from epoch 16 on (the best weights
are reloaded then; see schedules.plateau_step), stop after 5 halvings or the maximum number of
epochs. The bundle's model.safetensors always holds the best weights on validation; resume/ holds
the last finished epoch, and resume/partial.safetensors a checkpoint inside the epoch in progress,
written every `checkpoint_minutes` (10 by default: an aggressive LaggingVAE epoch can take an hour
on a small CPU). Killing a run loses at most that much work, and a resumed run ends with the same
parameters as one never stopped. SIGTERM or a first Ctrl-C loses none: the run saves a checkpoint
after the step in progress and exits with status 3 (a second Ctrl-C stops at once).
"""

from __future__ import annotations

import fcntl
import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import torch
from tqdm.auto import tqdm

from . import catalogue, graphs, resume
from . import checkpoint as ckpt
from .batching import Batch, Dataset, on_device
from .config import MODEL_UNRECORDED, RunConfig
from .corpora import read_split
from .corpora import resolve as resolve_corpus
from .device import pick_device, set_tf32
from .errors import CheckpointError, CorpusError, DiskFull, SettingError, Stopped
from .evaluation import evaluate_best, evaluate_split
from .models import TextVAE, evaluating
from .objectives import Objective, StepContext, build
from .objectives.schedules import LoopState, PlateauRule, plateau_step
from .precision import PRECISIONS, autocast
from .signals import stop_on_signals
from .tokenize import UNRECORDED
from .vocab import Vocab

log = logging.getLogger(__name__)
DIAGNOSTIC_BATCHES = 4  # batches of the probe sentences that Objective.diagnostics measures gradients on


def fresh_model(cfg: RunConfig, vocab_size: int) -> tuple[TextVAE, Objective]:
    """The run's model and objective before training: the model's weights drawn as cfg.train says
    (seeded), the objective's own networks at PyTorch's default init under the same seed."""
    tc = cfg.train
    torch.manual_seed(tc.seed)
    model, objective = build(cfg, vocab_size)
    model.init_weights(tc.init_range, tc.emb_init_range, torch.Generator().manual_seed(tc.seed))
    return model, objective


def optimizers(model: TextVAE, objective: Objective, lr: float) -> dict[str, torch.optim.Optimizer]:
    """One optimiser per parameter group the objective names, at lr times the group's scale."""
    return {
        name: objective.optimizer(name, params, lr * objective.lr_scale(name))
        for name, params in objective.param_groups(model).items()
    }


class Trainer:
    """One run in a folder: `epochs()` trains epoch by epoch (the CLI and the classroom lab both
    drive it), `finish()` evaluates the best weights."""

    def __init__(
        self,
        cfg: RunConfig,
        out: Path,
        data_dir: str | None = None,
        device: str = "auto",
        progress: bool = True,
        checkpoint_minutes: float | None = None,
        cuda_graphs: str = "auto",
        tf32: bool = False,
        diagnostics: bool = True,
    ):
        self.cfg, self.out, self.progress, self.data_dir = cfg, Path(out), progress, data_dir
        self.measure = diagnostics  # the objective's diagnostics after each epoch (the lab's minute skips them)
        # a checkpoint inside an epoch after this many seconds of it (None: at epoch ends only)
        if checkpoint_minutes is not None and not checkpoint_minutes >= 0:  # the rule of --checkpoint-minutes (NaN too)
            raise SettingError(f"checkpoint_minutes must be 0 or more, got {checkpoint_minutes}")
        self.checkpoint_seconds = 60 * checkpoint_minutes if checkpoint_minutes else None
        self.partial: dict | None = None  # where a resumed run stands inside its epoch
        self.stop = threading.Event()  # set by a signal (signals.stop_on_signals): save and raise Stopped
        self.device = pick_device(device)
        self.tf32 = tf32 and self.device.type == "cuda"
        if self.device.type == "cuda":
            set_tf32(tf32)
        self.cfg = cfg = with_corpus_digest(cfg, self.out, data_dir)
        self.precision = cfg.train.precision
        if self.precision not in PRECISIONS:
            raise SettingError(f"precision must be one of {PRECISIONS} (resolve 'auto' first), not {self.precision!r}")
        tc = cfg.train
        train_sents = read_split(cfg.corpus, "train", data_dir, tc.max_train, tc.max_len, cfg.tokenizer)
        vocab_path = self.out / ckpt.VOCAB
        self.vocab = Vocab.load(vocab_path) if vocab_path.exists() else Vocab.build(train_sents, tc.max_vocab)
        self.train_data = Dataset(train_sents, self.vocab)
        valid_sents = read_split(cfg.corpus, "valid", data_dir, tc.max_valid, tc.max_len, cfg.tokenizer)
        self.valid_data = Dataset(valid_sents, self.vocab)
        self.probe = Dataset(valid_sents[: tc.probe_sentences], self.vocab) if tc.probe_sentences else None
        self.model, self.objective = fresh_model(cfg, len(self.vocab))
        self.model.to(self.device)
        self.objective.to(self.device)
        self.state = LoopState(lr=tc.lr)
        self.rule = PlateauRule(
            tc.decay_patience, tc.lr_decay, self.objective.decay_from_epoch(tc.decay_from_epoch), tc.max_halvings
        )
        self.optimizers = optimizers(self.model, self.objective, tc.lr)
        graphed, why = graphs.choose(cuda_graphs, self.device, self.optimizers)
        self.graphs = (
            graphs.StepGraphs(self.model, self.objective, self.optimizers, tc.clip, precision=self.precision)
            if graphed
            else None
        )
        if self.device.type == "cuda":
            log.info(why)
        torch.manual_seed(tc.seed)

    @property
    def finished(self) -> bool:
        """The lr schedule has run out, or the epoch budget is spent, or the next epoch (as long as
        the last) would end past the time budget: a run given N minutes is done within about N."""
        tc = self.cfg.train
        return (
            self.state.done
            or self.state.epoch >= tc.epochs
            or (tc.minutes is not None and self.state.seconds + self.state.last_epoch_seconds > 60 * tc.minutes)
        )

    # -- saving and resuming (the formats live in checkpoint.py) ----------------------------------

    def save_best(self) -> None:
        ckpt.save_bundle(self.out, self.cfg, self.vocab, self.model, self.objective)

    def save_resume(self) -> None:
        resume.save_epoch(self.out, self.model, self.objective, self.state, self.device)

    def save_partial(self, position: dict, sums: dict[str, torch.Tensor]) -> None:
        resume.save_inside_epoch(self.out, self.model, self.objective, self.state, self.device, position, sums)

    def load_resume(self) -> bool:
        """The last finished epoch's state, then the checkpoint inside the next epoch if there is one."""
        state = resume.load_epoch(self.out, self.model, self.objective, self.device)
        if state is not None:
            self.state = state
            self.set_lr(state.lr)
        inside = resume.load_inside_epoch(self.out, self.model, self.objective, self.device, self.state.epoch + 1)
        if inside is not None:
            self.state, self.partial = inside
            self.set_lr(self.state.lr)
        ckpt.truncate_log(self.out, self.state.epoch)  # lines of an epoch killed after its log line
        return state is not None or self.partial is not None

    def save_probe(self, epoch: int) -> None:
        """The probe set's posterior means after this epoch, for the explorer's training replay."""
        if self.probe is None or not self.model.latent:
            return
        with evaluating(self.model) as (device, _), autocast(self.precision, device):
            _, mu, _ = self.model.encode(self.probe.batch(torch.arange(len(self.probe))).to(device))
        ckpt.append_probe(self.out, epoch, mu)

    def set_lr(self, lr: float) -> None:
        for name, opt in self.optimizers.items():
            for g in opt.param_groups:
                g["lr"] = lr * self.objective.lr_scale(name)

    # -- the loop ---------------------------------------------------------------------------------

    def batch_generator(self, epoch: int, stream: int = 0) -> torch.Generator:
        """Batch order depends only on (seed, epoch), so a resumed run sees the same batches."""
        return torch.Generator().manual_seed(self.cfg.train.seed * 1_000_003 + epoch * 101 + stream)

    def extra_batches(self, epoch: int) -> Iterator[Batch]:
        """An endless stream of fresh shuffled batches, for objectives with inner loops."""
        gen, bs = self.batch_generator(epoch, stream=1), self.cfg.train.batch_size
        while True:
            yield from on_device(self.train_data.batches(bs, gen), self.device)

    def epochs(self) -> Iterator[dict]:
        """Train epoch after epoch until the schedule or the budget ends; yields each log line."""
        self.out.mkdir(parents=True, exist_ok=True)
        if self.state.epoch == 0 and not (self.out / ckpt.WEIGHTS).exists():
            self.save_best()  # the bundle is loadable from the start
        while not self.finished:
            epoch = self.state.epoch + 1
            start = time.perf_counter() - (self.partial["seconds"] if self.partial else 0.0)
            train, n_tok, train_seconds = self.train_epoch(epoch, start)
            valid = evaluate_split(
                self.model,
                self.valid_data,
                self.cfg.train.eval_batch_size,
                seed=self.cfg.train.seed,
                progress=self.progress,
                desc=f"epoch {epoch} validation",
                precision=self.precision,
            )
            yield self.end_epoch(epoch, train, valid, n_tok / train_seconds, start, self.diagnostics())
            if self.stop.is_set() and not self.finished:
                raise Stopped(f"{self.out}: stopped after epoch {epoch}, its state saved; continue with --resume")

    def run(self) -> dict:
        if not self.finished:  # a finished run given a larger budget: its metrics are stale until it ends again
            (self.out / ckpt.METRICS).unlink(missing_ok=True)
        for _ in self.epochs():
            pass
        return self.finish()

    def train_epoch(self, epoch: int, start: float) -> tuple[dict[str, float], int, float]:
        """One pass over the training batches, or the rest of one after a mid-epoch resume:
        (mean statistics per sentence, tokens, seconds since `start`). `start` is the perf_counter
        time the epoch began at; in a resumed run it lies before this process started."""
        tc = self.cfg.train
        self.model.train()
        self.objective.train()
        self.objective.start_epoch(epoch)
        resumed, self.partial = self.partial, None
        sums: dict[str, torch.Tensor] = {}
        first = n_sent = n_tok = drawn = 0
        if resumed is not None:
            self.objective.load_extra_state(resumed["objective"])
            first, sums, n_sent, n_tok, drawn = (
                resumed[k] for k in ("batch", "sums", "sentences", "tokens", "extra_batches")
            )
        extra = self.extra_batches(epoch)
        for _ in range(drawn):  # the inner-loop batches the stopped run had used
            next(extra)

        def next_batch() -> Batch:
            nonlocal drawn
            drawn += 1
            return next(extra)

        ctx = StepContext(self.optimizers, tc.clip, next_batch, self.graphs, self.precision)
        batches = on_device(list(self.train_data.batches(tc.batch_size, self.batch_generator(epoch))), self.device)
        postfix = Postfix(
            bar := tqdm(
                range(first, len(batches)),
                desc=f"epoch {epoch}",
                initial=first,
                total=len(batches),
                disable=not self.progress,
                leave=False,
                dynamic_ncols=True,
            )
        )
        saved_at = time.perf_counter()

        def position(i: int) -> dict:  # where the epoch stands after batch i, for a mid-epoch checkpoint
            return {
                "epoch": epoch,
                "batch": i + 1,
                "sentences": n_sent,
                "tokens": n_tok,
                "seconds": time.perf_counter() - start,
                "extra_batches": drawn,
            }

        for i in bar:
            batch = batches[i]
            self.objective.position = epoch - 1 + i / len(batches)
            stats = self.objective.train_step(self.model, batch, ctx)
            self.state.step += 1
            for k, v in stats.items():
                sums[k] = sums.get(k, 0) + v * len(batch)
            n_sent, n_tok = n_sent + len(batch), n_tok + batch.n_tokens
            if self.progress and (i % 20 == 0 or i == len(batches) - 1):
                postfix.show(
                    {k: sums[k] / n_sent for k in ("loss", "kl", "mi") if k in sums}, last=i == len(batches) - 1
                )
            if i + 1 < len(batches) and self.stop.is_set():
                self.save_partial(position(i), sums)
                bar.close()
                raise Stopped(
                    f"{self.out}: stopped at batch {i + 1} of {len(batches)} in epoch {epoch}, its state "
                    f"saved; continue with --resume"
                )
            if (
                self.checkpoint_seconds is not None
                and i + 1 < len(batches)
                and time.perf_counter() - saved_at >= self.checkpoint_seconds
            ):
                self.save_partial(position(i), sums)
                saved_at = time.perf_counter()
        bar.close()
        return {k: float(v) / n_sent for k, v in sums.items()}, n_tok, time.perf_counter() - start

    def diagnostics(self) -> dict[str, float]:
        """The objective's own figures (Objective.diagnostics) on the probe sentences."""
        if not self.measure or self.probe is None or not self.model.latent:
            return {}
        probe = self.probe.batch(torch.arange(len(self.probe))).to(self.device)
        gen = torch.Generator().manual_seed(self.cfg.train.seed)
        batches = [b.to(self.device) for b in self.probe.batches(self.cfg.train.batch_size, gen)][:DIAGNOSTIC_BATCHES]
        with autocast(self.precision, self.device):
            return self.objective.diagnostics(self.model, probe, batches)

    def end_epoch(
        self,
        epoch: int,
        train: dict,
        valid: dict,
        tokens_per_s: float,
        start: float,
        diagnostics: dict[str, float] | None = None,
    ) -> dict:
        """The lr-plateau rule, the best and resume states, and the epoch's log line."""
        self.objective.end_epoch(epoch, valid)
        self.state, action = plateau_step(self.state, epoch, valid["nll"], self.rule)
        if action == "improved":
            self.save_best()
        elif action == "halved":
            ckpt.load_weights(self.out / ckpt.WEIGHTS, self.model, self.objective)
            self.set_lr(self.state.lr)
            log.info(
                "epoch %d: no improvement for %d epochs; lr -> %g, best weights reloaded",
                epoch,
                self.rule.patience,
                self.state.lr,
            )
        self.state.last_epoch_seconds = time.perf_counter() - start
        self.state.seconds += self.state.last_epoch_seconds
        line = epoch_line(
            epoch, self.state, train, valid, self.objective.logged(), tokens_per_s, self.state.last_epoch_seconds
        )
        line["precision"] = self.precision
        line |= {f"diag_{k}": v for k, v in (diagnostics or {}).items()}
        ckpt.append_log(self.out, line)
        self.save_probe(epoch)
        self.save_resume()
        log.info(describe_line(line, self.objective.logged()))
        return line

    def finish(self) -> dict:
        """Evaluate the best weights on valid and test and write metrics.json; config.json records
        the budgets the run ended under (a resumed run may have changed them)."""
        ckpt.load_weights(self.out / ckpt.WEIGHTS, self.model, self.objective)
        ckpt.save_config(self.out, self.cfg, self.vocab)
        metrics = {
            "model": self.cfg.objective.name,
            "corpus": self.cfg.corpus,
            "best_epoch": self.state.best_epoch,
            "epochs": self.state.epoch,
            "train_seconds": round(self.state.seconds, 1),
            "device": str(self.device),
            "precision": self.precision,
        }
        if self.device.type == "cuda":
            metrics |= {
                "gpu": torch.cuda.get_device_name(self.device),
                "tf32": self.tf32,
                "cuda_graphs": self.graphs is not None,
            }
        metrics |= evaluate_best(
            self.model, self.cfg, self.vocab, self.valid_data, self.data_dir, self.progress, self.precision
        )
        ckpt.write_json(self.out / ckpt.METRICS, metrics)
        return metrics


class Postfix:
    """The progress bar's running means. On a GPU, reading them is a host sync that would stall the
    step queue: each update starts a copy to host memory and shows the one before, once it is there;
    the epoch's last update waits for its own."""

    def __init__(self, bar: tqdm):
        self.bar = bar
        self.pending: tuple[list[str], torch.Tensor, torch.cuda.Event] | None = None

    def show(self, means: dict[str, torch.Tensor | float], last: bool = False) -> None:
        if not means:
            return
        values = torch.stack([torch.as_tensor(v, dtype=torch.float32) for v in means.values()])
        if values.device.type != "cuda" or last:
            self.bar.set_postfix({k: f"{float(v):.2f}" for k, v in zip(means, values)})
            return
        if self.pending is not None and self.pending[2].query():
            keys, host, _ = self.pending
            self.bar.set_postfix({k: f"{float(v):.2f}" for k, v in zip(keys, host)})
        event = torch.cuda.Event()
        self.pending = (list(means), values.to("cpu", non_blocking=True), event)
        event.record()


def with_corpus_digest(cfg: RunConfig, out: Path, data_dir: str | None) -> RunConfig:
    """cfg with the sha256 of the corpus's training file recorded (a new run), or checked against
    the recorded one (a resumed run); runs that predate the record are left as they are."""
    digest = resolve_corpus(cfg.corpus, data_dir).sha256()
    if cfg.corpus_sha256 is None:
        return cfg if (out / ckpt.CONFIG).exists() else replace(cfg, corpus_sha256=digest)
    if cfg.corpus_sha256 != digest:
        raise CorpusError(
            f"the training file of corpus {cfg.corpus} has changed since {out} started: sha256 "
            f"{digest[:12]}... now, {cfg.corpus_sha256[:12]}... then; restore it or train into another --out"
        )
    return cfg


def epoch_line(
    epoch: int, state: LoopState, train: dict, valid: dict, logged: dict, tokens_per_s: float, seconds: float
) -> dict:
    """One line of train_log.jsonl: training means, `val_*` figures, the objective's schedule values."""
    return {
        "epoch": epoch,
        "step": state.step,
        **{k: round(v, 5) for k, v in train.items()},
        **{
            f"val_{k}": (round(v, 5) if isinstance(v, float) else v)
            for k, v in valid.items()
            if k not in ("sentences", "tokens")
        },
        **logged,
        "lr": state.lr,
        "tokens_per_s": round(tokens_per_s, 1),
        "seconds": round(seconds, 2),
    }


def describe_line(line: dict, schedule: dict) -> str:
    """The terminal's one-line summary of an epoch's log line and the objective's schedule values."""
    latent = "".join(
        f"  {m.short} {m.format(line[f'val_{m.key}'])}"
        for m in catalogue.metrics(catalogue.LOG)
        if f"val_{m.key}" in line
    )
    schedule = "".join(f"  {k} {v}" for k, v in schedule.items())
    return (
        f"epoch {line['epoch']}  loss {line['loss']:.2f}  val NLL {line['val_nll']:.2f}{latent}{schedule}  "
        f"lr {line['lr']:g}  {line['tokens_per_s']:.0f} tok/s"
    )


def train(
    cfg: RunConfig,
    out: str | Path,
    data_dir: str | None = None,
    device: str = "auto",
    resume: bool = False,
    progress: bool = True,
    checkpoint_minutes: float | None = None,
    cuda_graphs: str = "auto",
    tf32: bool = False,
) -> Path:
    """Train (or continue) a run in `out`; returns the bundle folder. On --resume the run's own
    config.json decides; `cfg` must agree with it (only the epoch and time budgets may change)."""
    out = Path(out)
    if resume and (out / ckpt.CONFIG).exists():
        saved, _ = ckpt.read_config(out)
        budget = {"epochs": cfg.train.epochs, "minutes": cfg.train.minutes}
        cfg, wanted = (
            replace(saved, train=replace(saved.train, **budget)),
            ckpt.as_version(cfg, ckpt.bundle_version(out)),
        )
        # the digest is the run's own record; a run from before tokenizers were recorded keeps its own
        wanted = replace(
            wanted,
            corpus_sha256=saved.corpus_sha256,
            tokenizer=saved.tokenizer if saved.tokenizer == UNRECORDED else wanted.tokenizer,
        )
        # likewise model fields a run from before they existed did not record (and holds at their old value)
        unrecorded = {k: v for k, v in MODEL_UNRECORDED.items() if getattr(saved.model, k) == v}
        wanted = replace(wanted, model=replace(wanted.model, **unrecorded))
        if cfg != wanted:
            raise CheckpointError(
                f"{out / ckpt.CONFIG} was written for a different run ({config_diff(cfg, wanted)}); resume "
                f"with the same settings (only --epochs and --minutes may change) or train into another --out"
            )
    elif (out / ckpt.CONFIG).exists():
        raise CheckpointError(f"{out} already holds a run; pass --resume to continue it, or choose another --out")
    out.mkdir(parents=True, exist_ok=True)
    with (
        open(out / ".lock", "w") as lock,
        stop_on_signals("stopping after the step in progress (state saved for --resume)") as stop,
    ):
        try:  # one trainer a folder: a second would overwrite the first's state
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise CheckpointError(f"{out} is being trained by another process; wait for it or stop it first") from None
        trainer = Trainer(cfg, out, data_dir, device, progress, checkpoint_minutes, cuda_graphs, tf32)
        trainer.stop = stop
        if resume and trainer.load_resume():
            inside = (
                f", at batch {trainer.partial['batch'] + 1} of epoch {trainer.state.epoch + 1}"
                if trainer.partial
                else ""
            )
            log.info("resuming %s after epoch %d%s", out, trainer.state.epoch, inside)
        elif resume:
            log.info("nothing to resume in %s: starting a new run", out)
        if stop.is_set():
            raise Stopped(f"{out}: stopped before training began; continue with --resume")
        try:
            trainer.run()
        except DiskFull as e:
            raise DiskFull(
                f"{e}. The run's state as of its last save is kept: free space and continue with --resume"
            ) from None
    return out


def config_diff(saved: RunConfig, given: RunConfig) -> str:
    """'field: saved -> given' for each setting that differs."""

    def flat(d: dict, prefix: str = "") -> dict:
        out = {}
        for k, v in d.items():
            out.update(flat(v, f"{prefix}{k}.") if isinstance(v, dict) else {f"{prefix}{k}": v})
        return out

    a, b = flat(saved.to_dict()), flat(given.to_dict())
    return ", ".join(f"{k}: {a.get(k)} -> {b.get(k)}" for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k))
