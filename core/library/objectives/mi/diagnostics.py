"""VAE-MINE's instrument: why its bound buys (or does not buy) information, measured beside the objective.

The training loop asks every objective for its diagnostics after each epoch (Objective.diagnostics);
VAE-MINE's are these, written to train_log as diag_* and read by bench.mine. They change no state.
"""

from __future__ import annotations

from copy import deepcopy

import numpy as np
import torch
from torch import nn

from ...batching import Batch
from ...metrics import aggregate_mi
from ...models import TextVAE


def measure(
    objective, model: TextVAE, probe: Batch, batches: list[Batch], steps: int = 10, lr: float = 1.0, seed: int = 0
) -> dict[str, float]:
    """Why the bound buys (or does not buy) information, measured without changing the model,
    the energy or any state (evaluation mode, a private generator):
      bound / mi: the estimate on `batches` against the MI of the whole probe (metrics.aggregate_mi);
      grad_{mu,logvar}_{rec,kl,mine}: median over `batches` of the norm of each term's gradient
        on the posterior means and log-variances (rec, kl_weight x KL, alpha x the bound);
      near_bound_{joint,neg}: share of energies within 10 % of energy_bound (a saturated critic);
      step_mi, step_kl, mi_per_kl: the probe's MI and KL after `steps` encoder-only SGD steps
        (lr `lr`, clipped at 5, energy frozen) along alpha x the bound alone, and their ratio of
        changes: nats of MI the bound's direction buys per nat of KL it costs.
    """
    g = torch.Generator(device=probe.tokens.device).manual_seed(seed)
    was = model.training, objective.training
    model.eval(), objective.eval()
    try:
        terms = {k: {"mu": [], "logvar": []} for k in ("rec", "kl", "mine")}
        estimates, near_joint, near_neg = [], [], []
        for batch in batches:
            h, mu, logvar = model.encode(batch)
            z = TextVAE.sample_z(mu, logvar, 1, g)[:, 0]
            hf = objective.energy.x_features(h, mu, logvar, batch.tokens)
            zf, qf = objective.codes(z)
            a, b = objective.energies(hf, zf, qf, frozen=True)
            joint, neg = (
                (a.diagonal(), a[~torch.eye(*a.shape, dtype=torch.bool, device=a.device)]) if b is None else (a, b)
            )
            near_joint.append(float((joint.abs() > 0.9 * objective.energy.bound).float().mean()))
            near_neg.append(float((neg.abs() > 0.9 * objective.energy.bound).float().mean()))
            _, phi, _, estimate = objective.bounds(h, z, mu, logvar, batch.tokens)
            estimates.append(float(estimate))
            losses = {
                "rec": model.reconstruction(batch, z).mean(),
                "kl": objective.kl_weight() * TextVAE.kl(mu, logvar).mean(),
                "mine": -objective.alpha * phi,
            }
            for k, term in losses.items():
                g_mu, g_lv = torch.autograd.grad(term, [mu, logvar], retain_graph=True, allow_unused=True)
                terms[k]["mu"].append(0.0 if g_mu is None else float(g_mu.norm()))
                terms[k]["logvar"].append(0.0 if g_lv is None else float(g_lv.norm()))
        mi, kl = probe_mi_kl(model.encoder, probe)
        step_mi, step_kl = bound_step(objective, model.encoder, probe, batches, steps, lr, g)
    finally:
        model.train(was[0]), objective.train(was[1])
    out = {"bound": float(np.mean(estimates)), "mi": mi, "kl": kl}
    for k, parts in terms.items():
        for what, norms in parts.items():
            out[f"grad_{what}_{k}"] = float(np.median(norms))
    out |= {
        "near_bound_joint": float(np.mean(near_joint)),
        "near_bound_neg": float(np.mean(near_neg)),
        "step_mi": step_mi,
        "step_kl": step_kl,
        "mi_per_kl": (step_mi - mi) / (step_kl - kl) if abs(step_kl - kl) > 1e-9 else float("nan"),
    }
    return {k: round(v, 5) for k, v in out.items()}


@torch.no_grad()
def probe_mi_kl(encoder: nn.Module, probe: Batch) -> tuple[float, float]:
    _, mu, logvar = encoder(probe.tokens, probe.lengths)
    return aggregate_mi(mu, logvar, generator=torch.Generator().manual_seed(0)), float(TextVAE.kl(mu, logvar).mean())


def bound_step(
    objective, encoder: nn.Module, probe: Batch, batches: list[Batch], steps: int, lr: float, g
) -> tuple[float, float]:
    """The probe's (MI, KL) after `steps` SGD steps of a copy of the encoder along alpha x the bound."""
    copy = deepcopy(encoder)
    params = list(copy.parameters())
    opt = torch.optim.SGD(params, lr=lr)
    for i in range(steps):
        batch = batches[i % len(batches)]
        h, mu, logvar = copy(batch.tokens, batch.lengths)
        _, phi, _, _ = objective.bounds(h, TextVAE.sample_z(mu, logvar, 1, g)[:, 0], mu, logvar, batch.tokens)
        opt.zero_grad(set_to_none=True)
        (-objective.alpha * phi).backward(inputs=params)
        torch.nn.utils.clip_grad_norm_(params, 5.0)
        opt.step()
    return probe_mi_kl(copy, probe)
