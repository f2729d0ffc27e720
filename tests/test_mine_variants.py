"""VAE-MINE's named variants (what the energy reads, how it learns, the estimator) and the
diagnostics that measure why the bound buys information: on the real objective, a real tiny
training run and bench.mine's command line."""

from __future__ import annotations

import json
import math
import statistics
from dataclasses import replace

import pytest
import torch

from bench import mine as bench_mine
from core.library.batching import Batch, Dataset
from core.library.checkpoint import LOG
from core.library.config import PRESETS
from core.library.corpora import read_split
from core.library.models import TextVAE
from core.library.objectives import StepContext
from core.library.objectives.mine import VAEMine
from core.library.vocab import Vocab
from tests.test_mine import H, Z, train_energy

CFG = PRESETS["tiny"]
ESTIMATORS = [
    {"estimator": "jsd"},
    {"estimator": "infonce", "negatives": "all-pairs"},
    {"estimator": "infonce", "negatives": "queue"},
    {"energy_standardize_z": True},
]


@pytest.mark.parametrize("settings", ESTIMATORS, ids=lambda s: ",".join(f"{k}={v}" for k, v in s.items()))
def test_every_estimator_sees_dependence_and_only_dependence(settings):
    """Trained by its own objective, the energy's DV value (on fresh pairs, all pairs as negatives)
    is well above 0 when z depends on x (2.77 nats) and near 0 when it does not."""
    assert 0.5 < train_energy(dependent=True, **settings) < 2.77 + 0.1
    assert abs(train_energy(dependent=False, **settings)) < 0.1


def test_the_printed_xi_does_not_learn_dependence():
    """The paper's printed tangent xi = mean exp f is not the argmax of its bound: the energy's DV
    value stays near 0 on pairs that carry 2.77 nats (why xi* = 1 / mean exp f is the default)."""
    assert train_energy(dependent=True, xi="printed") < 0.5


def test_infonce_is_at_most_log_of_its_columns():
    torch.manual_seed(0)
    objective = VAEMine(TextVAE(50, CFG), VAEMine.Settings(estimator="infonce", negatives="all-pairs"), 50)
    h = torch.randn(16, H)
    _, _, _, perfect = objective.bounds(h, torch.randn(16, Z))
    assert float(perfect) <= math.log(16) + 1e-6


def test_standardised_z_makes_the_bound_blind_to_the_codes_scale():
    """The reason for the variant: pushing the codes apart in scale costs KL and, read standardised,
    buys the bound nothing."""
    torch.manual_seed(0)
    h, z = torch.randn(32, H), torch.randn(32, Z)
    for standardize, same in ((True, True), (False, False)):
        objective = VAEMine(TextVAE(50, CFG), VAEMine.Settings(energy_standardize_z=standardize), 50)
        small, large = (float(objective.bounds(h, c)[1]) for c in (z, 10 * z))
        assert (small == pytest.approx(large, abs=1e-4)) is same


def test_an_energy_that_reads_the_posterior_gets_sharpening_at_first_order():
    """Reading (z - mu_x) / sigma_x, the joint pairs' input is the noise itself, and shrinking
    sigma moves the negative pairs: the bound's gradient on logvar is of the order of that on mu."""
    torch.manual_seed(0)
    objective = VAEMine(TextVAE(50, CFG), VAEMine.Settings(energy_reads_posterior=True), 50)
    h = torch.randn(32, H)
    mu, logvar = torch.randn(32, Z, requires_grad=True), torch.full((32, Z), -1.0, requires_grad=True)
    eps = torch.randn(32, Z)
    z = mu + eps * (0.5 * logvar).exp()
    x = objective.energy.x_features(h, mu, logvar)
    joint_input = objective.energy.codes(z)[0]
    residual = (joint_input[:, Z:] - x[:, -2 * Z : -Z]) * (-0.5 * x[:, -Z:]).exp()
    assert torch.allclose(residual, eps, atol=1e-5)
    with pytest.raises(ValueError, match="mean and log-variance"):
        objective.bounds(h, z.detach())
    _, phi, _, _ = objective.bounds(h, z, mu, logvar)
    g_mu, g_lv = torch.autograd.grad(phi, [mu, logvar])
    assert float(g_lv.norm()) > 0.1 * float(g_mu.norm()) > 0


@pytest.fixture(scope="module")
def ptb_batch(corpora):
    sentences = read_split("ptb", "train", corpora, 64)
    data = Dataset(sentences, Vocab.build(sentences, 1000))
    return data, next(iter(data.batches(32, torch.Generator().manual_seed(0))))


def test_k_energy_steps_and_adam_take_their_steps(ptb_batch):
    data, batch = ptb_batch
    torch.manual_seed(0)
    model = TextVAE(len(data.vocab), CFG)
    objective = VAEMine(model, VAEMine.Settings(energy_steps=3, energy_optimizer="adam"), len(data.vocab))
    optimizers = {k: objective.optimizer(k, v, objective.lr_scale(k)) for k, v in objective.param_groups(model).items()}
    assert isinstance(optimizers["energy"], torch.optim.Adam) and isinstance(optimizers["model"], torch.optim.SGD)
    assert optimizers["energy"].param_groups[0]["lr"] == VAEMine.Settings().energy_adam_lr
    steps = {"model": 0, "energy": 0}
    for name, opt in optimizers.items():
        opt.register_step_post_hook(lambda *_, name=name: steps.__setitem__(name, steps[name] + 1))
    before = [p.detach().clone() for p in objective.energy.parameters()]
    objective.train_step(model, batch, StepContext(optimizers, 5.0, None))
    assert steps == {"model": 1, "energy": 3}
    assert any(not torch.equal(a, b) for a, b in zip(before, objective.energy.parameters()))
    assert objective.graphable(batch) is False


def test_settings_refuse_what_cannot_work():
    for bad, match in (
        ({"estimator": "nce"}, "estimator"),
        ({"estimator": "infonce"}, "all-pairs, queue or re-encoded"),
        ({"energy_steps": 0}, "energy_steps"),
        ({"energy_optimizer": "rmsprop"}, "energy_optimizer"),
        ({"xi": "lagged"}, "xi"),
    ):
        with pytest.raises(ValueError, match=match):
            VAEMine.Settings(**bad)


def test_diagnostics_in_the_log_and_from_bench_mine(mine_bundle, corpora, capsys):
    """Each epoch's log line holds the diagnostics; bench.mine measures them on the bundle, and its
    KL gradients agree with the closed form (d mean KL / d mu = mu / B, / d logvar = (e^logvar - 1) / 2B)."""
    lines = [json.loads(x) for x in (mine_bundle / LOG).read_text().splitlines()]
    keys = {
        "bound",
        "mi",
        "kl",
        "grad_mu_rec",
        "grad_mu_kl",
        "grad_mu_mine",
        "grad_logvar_rec",
        "grad_logvar_kl",
        "grad_logvar_mine",
        "near_bound_joint",
        "near_bound_neg",
        "step_mi",
        "step_kl",
        "mi_per_kl",
    }
    for line in lines:
        assert keys <= {k[5:] for k in line if k.startswith("diag_")}
        assert line["diag_kl"] == pytest.approx(line["val_kl"], rel=0.2, abs=0.05)  # the probe is valid's start

    assert bench_mine.main([str(mine_bundle), "--data-dir", str(corpora), "--limit", "300"]) == 0
    out = capsys.readouterr().out
    result = json.loads(out[: out.index("\n| checkpoint")])["results"][0]
    assert result["sentences"] == 300 and len(result["epochs"]) == len(lines)
    assert all(math.isfinite(result[k]) for k in keys - {"mi_per_kl"})
    assert 0 <= result["near_bound_joint"] <= 1 and 0 <= result["near_bound_neg"] <= 1
    if abs(result["step_kl"] - result["kl"]) > 1e-3:  # (the figures are rounded to 5 decimals)
        assert result["mi_per_kl"] == pytest.approx(
            (result["step_mi"] - result["mi"]) / (result["step_kl"] - result["kl"]), rel=0.05, abs=1e-3
        )
    assert result["grad_mu_mine"] > 0 and result["grad_mu_rec"] > 0

    from core.library.checkpoint import load_bundle

    cfg, vocab, model, objective = load_bundle(mine_bundle)
    data = Dataset(read_split(cfg.corpus, "valid", corpora, 300), vocab)
    batches = list(data.batches(cfg.train.batch_size, torch.Generator().manual_seed(cfg.train.seed)))[:4]
    mu_norms, lv_norms = [], []
    with torch.no_grad():
        for b in batches:
            _, mu, logvar = model.encode(b)
            mu_norms.append(float(mu.norm()) / len(b))
            lv_norms.append(float((0.5 * (logvar.exp() - 1)).norm()) / len(b))
    # (the median of an even count is the mean of its two middle values, as the diagnostics take it;
    # torch.median would give the lower one)
    assert result["grad_mu_kl"] == pytest.approx(statistics.median(mu_norms), rel=0.05, abs=1e-4)
    assert result["grad_logvar_kl"] == pytest.approx(statistics.median(lv_norms), rel=0.05, abs=1e-4)


def test_a_floor_hides_spread_beyond_the_prior_but_not_below_it():
    """energy_z_floor=1: codes pushed apart beyond the prior's spread buy the bound nothing (the
    default's costly direction), while codes shrunk below it are seen shrunk, so the energy does not
    reward information held at a scale the decoder can hardly read."""
    torch.manual_seed(0)
    h, z = torch.randn(32, H), torch.randn(32, Z) * 2  # spread 2, beyond the prior's 1
    objective = VAEMine(TextVAE(50, CFG), VAEMine.Settings(energy_standardize_z=True, energy_z_floor=1.0), 50)
    at = lambda c: float(objective.bounds(h, c)[1])  # noqa: E731
    assert at(z) == pytest.approx(at(5 * z), abs=1e-4)
    assert at(z) != pytest.approx(at(0.01 * z), abs=1e-3)


@pytest.mark.parametrize("negatives", ["roll", "all-pairs", "queue"])
def test_a_separable_energy_scores_the_same_pairs_as_pairwise(negatives):
    """The separable energy's matrix, read as joint and negative pairs, gives the same DV value as
    scoring those pairs one by one; with a queue the negatives include every queued code."""
    torch.manual_seed(0)
    objective = VAEMine(
        TextVAE(50, CFG), VAEMine.Settings(energy_separable=True, negatives=negatives, queue_size=8), 50
    )
    if negatives == "queue":
        objective.negatives.after_step(torch.randn(8, Z), None)
    h, z = torch.randn(6, H), torch.randn(6, Z)
    hf, (zf, qf) = objective.energy.x_features(h, None, None), objective.codes(z)
    joint, neg = objective.energies(hf, zf, qf, frozen=True)
    h_neg, z_neg = objective.negatives.pairs(hf, zf, qf)
    assert torch.allclose(joint, objective.energy(hf, zf), atol=1e-5)
    assert torch.allclose(neg.sort().values, objective.energy(h_neg, z_neg).sort().values, atol=1e-5)
    assert len(neg) == {"roll": 6, "all-pairs": 30, "queue": 30 + 6 * 8}[negatives]
    with pytest.raises(ValueError, match="separable"):
        VAEMine.Settings(energy_separable=True, energy_reads_posterior=True)


def test_re_encoded_negatives_are_the_current_encoders_codes_of_earlier_sentences():
    """negatives=re-encoded keeps the last queue_size sentences (cut at reencoded_width tokens) of
    earlier training batches, of any length, and encodes them again each step, so a change of the
    encoder changes them at once (a queue of codes would keep the old ones); the ring is a buffer,
    saved with the weights for --resume; a separable energy scores them as extra columns."""
    torch.manual_seed(0)
    model = TextVAE(50, replace(CFG, layer_biases=True))  # (a bias moves every code at once, below)
    settings = VAEMine.Settings(
        negatives="re-encoded", estimator="infonce", energy_separable=True, queue_size=6, reencoded_width=8
    )
    objective = VAEMine(model, settings, 50)
    model.train(), objective.train()

    def batch(length: int, n: int = 4) -> Batch:
        return Batch(torch.randint(4, 50, (n, length)), torch.full((n,), length), torch.arange(n))

    first, second = batch(5), batch(11)
    objective.loss(model, first)
    ring = objective.negatives
    assert ring.fresh is None and ring.queued() == 4  # nothing kept before the first batch
    objective.loss(model, second)
    assert ring.fresh.shape == (4, Z)  # the first batch's four, encoded again
    assert ring.queued() == 8 and objective.sentence_lengths.tolist() == [8, 8, 5, 5, 8, 8]  # ring of 6; cut at 8
    kept = objective.sentences[[2, 3, 4, 5]]
    assert torch.equal(kept[2:, :8], second.tokens[:2, :8]) and torch.equal(kept[:2, :5], first.tokens[2:, :5])
    with torch.no_grad():
        _, mu, _ = model.encoder(objective.sentences, objective.sentence_lengths)
        model.encoder.to_gaussian.bias.add_(3.0)  # another encoder: the re-encoded codes follow it
        _, moved, _ = model.encoder(objective.sentences, objective.sentence_lengths)
    assert (moved - mu).abs().mean() > 1.0
    objective.eval()
    objective.loss(model, batch(7))
    assert ring.queued() == 8  # evaluation keeps nothing
    assert (ring.fresh.mean(0) - moved.mean(0)).abs().mean() < (ring.fresh.mean(0) - mu.mean(0)).abs().mean()
    assert {"sentences", "sentence_lengths", "queue_count"} <= set(objective.state_dict())
    hf, (zf, qf) = objective.energy.x_features(torch.randn(3, H), None, None), objective.codes(torch.randn(3, Z))
    scores, _ = objective.energies(hf, zf, qf, frozen=True)
    assert scores.shape == (3, 3 + 6)
    # an exported bundle carries no training sentence: the ring is emptied, and it loads
    tensors = {f"objective.{k}": v for k, v in objective.state_dict().items()}
    shared = VAEMine.shareable(tensors)
    assert tensors["objective.sentences"].any() and not shared["objective.sentences"].any()
    objective.load_state_dict({k[len("objective.") :]: v for k, v in shared.items()})
    objective.start_epoch(2)
    assert ring.queued() == 0 and ring.reencode(model) is None
    with pytest.raises(ValueError, match="reencoded_width"):
        VAEMine.Settings(negatives="re-encoded", reencoded_width=1)
