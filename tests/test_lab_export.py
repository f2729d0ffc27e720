"""core.serving.lab (the classroom's live training) and core.export (shipping a run), on real corpora."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import torch
from safetensors import safe_open

import core
from core.commands.export import export
from core.library.errors import InputError, VaeMineError
from core.serving.lab import LabConfig, live_training
from explorer.context import Context
from explorer.tabs.collapse import Lab

LAB = LabConfig(corpus="flickr8k", max_train=256, max_valid=64, seconds=6)


def test_lab_trains_both_models_in_turn_until_time_is_up(data_dir):
    start = time.monotonic()
    lines = list(live_training(LAB, str(data_dir)))
    took = time.monotonic() - start
    assert [ln["model"] for ln in lines[:4]] == ["vae", "vae-mine", "vae", "vae-mine"]
    vae_epochs = [ln["epoch"] for ln in lines if ln["model"] == "vae"]
    assert vae_epochs == list(range(1, len(vae_epochs) + 1)) and len(vae_epochs) >= 2
    assert all({"val_kl", "val_mi", "val_au", "val_nll"} <= set(ln) for ln in lines)
    assert lines[-1]["elapsed"] < LAB.seconds + 10 and took < LAB.seconds + 30
    vae = [ln["val_nll"] for ln in lines if ln["model"] == "vae"]
    assert vae[-1] < vae[0]  # it really trains


def test_lab_ends_when_every_schedule_has_run_out(data_dir):
    cfg = LabConfig(corpus="flickr8k", max_train=128, max_valid=32, seconds=600)
    start = time.monotonic()
    lines = list(live_training(cfg, str(data_dir)))
    last = {ln["model"]: ln for ln in lines}
    assert all(ln["done"] for ln in last.values()) and time.monotonic() - start < 300
    assert sum(ln["done"] for ln in lines) == 2  # a model leaves the loop when its schedule runs out


def test_lab_stops_when_asked_and_refuses_a_second_run(data_dir, tmp_path):
    stop = threading.Event()
    got = []
    for line in live_training(
        LabConfig(corpus="flickr8k", max_train=256, max_valid=64, seconds=300), str(data_dir), stop
    ):
        got.append(line)
        stop.set()
    assert len(got) == 1
    with pytest.raises(InputError, match="seconds must be a number between 1 and 600"):
        next(live_training(LabConfig(seconds=0), str(data_dir)))
    lab = Lab(Context(tmp_path, str(data_dir), tmp_path))
    first = lab.run("flickr8k", 300, 256, session="teacher")
    next(first)  # holds the lab
    busy = list(lab.run("flickr8k", 10, 256, session="student"))
    assert "a lab started by another browser has been running for" in busy[0][1]
    assert "only the browser that started it can stop it" in lab.request_stop("student")
    assert "still running" in list(lab.run("flickr8k", 10, 256, session="teacher"))[0][1]
    assert "stopping" in lab.request_stop("teacher")
    rest = list(first)
    assert "finished (stopped)" in rest[-1][1]
    assert "no lab is running" in lab.request_stop("student")


def test_export_writes_fp16_weights_and_a_card(mine_bundle, data_dir, tmp_path):
    out = tmp_path / "shipped"
    metrics = export(mine_bundle, out, "float16", "python -m core.train ...", str(data_dir))
    with safe_open(str(out / "model.safetensors"), "pt") as f:
        assert {f.get_tensor(k).dtype for k in f.keys()} == {torch.float16}
    assert (out / "model.safetensors").stat().st_size < 0.6 * (mine_bundle / "model.safetensors").stat().st_size
    assert not (out / "resume").exists() and (out / "train_log.jsonl").is_file()
    card = (out / "README.md").read_text()
    shipped = metrics["shipped_test"]
    assert f"| as shipped (float16), test | {shipped['nll']:.2f} |" in card and "python -m core.train ..." in card
    a, b = core.load(mine_bundle), core.load(out)
    sentence = "the company said it expects higher sales"
    assert b.encode(sentence)[0] == pytest.approx(a.encode(sentence)[0], abs=0.02)
    assert shipped["nll"] == pytest.approx(a.metrics["test"]["nll"], abs=0.5)
    with pytest.raises(VaeMineError, match="exists"):
        export(mine_bundle, out)
    with pytest.raises(VaeMineError, match="no metrics.json"):
        export(tmp_path, tmp_path / "x")


def test_export_ships_an_atlas_that_the_explorer_answers_from(mine_bundle, data_dir, tmp_path):
    out = tmp_path / "ckpts" / "mine"
    export(mine_bundle, out, data_dir=str(data_dir))
    assert "atlas.safetensors" in (out / "README.md").read_text()
    model = core.load(out)
    ctx = Context(tmp_path / "ckpts", str(data_dir), tmp_path / "cache")
    train = ctx.sentences(model, "train")
    shipped = model.atlas("means", "train", None, ctx.split_digest(model, "train"))
    assert shipped.shape == (len(train), model.z_dim)
    assert shipped[-50:] == pytest.approx(model.encode(train[-50:])[0], abs=0.01)  # float16, the whole split
    assert model.atlas("means", "train", None, "0" * 16) is None  # built from another text: not used
    assert np.array_equal(ctx.posterior_means(model, "train"), shipped)
    coords, cached = ctx.cached_array("umap", model, "valid", 2000, lambda: pytest.fail("the atlas holds the map"))
    assert coords.shape == (2000, 2) and cached and np.isfinite(coords).all()
    assert not (tmp_path / "cache").exists()  # nothing was built
    export(mine_bundle, tmp_path / "bare", data_dir=str(data_dir), with_atlas=False)
    assert not (tmp_path / "bare" / "atlas.safetensors").exists()


def test_a_shipped_probe_file_keeps_evenly_spaced_epochs_first_and_last(tmp_path):
    from core.library.checkpoint import append_probe, copy_probe, read_probe

    run, ship = tmp_path / "run", tmp_path / "ship"
    run.mkdir(), ship.mkdir()
    for epoch in range(1, 31):
        append_probe(run, epoch, torch.full((4, 2), float(epoch)))
    copy_probe(run, ship, 12)
    epochs, means = read_probe(ship)
    assert epochs[0] == 1 and epochs[-1] == 30 and len(epochs) == 12
    assert torch.equal(means[:, 0, 0].float(), epochs.float())  # each epoch keeps its own means
    copy_probe(run, ship, 1)
    assert read_probe(ship)[0].tolist() == [30]


def test_the_lab_default_separates_the_models_after_the_epochs_it_reaches_in_a_minute(data_dir):
    """bench.lab: in 60 s on the 2-core CPU both models reach 24 or more epochs; no timed assertion here."""
    stop, last = threading.Event(), {}
    for line in live_training(LabConfig(seconds=600), str(data_dir), stop):
        last[line["model"]] = line
        if len(last) == 2 and all(ln["epoch"] >= 24 for ln in last.values()):
            stop.set()
    vae, mine = last["vae"], last["vae-mine"]
    assert vae["epoch"] == mine["epoch"] == 24
    assert vae["val_kl"] < 0.05 and vae["val_mi"] < 0.05  # collapsed
    # informative: MI 0.22 and AU 5 at epoch 24 on this machine (seed 1; the same at the session's base
    # commit 7724453, so not a change of ours; the 0.6-0.8 in docs/api.md were time-bound runs of 25-29 epochs)
    assert mine["val_mi"] >= 0.15 and mine["val_au"] >= 3 and mine["val_kl"] > 5 * vae["val_kl"]
