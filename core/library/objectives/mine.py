"""VAE-MINE (Qian & Cheung 2019): the ELBO plus alpha times a neural lower bound on I_q[x, z] (Eq. 10).

Bound (Eq. 12):  I >= E_joint[f(x, z)] - xi * E_marginals[exp f(x, z')] + log xi + 1.

The paper's Algorithm 1 is `VAEMine.loss`, read top to bottom with its lines and equations named:
a batch and its codes, the negative pairs, psi's ascent at the last tangent, the tangent xi*
(1 / mean exp f: the paper prints mean exp f, which is not the argmax; xi="printed" keeps it to
show what it does), phi's ascent of ELBO + alpha * bound(xi*), theta's of the reconstruction, one
SGD step for all. Its parts are small modules in core/library/objectives/mi/, each chosen by a named setting:
the energy f_psi (mi/energy.py), the estimator (mi/estimators.py: the paper's DV with its tangent,
JSD, InfoNCE), the negatives (mi/negatives.py: roll, all-pairs, queue, re-encoded); the instrument
that says why the bound does or does not buy information sits beside it (mi/diagnostics.py).

Choices beyond the paper's text that the default makes (why, measured: docs/mine-variants.md):
a bounded energy (a scaled tanh into (-energy_bound, energy_bound)), the energy's lr at 0.1 x the
model's, h_x standardised across the batch (the initial encoder's states differ by ~4e-4), and a
weak gauge energy_gauge * (log mean exp f_marg)^2 that keeps the energy's free offset out of tanh's
flat floor. The settings below the paper's own name the other choices it leaves open: what the
energy reads (z standardised; the posterior; the words), how it learns (Adam; k steps per encoder
step) and the estimator (DV with its tangent, JSD, InfoNCE).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import torch
from torch import nn
from torch.func import functional_call

from ..batching import Batch
from ..errors import SettingError
from ..models import TextVAE
from .annealed import word_dropout
from .base import ScheduledKL
from .mi import diagnostics, estimators, negatives
from .mi.energy import EnergyFunction
from .schedules import linear_anneal

NEGATIVES = tuple(negatives.SOURCES)  # roll, all-pairs, queue, re-encoded
ESTIMATORS = tuple(estimators.ESTIMATORS)  # dv, jsd, infonce
XI_RULES = ("optimal", "printed")
OPTIMIZERS = ("sgd", "adam")
READS = ("state", "words")
# Named groups of settings (core.train --recipe): "reads-code" is the estimator of the shipped
# right-hand VAE-MINE (docs/mine-variants.md) without its anneal and word dropout, the smallest set
# that kept the code in use in short runs (the classroom lab: MI 0.6-0.8, AU 5-8 in a minute, where
# the paper's DV at alpha 3 stays near 0).
RECIPES = {
    "reads-code": (
        ("energy_standardize_z", True),
        ("estimator", "infonce"),
        ("negatives", "re-encoded"),
        ("queue_size", 160),
    )
}


@dataclass(frozen=True)
class Settings:
    alpha: float = 3.0  # weight of the MI bound; the paper sweeps 2.0 ... 5.0
    energy_lr_scale: float = 0.1  # the energy network's SGD lr, relative to the model's
    energy_bound: float = 10.0  # energy outputs squashed into (-bound, bound)
    energy_standardize_h: bool = True  # the energy reads h_x standardised across the batch
    energy_gauge: float = 0.01  # weight of the pull on the energy's free offset (see the module text)
    negatives: str = "roll"  # roll, all-pairs, queue or re-encoded (see the module text)
    queue_size: int = 64  # "queue": codes kept from earlier batches (two batches of 32); "re-encoded": sentences
    reencoded_width: int = 64  # "re-encoded": tokens kept of each sentence (<s> included; a longer one is cut)
    # A KL anneal as its baselines have (weight from kl_start rising linearly to 1 over anneal_epochs).
    # The paper names an anneal only for VAE-0.5, so by default there is none (weight 1 throughout).
    kl_start: float = 1.0
    anneal_epochs: float = 0.0
    # Word dropout on the decoder's inputs as VAE-0.5 has (share of words replaced by <unk>); the paper
    # names none for VAE-MINE, so by default 0. With it (and the anneal), VAE-MINE is VAE-0.5 plus the
    # MI term: the two differ in that term only.
    word_dropout: float = 0.0
    # Choices the paper leaves open or states differently; each is screened in docs/mine-variants.md.
    energy_standardize_z: bool = False  # the energy reads z standardised across the batch, as it reads h_x
    energy_z_floor: float = (
        0.0  # with it, z is divided by max(batch spread, floor): at 1.0 only spread beyond the prior's is hidden
    )
    energy_reads_posterior: bool = False  # the energy also reads (z - mu_x) / sigma_x (x's posterior beside h_x)
    energy_reads: str = "state"  # x as the encoder's last state h_x, or as "words" (the energy's own bag of words)
    energy_separable: bool = (
        False  # f = g(h_x) . k(z) (two towers) instead of an MLP on [h_x; z]: many negatives cheaply
    )
    energy_optimizer: str = "sgd"  # sgd (Algorithm 1) or adam (MINE's own practice, Belghazi et al. 2018)
    energy_adam_lr: float = 1e-4  # Adam's lr at the run's lr 1.0 (halved with it)
    energy_steps: int = 1  # energy updates per encoder step (k > 1: a critic that keeps up, as in WGAN)
    estimator: str = "dv"  # dv (the paper's DV with its tangent xi), jsd (Hjelm et al.), infonce (all pairs)
    xi: str = "optimal"  # dv's tangent: optimal (xi* = 1 / mean exp f) or printed (the paper's xi = mean exp f)

    def __post_init__(self):
        for name, allowed in (
            ("negatives", NEGATIVES),
            ("estimator", ESTIMATORS),
            ("xi", XI_RULES),
            ("energy_optimizer", OPTIMIZERS),
            ("energy_reads", READS),
        ):
            if getattr(self, name) not in allowed:
                raise SettingError(f"{name} must be one of {', '.join(allowed)}, not {getattr(self, name)!r}")
        if self.queue_size < 1 or self.reencoded_width < 2:
            raise SettingError("queue_size must be at least 1 and reencoded_width at least 2")
        if self.energy_steps < 1:
            raise SettingError("energy_steps must be at least 1")
        if self.energy_separable and self.energy_reads_posterior:
            raise SettingError(
                "a separable energy reads x and z apart, so it cannot read z's distance from x's posterior"
            )
        if self.estimator == "infonce" and self.negatives == "roll":
            raise SettingError(
                "estimator=infonce scores every pair of the batch: use negatives=all-pairs, queue or re-encoded"
            )


class VAEMine(ScheduledKL):
    name = "vae-mine"
    display_name = "VAE-MINE"
    source = "Qian & Cheung 2019, with the choices in core/library/objectives/mine.py"
    Settings = Settings
    table2_row = 7
    paper_swept = ("alpha",)  # the paper's grid, 2.0 ... 5.0
    # Format-1 runs: in-batch roll negatives, and no anneal or word dropout (their one flat config
    # object held VAE-0.5's kl_start, anneal_epochs and word_dropout, which VAE-MINE never read).
    legacy = {"negatives": "roll", "kl_start": 1.0, "anneal_epochs": 0.0, "word_dropout": 0.0}

    def __init__(self, model: TextVAE, settings: Settings, vocab_size: int):
        super().__init__(model, settings, vocab_size)
        mc = model.model_config
        self.energy = EnergyFunction(
            mc.hidden_dim,
            mc.z_dim,
            mc.energy_hidden,
            settings.energy_bound,
            settings.energy_standardize_h,
            settings.energy_standardize_z,
            settings.energy_reads_posterior,
            vocab_size if settings.energy_reads == "words" else 0,
            model.pad,
            settings.energy_separable,
            settings.energy_z_floor,
        )
        self.register_buffer("log_xi", torch.zeros(()))  # tangent scope carried between batches, xi = 1 at start
        self.negatives = negatives.SOURCES[settings.negatives](self, model, settings)  # (its rings: our buffers)
        self.estimator = partial(estimators.ESTIMATORS[settings.estimator], gauge=settings.energy_gauge, xi=settings.xi)
        self.alpha = settings.alpha

    @staticmethod
    def shareable(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The ring of re-encoded sentences holds token ids of training sentences: an exported bundle
        keeps it empty (a run resumed from one fills it again within queue_size sentences)."""
        out = dict(tensors)
        if "objective.sentences" in out:
            out["objective.sentences"] = torch.zeros_like(out["objective.sentences"])
            out["objective.sentence_lengths"] = torch.ones_like(out["objective.sentence_lengths"])
            out["objective.queue_count"] = torch.zeros_like(out["objective.queue_count"])
        return out

    def param_groups(self, model: TextVAE) -> dict[str, list[nn.Parameter]]:
        return {"model": list(model.parameters()), "energy": list(self.energy.parameters())}

    def lr_scale(self, group: str) -> float:
        if group != "energy":
            return 1.0
        return (
            self.settings.energy_adam_lr if self.settings.energy_optimizer == "adam" else self.settings.energy_lr_scale
        )

    def optimizer(self, group: str, params: list[nn.Parameter], lr: float) -> torch.optim.Optimizer:
        if group == "energy" and self.settings.energy_optimizer == "adam":
            return torch.optim.Adam(params, lr=lr)
        return super().optimizer(group, params, lr)

    # -- Algorithm 1 ------------------------------------------------------------------------------

    def loss(self, model: TextVAE, batch: Batch):
        """One pass of Algorithm 1's loop on a batch; the training loop takes the one SGD step (line 15)."""
        # lines 3-4: M sentences and z_i ~ q_phi(z|x_i), reparameterised; the ELBO's terms (Eq. 10)
        h, mu, logvar, z, rec, kl = self.elbo_terms(model, batch)
        elbo_loss = (rec + self.step_kl_weight() * kl).mean()
        if len(batch) < 2:  # no negative pair exists in a batch of one
            return elbo_loss, self.stats(elbo_loss, rec, kl, mu, logvar)
        # line 5: the shuffled codes z' (pairs from q(x) q(z)), as `negatives` says
        self.negatives.before_step(model)
        # lines 6-12: psi ascends the bound at the last tangent (Eq. 12), xi* (Eq. 13), phi ascends
        # ELBO + alpha * bound(xi*) (Eq. 14); `bounds` scores the pairs, the estimator does the rest
        psi, phi, log_xi, estimate = self.bounds(h, z, mu, logvar, batch.tokens)
        # lines 13-14: theta ascends the reconstruction term alone, the only one that depends on it
        loss = elbo_loss - self.alpha * phi - psi
        extra = {"mine_bound": estimate}
        if log_xi is not None:
            self.log_xi.copy_(log_xi)  # the next batch's psi step uses this tangent
            extra["xi"] = log_xi.exp()
        if self.training:
            self.negatives.after_step(z, batch)
        return loss, self.stats(loss, rec, kl, mu, logvar, **extra)

    def bounds(
        self,
        h: torch.Tensor,
        z: torch.Tensor,
        mu: torch.Tensor | None = None,
        logvar: torch.Tensor | None = None,
        tokens: torch.Tensor | None = None,
    ):
        """(psi_objective, phi_objective, log_xi or None, estimate) for one batch of pairs (h_i, z_i),
        B >= 2 (core/library/objectives/mi/estimators.py); mu and logvar (the posteriors of z) are needed when
        the energy reads them, the sentences' tokens when it reads their words. psi_objective carries
        gradient to the energy network only, phi_objective to h and z only; both are ascended."""
        hf = self.energy.x_features(h, mu, logvar, tokens)
        zf, qf = self.codes(z)
        psi_pairs = self.energies(hf, zf, qf, frozen=False)
        phi_pairs = self.energies(hf, zf, qf, frozen=True)
        return self.estimator(psi_pairs, phi_pairs, self.log_xi)

    # -- the pairs the energy scores --------------------------------------------------------------

    def codes(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(z, the negatives' outside codes or None) as the energy reads them."""
        queued = self.negatives.codes()
        if queued is None or not len(queued):
            return self.energy.codes(z)[0], None
        zf, qf = self.energy.codes(z, queued)
        return zf, qf

    def energies(self, h: torch.Tensor, z: torch.Tensor, queued: torch.Tensor | None, frozen: bool):
        """infonce: the score matrix f(x_i, z_j) over the batch's codes and the outside ones, and None;
        else (joint energies, negative energies). frozen: the energy's parameters held fixed (the
        encoder's view); else the inputs are detached (the energy's own update)."""
        if frozen:
            params = {k: v.detach() for k, v in self.energy.named_parameters()}

            def f(a, b, matrix=False):
                return functional_call(self.energy, params, (a, b), {"matrix": matrix})
        else:
            h, z, queued = h.detach(), z.detach(), None if queued is None else queued.detach()
            f = self.energy
        if self.energy.separable:
            scores = f(h, z if queued is None else torch.cat([z, queued]), matrix=True)
            return (scores, None) if self.settings.estimator == "infonce" else self.negatives.from_matrix(scores)
        if self.settings.estimator == "infonce":
            cols = z if queued is None else torch.cat([z, queued])
            b, c = h.size(0), cols.size(0)
            return f(h.repeat_interleave(c, 0), cols.repeat(b, 1)).view(b, c), None
        h_neg, z_neg = self.negatives.pairs(h, z, queued)
        return f(h, z), f(h_neg, z_neg)

    # -- hooks of the training loop ---------------------------------------------------------------

    def start_epoch(self, epoch: int) -> None:
        super().start_epoch(epoch)
        self.negatives.forget()  # the weights, rings included, may have been reloaded since

    def graphable(self, batch: Batch) -> bool:
        """Extra energy steps read the encoder's output outside the step, so they run eagerly; so do
        steps whose number of negatives changes (mi/negatives.py)."""
        return self.settings.energy_steps == 1 and self.negatives.graphable()

    def energy_loss(self, h: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor, batch: Batch):
        """The energy's own objective on fresh codes of a batch already encoded (extra energy steps)."""
        psi, _, log_xi, estimate = self.bounds(h, TextVAE.sample_z(mu, logvar)[:, 0], mu, logvar, batch.tokens)
        if log_xi is not None:
            self.log_xi.copy_(log_xi)
        return -psi, {"mine_bound": estimate}

    def train_step(self, model: TextVAE, batch: Batch, ctx) -> dict[str, torch.Tensor]:
        if self.settings.energy_steps > 1 and len(batch) >= 2:
            with torch.no_grad():
                h, mu, logvar = model.encode(batch)
            for _ in range(self.settings.energy_steps - 1):
                ctx.step(partial(self.energy_loss, h, mu, logvar), batch, groups=["energy"])
        return super().train_step(model, batch, ctx)

    def kl_weight(self) -> float:
        return linear_anneal(self.position, self.settings.kl_start, self.settings.anneal_epochs)

    def decoder_inputs(self, batch: Batch) -> torch.Tensor | None:
        return (
            word_dropout(batch.inputs, self.settings.word_dropout)
            if self.training and self.settings.word_dropout
            else None
        )

    def logged(self) -> dict[str, float]:
        return {**super().logged(), "alpha": self.alpha}

    def diagnostics(self, model: TextVAE, probe: Batch, batches: list[Batch], **kwargs) -> dict[str, float]:
        """Why the bound buys (or does not buy) information: core/library/objectives/mi/diagnostics.py."""
        return diagnostics.measure(self, model, probe, batches, **kwargs)
