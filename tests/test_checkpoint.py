"""Bundles: what is saved, and a clear error naming the file for each way a bundle can be broken."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from safetensors.torch import load_file, save_file

import core
from core.library.checkpoint import load_bundle
from core.library.errors import CheckpointError


@pytest.fixture
def bundle(mine_bundle, tmp_path) -> Path:
    copy = tmp_path / "bundle"
    shutil.copytree(mine_bundle, copy)
    return copy


def test_bundle_holds_the_promised_files_and_nothing_pickled(mine_bundle):
    names = {p.name for p in mine_bundle.iterdir()}
    assert {"model.safetensors", "config.json", "vocab.txt", "metrics.json", "train_log.jsonl"} <= names
    assert not list(mine_bundle.rglob("*.pt")) and not list(mine_bundle.rglob("*.pkl"))
    config = json.loads((mine_bundle / "config.json").read_text())
    assert config["run"]["objective"]["name"] == "vae-mine" and config["run"]["model"]["hidden_dim"] == 64
    weights = load_file(str(mine_bundle / "model.safetensors"))
    assert any(k.startswith("objective.energy.") for k in weights)  # the energy network travels with the model


def test_reloaded_model_gives_identical_outputs(mine_bundle):
    a, b = core.load(mine_bundle), core.load(mine_bundle)
    mu_a, lv_a = a.encode(["the company said it would sell"])
    mu_b, lv_b = b.encode(["the company said it would sell"])
    assert (mu_a == mu_b).all() and (lv_a == lv_b).all()


def test_fp16_weights_load(bundle, mine_bundle):
    w = load_file(str(bundle / "model.safetensors"))
    save_file({k: v.half() if v.is_floating_point() else v for k, v in w.items()}, str(bundle / "model.safetensors"))
    mu, _ = core.load(bundle).encode(["the market fell"])
    ref, _ = core.load(mine_bundle).encode(["the market fell"])
    assert mu.dtype.name == "float32" and (abs(mu - ref) < 1e-2).all()


@pytest.mark.parametrize("name", ["model.safetensors", "config.json", "vocab.txt"])
def test_missing_file_is_named(bundle, name):
    (bundle / name).unlink()
    with pytest.raises(CheckpointError, match=f"missing .*{name}"):
        load_bundle(bundle)


def test_corrupt_weights_are_named(bundle):
    data = (bundle / "model.safetensors").read_bytes()
    (bundle / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="corrupt weights file .*model.safetensors"):
        load_bundle(bundle)
    (bundle / "model.safetensors").write_bytes(b"\x00" * 100)
    with pytest.raises(CheckpointError, match="model.safetensors"):
        load_bundle(bundle)


def test_corrupt_config_is_named(bundle):
    (bundle / "config.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="corrupt config file .*config.json"):
        load_bundle(bundle)


def test_mismatched_config_and_weights_are_named(bundle):
    cfg = json.loads((bundle / "config.json").read_text())
    cfg["run"]["model"]["hidden_dim"] = 96
    (bundle / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match=r"weights file .*model.safetensors does not match .*wrong shape"):
        load_bundle(bundle)


def test_mismatched_vocab_is_named(bundle):
    words = (bundle / "vocab.txt").read_text().splitlines()
    (bundle / "vocab.txt").write_text("\n".join(words[:-5]) + "\n")
    with pytest.raises(CheckpointError, match=r"vocab.txt has \d+ words but .*config.json says"):
        load_bundle(bundle)


def test_weights_of_another_objective_are_refused(bundle):
    w = load_file(str(bundle / "model.safetensors"))
    save_file({k: v for k, v in w.items() if not k.startswith("objective.")}, str(bundle / "model.safetensors"))
    with pytest.raises(CheckpointError, match="missing: objective.energy"):
        load_bundle(bundle)


def test_missing_folder_is_named(tmp_path):
    with pytest.raises(CheckpointError, match=f"checkpoint folder not found: {tmp_path / 'nope'}"):
        core.load(tmp_path / "nope")


def test_models_are_built_with_he_et_als_layers_and_older_bundles_keep_their_biases(tmp_path, any_corpora):
    """By default the three layers have no bias, as He et al.'s code builds them (with them, our
    LaggingVAE's code collapsed where theirs did not: docs/lagging-reference.md), end to end; a config
    that records no layer_biases (every bundle trained before) reads as the biased layers it has."""
    from conftest import tiny_config

    from core.library.objectives import departures
    from core.library.training import train

    cfg = tiny_config("vae", epochs=1, max_train=100)
    assert cfg.model.layer_biases is False and not departures(cfg)
    train(cfg, tmp_path / "run", str(any_corpora), "cpu", progress=False)
    cfg2, _, model, _ = load_bundle(tmp_path / "run")
    assert cfg2.model.layer_biases is False
    assert model.encoder.to_gaussian.bias is None and model.decoder.init_state.bias is None
    assert model.decoder.project.bias is None and not model.decoder.output_bias().any()
    older = Path(__file__).parent / "fixtures" / "format1" / "vae-mine"  # a bundle from before the field
    assert "layer_biases" not in json.loads((older / "config.json").read_text())["run"]["model"]
    old, _, model, _ = load_bundle(older)
    assert old.model.layer_biases is True and model.decoder.project.bias is not None
    assert departures(old)["layer_biases"] is True
    for shipped in (Path(__file__).parent.parent / "checkpoints").iterdir():  # every shipped one: He et al.'s
        assert json.loads((shipped / "config.json").read_text())["run"]["model"]["layer_biases"] is False


def test_a_killed_writers_temporary_file_is_removed_by_the_next_write(tmp_path):
    """atomic_write leaves no torn target; what a kill leaves (its temporary file) goes at the next
    write of that target once it is STALE_S old, while a live writer's younger one is left alone."""
    import os
    import time

    from core.library.files import STALE_S, atomic_write

    target = tmp_path / "model.safetensors"
    stale, live = tmp_path / ".model.safetensors.abc123", tmp_path / ".model.safetensors.def456"
    stale.write_bytes(b"torn"), live.write_bytes(b"being written")
    old = time.time() - STALE_S - 5
    os.utime(stale, (old, old))
    atomic_write(target, lambda tmp: open(tmp, "w").write("whole"))
    assert target.read_text() == "whole" and oct(target.stat().st_mode & 0o777) == "0o644"
    assert not stale.exists() and live.exists()
