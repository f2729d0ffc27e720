"""The seven systems of Table 2 behind the one objective interface: each trains and lowers its own
loss on real PTB text, and each schedule / rule does exactly what the paper's baselines specify."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import DATA, tiny_config

from core.library.batching import Dataset
from core.library.corpora import read_split
from core.library.models import TextVAE
from core.library.objectives import StepContext, objective_class, registry, table2
from core.library.objectives.annealed import word_dropout
from core.library.objectives.infovae import mmd2
from core.library.objectives.lagging import InnerLoopStop, LaggingVAE
from core.library.objectives.schedules import cyclical, linear_anneal
from core.library.training import Trainer
from core.library.vocab import Vocab

TABLE2 = ["lstm-lm", "vae-0.5", "vae-bow", "infovae", "cyclical", "lagging", "vae-mine"]


def test_table2_systems_are_all_registered():
    assert table2() == TABLE2
    assert set(TABLE2) | {"vae"} <= set(registry())


def objective_loss(trainer: Trainer, batches) -> float:
    """The objective's own loss on fixed batches, with fixed randomness (dropout, z, prior draws)."""
    torch.manual_seed(0)
    with torch.no_grad():
        return sum(float(trainer.objective.loss(trainer.model, b)[0]) for b in batches) / len(batches)


@pytest.mark.parametrize("name", TABLE2)
def test_each_system_trains_an_epoch_and_lowers_its_own_loss(name, tmp_path, corpora):
    extra = (
        {"anneal_epochs": 2.0}
        if name in ("vae-0.5", "vae-bow")
        else {"cycle_epochs": 1.0}
        if name == "cyclical"
        else {}
    )
    if name == "lagging":
        extra = {"aggressive_max_steps": 10, "aggressive_window": 3}
    trainer = Trainer(
        tiny_config(name, epochs=1, max_train=640, **extra), tmp_path / name, str(DATA), "cpu", progress=False
    )
    held = list(trainer.train_data.batches(64, torch.Generator().manual_seed(5)))[:4]
    before = objective_loss(trainer, held)
    next(trainer.epochs())
    after = objective_loss(trainer, held)
    assert after < before - 5.0, (before, after)  # nats per sentence; an untrained model is far worse
    line = json.loads((tmp_path / name / "train_log.jsonl").read_text())
    assert line["epoch"] == 1 and line["loss"] < before and 0 < line["val_nll"] < 1e3
    n = len(list(trainer.train_data.batches(32)))
    if name in ("vae-0.5", "vae-bow"):  # the loop's position after the last step of epoch 1 is (n-1)/n
        assert line["kl_weight"] == round(linear_anneal((n - 1) / n, 0.1, 2.0), 6)
    if name == "cyclical":
        assert line["kl_weight"] == round(cyclical((n - 1) / n, 1.0, 4, 0.5), 6) == 1.0
    if name == "lagging":
        assert line["aggressive"] is True and 1 <= line["inner_steps"] <= 10
    if name == "lstm-lm":
        assert "kl" not in line and "val_kl" not in line


def test_linear_anneal_has_exact_values():
    assert linear_anneal(0.0, 0.1, 10) == pytest.approx(0.1)
    assert linear_anneal(5.0, 0.1, 10) == pytest.approx(0.55)
    assert linear_anneal(2.5, 0.1, 10) == pytest.approx(0.325)
    assert linear_anneal(10.0, 0.1, 10) == 1.0
    assert linear_anneal(37.0, 0.1, 10) == 1.0


def test_cyclical_schedule_restarts_rises_over_half_a_cycle_then_stays_at_one():
    b = lambda t: cyclical(t, 10.0, 4, 0.5)  # noqa: E731
    assert [b(t) for t in (0.0, 2.5, 5.0, 7.5, 9.99)] == pytest.approx([0.0, 0.5, 1.0, 1.0, 1.0])
    assert [b(t) for t in (10.0, 11.0, 15.0)] == pytest.approx([0.0, 0.2, 1.0])  # restart of cycle 2
    assert b(30.0) == 0.0 and b(32.5) == pytest.approx(0.5)  # cycle 4
    assert [b(t) for t in (40.0, 41.0, 95.0)] == [1.0, 1.0, 1.0]  # after 4 cycles: 1 for good


def test_word_dropout_replaces_about_half_the_words_and_nothing_else(corpora):
    sents = read_split("ptb", "valid", DATA, limit=400)
    data = Dataset(sents, Vocab.build(sents))
    batch = data.batch(torch.arange(len(data)))
    inputs = batch.inputs
    dropped = word_dropout(inputs, 0.5, torch.Generator().manual_seed(1))
    words = inputs > 3
    share = float(((dropped == 3) & words & (inputs != 3)).sum() / (words & (inputs != 3)).sum())
    assert 0.47 < share < 0.53, share
    assert torch.equal(dropped[~words], inputs[~words])  # <s>, </s>, <pad> untouched
    assert torch.equal(dropped[dropped != 3], inputs[dropped != 3])  # only ever <unk> written
    assert torch.equal(word_dropout(inputs, 0.0), inputs)
    assert word_dropout(inputs, 0.25, torch.Generator().manual_seed(1)).eq(3).sum() < dropped.eq(3).sum()


def test_mmd_is_near_zero_for_the_prior_and_large_for_a_shifted_distribution():
    g = torch.Generator().manual_seed(0)
    prior = lambda: torch.randn(400, 16, generator=g)  # noqa: E731
    same = float(mmd2(prior(), prior()))
    shifted = float(mmd2(prior() + 1.0, prior()))
    assert abs(same) < 0.01 and shifted > 0.2, (same, shifted)


def steps_until_stop(stop: InnerLoopStop, losses, words: int = 1) -> int:
    """Feed a scripted sequence of summed losses as the inner loop would; the step it stops at."""
    for loss in losses:
        if stop.add(loss, words):
            return stop.steps
    raise AssertionError("never stopped")


def test_inner_loop_stops_when_a_window_does_not_improve():
    per_word = [5, 5, 5, 4, 4, 4, 4.5, 4.5, 4.5, 1, 1, 1]  # windows: 5.0, 4.0, then 4.5 (worse)
    assert steps_until_stop(InnerLoopStop(window=3, max_steps=100), [x * 10 for x in per_word], words=10) == 9
    falling = [5, 5, 5, 4, 4, 4, 3, 3, 3, 2.9, 2.9, 2.9, 3, 3, 3]  # 5, 4, 3, 2.9 improve; then 3.0 does not
    assert steps_until_stop(InnerLoopStop(window=3, max_steps=100), falling) == 15
    assert steps_until_stop(InnerLoopStop(window=2, max_steps=100), [3.0] * 10) == 4  # flat stops too


def test_inner_loop_runs_at_most_max_steps_while_the_loss_keeps_falling():
    assert steps_until_stop(InnerLoopStop(window=15, max_steps=100), [1000.0 - i for i in range(200)]) == 100


def test_lagging_leaves_aggressive_mode_for_good_once_validation_mi_stops_increasing(tmp_path, corpora):
    trainer = Trainer(
        tiny_config("lagging", epochs=1, max_train=64, aggressive_stop="aggregate-mi"),
        tmp_path / "lag",
        str(DATA),
        "cpu",
        progress=False,
    )
    obj: LaggingVAE = trainer.objective
    modes = []
    for mi in (0.1, 0.4, 0.9, 0.9, 2.0, 3.0):  # 0.9 -> 0.9 is not an increase
        obj.end_epoch(1, {"mi": mi})
        modes.append(obj.aggressive)
    assert modes == [True, True, True, False, False, False]
    restored = LaggingVAE(trainer.model, obj.settings, 10)
    restored.load_extra_state(json.loads(json.dumps(obj.extra_state())))
    assert restored.aggressive is False and restored.previous_mi == 0.9


def test_lagging_stops_on_he_et_al_s_batch_mi_as_their_text_py_does(tmp_path, corpora):
    """Their rule: cur_mi - pre_mi < 0 ends the phase (pre_mi starts at 0), on calc_mi's batch-wise estimate."""
    trainer = Trainer(
        tiny_config("lagging", epochs=1, max_train=64), tmp_path / "lag", str(DATA), "cpu", progress=False
    )
    obj: LaggingVAE = trainer.objective
    assert (obj.settings.aggressive_stop, obj.settings.clip) == ("batch-mi", "joint")  # He et al.'s, the defaults
    modes = []
    for mi in (3.2, 3.4, 3.4, 3.39, 3.5):  # equal is not a decrease; 3.39 < 3.4 is
        obj.end_epoch(1, {"mi": 99.0, "mi_batch": mi})
        modes.append(obj.aggressive)
    assert modes == [True, True, True, False, False]


def test_he_et_al_s_batch_mi_groups_a_split_by_length_in_batches_of_32():
    from core.library.metrics import batch_mi, batchwise_mi

    g = torch.Generator().manual_seed(0)
    lengths = torch.tensor([5] * 40 + [7] * 3 + [9] * 1)[torch.randperm(44, generator=g)]
    mu, logvar = torch.randn(44, 4, generator=g) * 2, torch.full((44, 4), -1.0)
    order = torch.sort(lengths, stable=True).indices
    m, lv = mu[order], logvar[order]
    expected = 0.0
    gen = torch.Generator().manual_seed(1)
    for part in (slice(0, 32), slice(32, 40), slice(40, 43)):  # 32 + 8 of length 5, 3 of length 7, 1 of 9 (0)
        expected += float(batch_mi(m[part], lv[part], gen)) * (part.stop - part.start)
    assert batchwise_mi(mu, logvar, lengths, torch.Generator().manual_seed(1)) == pytest.approx(expected / 44)


def test_lagging_joint_clip_steps_the_encoder_as_clip_grad_norm_over_the_whole_vae(tmp_path, corpora):
    """He et al.'s encoder step: backward through the whole VAE, clip_grad_norm_(vae.parameters()), then
    only the encoder's optimiser steps."""
    trainer = Trainer(
        tiny_config("lagging", epochs=1, max_train=64), tmp_path / "lag", str(DATA), "cpu", progress=False
    )
    model, obj = trainer.model, trainer.objective
    batch = next(trainer.train_data.batches(32, torch.Generator().manual_seed(0)))
    start = {k: v.clone() for k, v in model.state_dict().items()}
    torch.manual_seed(3)
    loss, _ = obj.loss(model, batch)
    model.zero_grad()
    loss.backward()
    whole = torch.nn.utils.get_total_norm([p.grad for p in model.parameters()])
    alone = torch.nn.utils.get_total_norm([p.grad for p in model.encoder.parameters()])
    assert alone < whole
    # between the two: the decoder's gradient shortens the encoder's step, which alone would not be clipped
    clip = float(alone + whole) / 2
    assert torch.nn.utils.clip_grad_norm_(model.parameters(), clip) > clip
    expected = {n: (p - p.grad).detach() for n, p in model.named_parameters() if n.startswith("encoder")}
    model.load_state_dict(start)
    torch.manual_seed(3)
    ctx = StepContext(trainer.optimizers, clip, None)
    ctx.step(lambda b: obj.loss(model, b), batch, ["encoder"], clip_with=["encoder", "decoder"])
    for n, p in model.named_parameters():
        if n.startswith("encoder"):
            assert torch.allclose(p, expected[n], atol=1e-6), n
        else:
            assert torch.equal(p, start[n]), n  # the decoder did not move


def test_lagging_inner_loop_updates_only_the_encoder_on_fresh_batches(tmp_path, corpora):
    trainer = Trainer(
        tiny_config("lagging", epochs=1, max_train=640, aggressive_max_steps=12, aggressive_window=4),
        tmp_path / "lag",
        str(DATA),
        "cpu",
        progress=False,
    )
    model, obj = trainer.model, trainer.objective
    stream = trainer.extra_batches(1)
    drawn = []
    ctx = StepContext(trainer.optimizers, 5.0, lambda: drawn.append(1) or next(stream))
    batch = next(trainer.train_data.batches(32, torch.Generator().manual_seed(0)))
    snapshot = lambda m: [p.detach().clone() for p in m.parameters()]  # noqa: E731
    enc0, dec0 = snapshot(model.encoder), snapshot(model.decoder)
    stats = obj.train_step(model, batch, ctx)
    inner = int(stats["inner_steps"])
    assert 4 <= inner <= 12 and len(drawn) == inner - 1  # the first inner step uses the step's own batch
    assert any(not torch.equal(a, b) for a, b in zip(enc0, snapshot(model.encoder)))
    # The decoder moved exactly once: one SGD step of the final decoder update (lr 1, clip 5).
    moved = torch.sqrt(sum(((a - b) ** 2).sum() for a, b in zip(dec0, snapshot(model.decoder))))
    assert 0 < float(moved) <= 5.0 + 1e-4
    obj.aggressive = False
    drawn.clear()
    obj.train_step(model, batch, ctx)
    assert drawn == []


def test_vae_mine_drops_decoder_words_only_when_asked(corpora):
    sents = read_split("ptb", "valid", DATA, limit=200)
    data = Dataset(sents, Vocab.build(sents))
    batch = data.batch(torch.arange(len(data)))
    cls = objective_class("vae-mine")
    model = TextVAE(len(data.vocab), tiny_config().model)
    paper, asked = (cls(model, cls.config(**s).settings, len(data.vocab)) for s in ({}, {"word_dropout": 0.5}))
    assert paper.decoder_inputs(batch) is None
    dropped = asked.decoder_inputs(batch)
    assert 0.4 < float(dropped.eq(3).sum() - batch.inputs.eq(3).sum()) / float(batch.inputs.gt(3).sum()) < 0.6
    asked.eval()
    assert asked.decoder_inputs(batch) is None  # never when evaluating
