"""Training steps as CUDA graphs: each (optimiser groups, batch shape) is captured once, forward,
backward, gradient clipping and the SGD update together, and replayed after that.

Why: an eager step issues about a thousand small kernels from Python. On an H100 that, not the
arithmetic, bounded the step (bench.speed: the paper and small sizes trained at the same rate).
A replay is one launch. What a graph cannot hold, and how the step avoids it:
  * Python numbers are baked in at capture. The KL weight, which a schedule may move every step,
    is a device scalar instead, refilled before a replay when it changes (Objective.step_kl_weight
    reads `live`); the lrs change only at a halving, which drops the graphs to be captured anew;
  * host reads. The batch is copied into the graph's own buffers from batches already on the
    device (batching.on_device); an objective whose step must read the device (VAE-MINE while its
    queue fills) says so in Objective.graphable, and that step runs eagerly;
  * memory that outlives a replay. Gradients come from torch.autograd.grad and die inside the
    graph; the loss and statistics are copied out; all graphs share one memory pool, so the pool
    is as large as the largest step, not the sum of them.
The update is the eager one on CUDA (StepContext.update), kernel for kernel: clip_grad_norm_'s
factor min(1, clip / (norm + 1e-6)) per optimiser, then plain SGD's foreach step.
Random draws (z, dropout, word dropout) use the CUDA generator, whose graph-safe state gives a
replay the numbers an eager step would draw from the same state; capturing a shape first runs
the step once to warm up (cuDNN and cuBLAS set themselves up on first use) and then puts the
weights, buffers and generator back, so capturing changes nothing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import partial

import torch
from torch import nn

from .batching import Batch
from .errors import SettingError
from .objectives.base import LossFn, Objective, clip_factor, plain_sgd
from .precision import autocast

log = logging.getLogger(__name__)

MODES = ("auto", "graphed", "eager")  # --cuda-graphs

MAX_FAILED = 20  # captures that may fail before graphs are given up altogether


def loss_key(loss_fn: LossFn) -> tuple:
    """What identifies a loss function across steps: a partial is made afresh for every step."""
    return (
        (loss_fn.func, loss_fn.args, tuple(sorted(loss_fn.keywords.items())))
        if isinstance(loss_fn, partial)
        else (loss_fn,)
    )


def graph_support(device: torch.device, optimizers: dict[str, torch.optim.Optimizer]) -> str | None:
    """Why training steps on `device` with these optimisers cannot run as CUDA graphs (None: they can)."""
    if device.type != "cuda":
        return f"CUDA graphs need a CUDA device (training on {device.type})"
    for name, opt in optimizers.items():
        if not plain_sgd(opt) or len(opt.param_groups) != 1:
            return f"the graphed update is plain SGD with one parameter group, and optimiser {name!r} is not"
    return None


def choose(mode: str, device: torch.device, optimizers: dict[str, torch.optim.Optimizer]) -> tuple[bool, str]:
    """(graph the training steps?, why) for --cuda-graphs MODE: "auto" graphs them where it can,
    "graphed" is an error where it cannot, "eager" never graphs. Where graphs are chosen, a step
    that cannot be captured (see StepGraphs.run) still runs eagerly, with a warning."""
    if mode not in MODES:
        raise SettingError(f"--cuda-graphs must be one of {', '.join(MODES)}, not {mode!r}")
    if mode == "eager":
        return False, "eager steps (--cuda-graphs eager)"
    why = graph_support(device, optimizers)
    if why is None:
        return True, "training steps run as CUDA graphs (--cuda-graphs eager turns them off)"
    if mode == "graphed":
        raise SettingError(f"--cuda-graphs graphed: {why}")
    return False, f"eager steps: {why}"


@dataclass
class _Step:
    """One captured step: its input buffers, its graph (None when not capturing) and its outputs."""

    batch: Batch  # static tokens and device lengths the graph reads
    graph: torch.cuda.CUDAGraph | None
    out: torch.Tensor | None  # [loss, *stats] as the last replay left them
    keys: list[str]


class StepGraphs:
    """The graphed steps of one run; StepContext.step hands them its steps (`run`).

    `capture=False` runs the same step (static buffers, device scalars, foreach update) eagerly
    without graphs: on the CPU it is what the tests compare with StepContext.update.
    """

    def __init__(
        self,
        model: nn.Module,
        objective: Objective,
        optimizers: dict[str, torch.optim.Optimizer],
        clip: float,
        capture: bool = True,
        precision: str = "fp32",
    ):
        self.model, self.objective, self.optimizers, self.clip, self.capture = (
            model,
            objective,
            optimizers,
            clip,
            capture,
        )
        self.precision = precision  # the forward pass's (core.library.precision), captured into the graph
        self.params = {name: [p for g in opt.param_groups for p in g["params"]] for name, opt in optimizers.items()}
        self.kl_weight = torch.zeros((), device=next(model.parameters()).device)
        self._kl_filled: float | None = None  # what kl_weight holds
        self.lrs: dict[str, float] = {}  # the lrs the graphs were captured with
        self.steps: dict[tuple, _Step] = {}
        self.eager: dict[tuple, str] = {}  # steps whose capture failed, with why: they run eagerly
        self.failed: str | None = None  # why graphs were given up (too many captures failed)
        self.captures = 0  # steps captured so far (each new shape, again after a halving)
        if capture:
            self.pool = torch.cuda.graph_pool_handle()
            self.side = torch.cuda.Stream(self.kl_weight.device)

    def run(
        self, loss_fn: LossFn, batch: Batch, groups: list[str], clip_with: tuple[str, ...] = ()
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]] | None:
        """The step on `batch` updating `groups`, clipped by one norm with the `clip_with` groups'
        gradients where it names any (StepContext.update): (loss, statistics), or None where it must run
        eagerly (a batch not moved by on_device, an objective that says so, graphs given up)."""
        if self.failed or batch.device_lengths is None or not self.objective.graphable(batch):
            return None
        self._refill()
        lrs = {name: opt.param_groups[0]["lr"] for name, opt in self.optimizers.items()}
        if lrs != self.lrs:  # a halving: the lrs are constants of the graphs
            self.steps.clear()
            self.lrs = lrs
            if self.capture:  # a pool whose graphs are all gone cannot take new ones
                self.pool = torch.cuda.graph_pool_handle()
        key = (
            loss_key(loss_fn),
            self.model.training,
            self.objective.training,
            tuple(groups),
            tuple(clip_with),
            tuple(batch.tokens.shape),
        )
        step = self.steps.get(key)
        if step is None:
            if key in self.eager:
                return None
            try:
                step = self.steps[key] = self._make(loss_fn, batch, groups, clip_with)
            except RuntimeError as e:  # an op that cannot be captured (a host read, say)
                why = self.eager[key] = f"{type(e).__name__}: {(str(e).splitlines() or [''])[0]}"
                log.warning(
                    "the training step on batches of shape %s (groups %s) could not be captured as a CUDA "
                    "graph (%s): it runs eagerly",
                    key[-1],
                    ", ".join(groups),
                    why,
                )
                if len(self.eager) >= MAX_FAILED:
                    self.failed = f"{len(self.eager)} captures failed, the last: {why}"
                    log.warning("%s; all steps run eagerly from now on", self.failed)
                return None
        step.batch.tokens.copy_(batch.tokens)
        step.batch.lengths.copy_(batch.device_lengths)
        if step.graph is None:
            loss, stats = self._body(loss_fn, step.batch, groups, clip_with)
            step.keys = step.keys or list(stats)
            step.out = self._outputs(loss, stats, step.keys)
        else:
            step.graph.replay()
        out = step.out.clone()  # the next replay rewrites step.out
        return out[0], dict(zip(step.keys, out[1:]))

    # -- inside the step ----------------------------------------------------------------------------

    def _refill(self) -> None:
        """The KL weight for this step, in its device scalar: a fill when it changed, no host read."""
        value = float(self.objective.kl_weight())
        if value != self._kl_filled:
            self.kl_weight.fill_(value)
            self._kl_filled = value

    def _body(
        self, loss_fn: LossFn, batch: Batch, groups: list[str], clip_with: tuple[str, ...] = ()
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        self.objective.live = {"kl_weight": self.kl_weight}
        try:
            with autocast(self.precision, batch.tokens.device):
                loss, stats = loss_fn(batch)
        finally:
            self.objective.live = None
        self._update(loss, groups, clip_with)
        return loss, stats

    def _update(self, loss: torch.Tensor, groups: list[str], clip_with: tuple[str, ...] = ()) -> None:
        """StepContext.update on CUDA, kernel for kernel: clip_grad_norm_'s (one norm over `groups`
        and `clip_with` where it names any), then SGD's foreach step on `groups`."""
        normed = list(dict.fromkeys([*groups, *clip_with]))
        params = [p for name in normed for p in self.params[name]]
        grads = torch.autograd.grad(loss, params, allow_unused=True)
        found, start = {}, 0
        for name in normed:
            found[name] = [(p, g) for p, g in zip(self.params[name], grads[start:]) if g is not None]
            start += len(self.params[name])
        joint = clip_factor([g for name in normed for _, g in found[name]], self.clip) if clip_with else None
        for name in groups:
            if not found[name]:
                continue
            ps, gs = [p for p, _ in found[name]], [g for _, g in found[name]]
            with torch.no_grad():
                torch._foreach_mul_(gs, clip_factor(gs, self.clip) if joint is None else joint)
                torch._foreach_add_(ps, gs, alpha=-self.lrs[name])

    @staticmethod
    def _outputs(loss: torch.Tensor, stats: dict[str, torch.Tensor], keys: list[str]) -> torch.Tensor:
        return torch.stack([loss.detach().float(), *(stats[k].float() for k in keys)])

    # -- capturing ------------------------------------------------------------------------------------

    def _make(self, loss_fn: LossFn, batch: Batch, groups: list[str], clip_with: tuple[str, ...] = ()) -> _Step:
        lengths = batch.device_lengths.clone()  # on the device: a loss must not read n_tokens (a host sync)
        static = Batch(batch.tokens.clone(), lengths, batch.index, lengths)
        self.captures += 1
        if not self.capture:
            return _Step(static, None, None, [])
        saved = self._snapshot()
        try:
            self.side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(self.side):  # the warm-up
                keys = list(self._body(loss_fn, static, groups, clip_with)[1])
            torch.cuda.current_stream().wait_stream(self.side)
            self._restore(*saved)
            out = torch.empty(1 + len(keys), device=static.tokens.device)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph, pool=self.pool):
                out.copy_(self._outputs(*self._body(loss_fn, static, groups, clip_with), keys))
        finally:
            self._restore(*saved)
        return _Step(static, graph, out, keys)

    def _snapshot(self) -> tuple[list[torch.Tensor], list[torch.Tensor], torch.Tensor]:
        state = list({id(t): t for m in (self.model, self.objective) for t in (*m.parameters(), *m.buffers())}.values())
        return state, [t.detach().clone() for t in state], torch.cuda.get_rng_state()

    @staticmethod
    def _restore(state: list[torch.Tensor], copies: list[torch.Tensor], rng: torch.Tensor) -> None:
        with torch.no_grad():
            torch._foreach_copy_(state, copies)
        torch.cuda.set_rng_state(rng)
