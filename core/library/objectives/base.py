"""The one interface every training objective implements, and the registry of objectives.

The training loop knows nothing about particular objectives: it asks the objective for its
parameter groups (one SGD optimiser each), calls `train_step` once per batch, and tells it when
epochs start and end. An objective owns its extra parameters and state (an energy network, a
schedule position, a tangent scope) as an `nn.Module`, so they are saved with the checkpoint.

An objective is one file: a subclass with a registry `name`, a `display_name`, its `source`, and
its `Settings` dataclass whose defaults are its source's published values. Defining the class
registers it: training, export, the Table 2 tools and the explorer find it through `registry()`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, fields
from functools import partial
from typing import Any, ClassVar

import torch
from torch import nn

from ..batching import Batch
from ..config import ObjectiveConfig, build_dataclass, parse_value
from ..errors import CheckpointError, SettingError
from ..metrics import batch_mi
from ..models import TextVAE
from ..precision import autocast

_REGISTRY: dict[str, type[Objective]] = {}


@dataclass(frozen=True)
class NoSettings:
    """An objective without settings."""


LossFn = Callable[[Batch], tuple[torch.Tensor, dict[str, torch.Tensor]]]  # a batch -> (loss, statistics)


@dataclass
class StepContext:
    """What a training step may use besides its batch."""

    optimizers: dict[str, torch.optim.Optimizer]
    clip: float
    next_batch: Callable[[], Batch] | None  # a fresh training batch, for objectives with inner loops
    graphs: Any = None  # core.library.graphs.StepGraphs where steps run as CUDA graphs
    precision: str = "fp32"  # what each loss's forward pass computes in (core.library.precision)

    def step(
        self, loss_fn: LossFn, batch: Batch, groups: Iterable[str] | None = None, clip_with: Iterable[str] | None = None
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """One training step: `loss_fn(batch)`, then `update` on the named groups (default: all).
        Returns the loss and statistics, detached. With `graphs` it replays a CUDA graph of the
        whole step where it can (see core/library/graphs.py), else it runs here."""
        if self.graphs is not None:
            done = self.graphs.run(
                loss_fn, batch, list(self.optimizers) if groups is None else list(groups), tuple(clip_with or ())
            )
            if done is not None:
                return done
        with autocast(self.precision, batch.tokens.device):
            loss, stats = loss_fn(batch)
        self.update(loss, groups, clip_with)
        return loss.detach(), stats

    def update(
        self, loss: torch.Tensor, groups: Iterable[str] | None = None, clip_with: Iterable[str] | None = None
    ) -> None:
        """Backpropagate `loss` and take one clipped SGD step on the named groups (default: all).

        With groups named, only their gradients are computed: autograd skips e.g. the decoder's
        weight gradients in LaggingVAE's encoder-only steps, which would be thrown away. Each
        group's gradient is clipped by its own norm, unless `clip_with` names groups whose gradients
        make one norm with theirs (He et al.'s clip over the whole VAE): those are computed too,
        but only `groups` step.
        """
        names = list(self.optimizers) if groups is None else list(groups)
        normed = names if clip_with is None else list(dict.fromkeys([*names, *clip_with]))
        params = {name: [p for g in self.optimizers[name].param_groups for p in g["params"]] for name in normed}
        for opt in self.optimizers.values():
            opt.zero_grad(set_to_none=True)
        if groups is None and clip_with is None:
            loss.backward()
        else:
            loss.backward(inputs=[p for name in normed for p in params[name]])
        if clip_with is None:
            for name in names:
                self._clipped_step(self.optimizers[name], params[name])
            return
        factor = clip_factor([p.grad for name in normed for p in params[name] if p.grad is not None], self.clip)
        for name in names:
            self._clipped_step(self.optimizers[name], params[name], factor)

    def _clipped_step(
        self, opt: torch.optim.Optimizer, params: list[torch.Tensor], factor: torch.Tensor | None = None
    ) -> None:
        """clip_grad_norm_ (or the given clipping `factor`), then opt.step(). On the CPU, where reading
        the norm costs nothing, a plain SGD step takes the clipping factor in its learning rate (the
        same update) and skips the pass that rescales every gradient (what that saves: docs/cpu-notes.md)."""
        grads = [p.grad for p in params if p.grad is not None]
        if not grads or grads[0].device.type != "cpu" or not plain_sgd(opt):
            if factor is None:
                torch.nn.utils.clip_grad_norm_(params, self.clip)
            elif grads:
                torch._foreach_mul_(grads, factor)
            opt.step()
            return
        scale = float(clip_factor(grads, self.clip) if factor is None else factor)
        lrs = [g["lr"] for g in opt.param_groups]
        for g in opt.param_groups:
            g["lr"] *= scale
        try:
            opt.step()
        finally:
            for g, lr in zip(opt.param_groups, lrs):
                g["lr"] = lr


def clip_factor(grads: list[torch.Tensor], clip: float) -> torch.Tensor:
    """clip_grad_norm_'s factor for these gradients, min(1, clip / (total norm + 1e-6)), on their device."""
    return (clip / (torch.nn.utils.get_total_norm(grads) + 1e-6)).clamp(max=1.0)


def plain_sgd(opt: torch.optim.Optimizer) -> bool:
    """SGD without momentum, weight decay or maximisation: p -= lr * grad, what the folded clip and
    the graphed step (core/library/graphs.py) both rewrite."""
    return isinstance(opt, torch.optim.SGD) and not any(
        g["momentum"] or g["weight_decay"] or g.get("maximize") for g in opt.param_groups
    )


class Objective(nn.Module):
    """Base: the ELBO with KL weight 1. Subclasses change `loss` or `train_step`."""

    name: ClassVar[str]  # registry name, the `--model` value
    display_name: ClassVar[str]  # how tables, cards and the explorer name it
    source: ClassVar[str] = ""  # where its defaults come from, for model cards
    Settings: ClassVar[type] = NoSettings
    latent: ClassVar[bool] = True  # False for the language model: the model has no encoder
    table2_row: ClassVar[int | None] = None  # its row in the paper's Table 2 (1-7), if it has one
    paper_swept: ClassVar[tuple[str, ...]] = ()  # settings its paper itself varies (its grid), not departures from it
    # Settings that bundles of format 1 (one flat settings object for every objective) did not
    # have, or meant differently, with the value that reproduces what those runs did.
    legacy: ClassVar[dict[str, Any]] = {}
    # Settings added later, with the value that configs which do not record them trained with.
    unrecorded: ClassVar[dict[str, Any]] = {}

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "name" in cls.__dict__:
            _REGISTRY[cls.name] = cls

    def __init__(self, model: TextVAE, settings, vocab_size: int):
        super().__init__()
        self.settings = settings
        # Training position in epochs, (epoch - 1) + batch / batches_per_epoch; the loop sets it
        # before every step and schedules read it (see schedules.py).
        self.position = 0.0
        # While core.library.graphs runs a step for capture: the device scalars the graph reads instead of
        # Python numbers that change between steps (a number would be baked into the graph).
        self.live: dict[str, torch.Tensor] | None = None

    # -- settings ---------------------------------------------------------------------------------

    @classmethod
    def config(cls, **settings) -> ObjectiveConfig:
        """This objective with its default settings, except those given."""
        return ObjectiveConfig(cls.name, build_dataclass(cls.Settings, settings, f"settings of {cls.name}"))

    @classmethod
    def settings_from_strings(cls, items: Iterable[str]) -> ObjectiveConfig:
        """`--set FIELD=VALUE` strings checked against this objective's settings, cast to their types."""
        kinds = {f.name: f.type if isinstance(f.type, type) else _TYPES[f.type] for f in fields(cls.Settings)}
        values: dict[str, Any] = {}
        for item in items:
            key, sep, raw = item.partition("=")
            key = key.strip().replace("-", "_")
            if not sep or key not in kinds:
                known = ", ".join(kinds) or "none"
                raise SettingError(f"--set {item!r}: {cls.name} has the settings {known} (give FIELD=VALUE)")
            values[key] = parse_value(kinds[key], raw.strip(), f"--set {key}")
        try:
            return cls.config(**values)
        except (TypeError, ValueError) as e:
            raise SettingError(f"--set: {e}") from None

    @classmethod
    def settings_from_legacy(cls, flat: dict[str, Any]) -> ObjectiveConfig:
        """Settings of a format-1 bundle, whose one flat object held every objective's fields."""
        values = {f.name: flat[f.name] for f in fields(cls.Settings) if f.name in flat}
        return cls.config(**{**values, **cls.legacy})

    @classmethod
    def departures(cls, settings) -> dict[str, Any]:
        """The settings that differ from this objective's defaults, except those the paper itself
        varies (paper_swept): what a model shown as this objective must be labelled with. An objective
        that is not one of the paper's Table 2 systems has no paper to depart from."""
        if cls.table2_row is None:
            return {}
        default = cls.Settings()
        return {k: v for k, v in asdict(settings).items() if k not in cls.paper_swept and v != getattr(default, k)}

    @staticmethod
    def shareable(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """A bundle's tensors as they may leave this machine (core.export): by default all of them."""
        return tensors

    @staticmethod
    def describe_settings(settings) -> dict[str, Any]:
        return asdict(settings)

    # -- hooks the training loop calls ----------------------------------------------------------

    def param_groups(self, model: TextVAE) -> dict[str, list[nn.Parameter]]:
        """Parameters by optimiser: each group gets its own SGD optimiser and its own gradient clip."""
        groups = {"model": list(model.parameters())}
        own = list(self.parameters())
        if own:
            groups[self.name] = own
        return groups

    def lr_scale(self, group: str) -> float:
        """A group's learning rate relative to the run's (halvings apply to all groups alike)."""
        return 1.0

    def optimizer(self, group: str, params: list[nn.Parameter], lr: float) -> torch.optim.Optimizer:
        """The optimiser of one parameter group: SGD, as in He et al.'s code, unless an objective says otherwise."""
        return torch.optim.SGD(params, lr=lr)

    def diagnostics(self, model: TextVAE, probe: Batch, batches: list[Batch]) -> dict[str, float]:
        """Figures about the objective itself, measured after each epoch on the probe sentences
        (`probe` whole, `batches` of it at the training batch size) without changing any state;
        they go into the log line as diag_*. None by default."""
        return {}

    def decay_from_epoch(self, first: int) -> int:
        """The first epoch the lr-plateau rule may act in (the run's setting, unless a schedule
        needs a constant lr for longer)."""
        return first

    def start_epoch(self, epoch: int) -> None:
        """Called before each epoch (1-based); schedules update here."""

    def end_epoch(self, epoch: int, valid: dict[str, float]) -> None:
        """Called after validation with that epoch's validation metrics."""

    def train_step(self, model: TextVAE, batch: Batch, ctx: StepContext) -> dict[str, torch.Tensor]:
        _, stats = ctx.step(partial(self.loss, model), batch)
        return stats

    def graphable(self, batch: Batch) -> bool:
        """Whether this step's loss can be captured as a CUDA graph (no host reads, shapes fixed
        by the batch's); objectives that cannot always say False here and run eagerly."""
        return True

    def logged(self) -> dict[str, float]:
        """Schedule values and state to record in each epoch's log line."""
        return {}

    def extra_state(self) -> dict:
        """JSON-able state beyond tensors (saved for --resume)."""
        return {}

    def load_extra_state(self, state: dict) -> None:
        pass

    # -- the loss ---------------------------------------------------------------------------------

    def kl_weight(self) -> float:
        return 1.0

    def step_kl_weight(self) -> float | torch.Tensor:
        """The KL weight this step's loss multiplies by: kl_weight(), or while core.library.graphs captures
        a step the device scalar it refills with kl_weight() before every replay."""
        return self.kl_weight() if self.live is None else self.live["kl_weight"]

    def decoder_inputs(self, batch: Batch) -> torch.Tensor | None:
        """The decoder's input tokens for the reconstruction term (None: the sentence itself)."""
        return None

    def elbo_terms(self, model: TextVAE, batch: Batch):
        """One reparameterised sample per sentence: (h_x, mu, logvar, z, reconstruction [B], kl [B])."""
        inputs = self.decoder_inputs(batch)
        h, mu, logvar = model.encode(batch)
        z = model.sample_z(mu, logvar)[:, 0]
        rec = model.reconstruction(batch, z, inputs)
        return h, mu, logvar, z, rec, model.kl(mu, logvar)

    def loss(self, model: TextVAE, batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Scalar loss to minimise and detached per-batch statistics (means per sentence)."""
        _, mu, logvar, _, rec, kl = self.elbo_terms(model, batch)
        loss = (rec + self.step_kl_weight() * kl).mean()
        return loss, self.stats(loss, rec, kl, mu, logvar)

    @staticmethod
    def stats(loss, rec, kl=None, mu=None, logvar=None, **extra) -> dict[str, torch.Tensor]:
        out = {"loss": loss.detach(), "reconstruction": rec.detach().mean()}
        if kl is not None:
            out["kl"] = kl.detach().mean()
            out["mi"] = batch_mi(mu.detach(), logvar.detach())
        out.update({k: v.detach() for k, v in extra.items()})
        return out


_TYPES = {"bool": bool, "int": int, "float": float, "str": str}


class ScheduledKL(Objective):
    """An objective whose KL weight follows a schedule (it overrides kl_weight); each epoch's log
    line records the weight at the epoch's end."""

    def logged(self) -> dict[str, float]:
        return {"kl_weight": round(self.kl_weight(), 6)}


# -- the registry -----------------------------------------------------------------------------------


def registry() -> dict[str, type[Objective]]:
    """Every objective defined so far, by name."""
    return dict(_REGISTRY)


def objective_class(name: str) -> type[Objective]:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise SettingError(f"unknown model {name!r}; known: {', '.join(_REGISTRY)}") from None


def display_name(name: str) -> str:
    cls = _REGISTRY.get(name)
    return cls.display_name if cls else name


def table2() -> list[str]:
    """The systems of the paper's Table 2, in its row order."""
    rows = sorted((cls.table2_row, name) for name, cls in _REGISTRY.items() if cls.table2_row)
    return [name for _, name in rows]


def parse_objective(d: dict[str, Any], source: str, legacy: bool = False) -> ObjectiveConfig:
    """The objective section of a config.json (format 2: name + settings; format 1: one flat object)."""
    if not isinstance(d, dict) or not isinstance(d.get("name"), str):
        raise CheckpointError(f"{source}: the objective section needs a name")
    try:
        cls = objective_class(d["name"])
    except ValueError as e:
        raise CheckpointError(f"{source}: {e}") from None
    if legacy:
        return cls.settings_from_legacy(d)
    try:
        return ObjectiveConfig(
            cls.name, build_dataclass(cls.Settings, {**cls.unrecorded, **(d.get("settings") or {})}, source)
        )
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"{source}: bad settings for {cls.name} ({e})") from None
