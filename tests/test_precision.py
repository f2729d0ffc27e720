"""Mixed precision (core.library.precision): bf16 runs resume bit-identically, keep float32 weights, and
evaluate within 0.02 nats of float32."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from conftest import tiny_config
from safetensors.torch import load_file

from core.commands.train import parser, run_config
from core.library import precision
from core.library.batching import Dataset
from core.library.checkpoint import load_bundle
from core.library.corpora import read_split
from core.library.evaluation import evaluate_split
from core.library.training import train

ROOT = Path(__file__).resolve().parents[1]
TOLERANCE = 0.02  # nats per sentence (the figures' own noise between seeds is larger)


def bf16(cfg):
    return replace(cfg, train=replace(cfg.train, precision="bf16"))


@pytest.mark.parametrize(
    "model, settings",
    [
        ("vae-mine", {"estimator": "infonce", "negatives": "re-encoded", "queue_size": 64}),
        ("lagging", {"aggressive_max_steps": 8, "aggressive_window": 3}),  # weights change inside one step
    ],
)
def test_a_resumed_bf16_run_ends_with_the_parameters_of_an_unbroken_one(tmp_path, model, settings, any_corpora):
    cfg = bf16(tiny_config(model, epochs=3, max_train=600, **settings))
    train(cfg, tmp_path / "straight", str(any_corpora), "cpu", progress=False)
    train(
        replace(cfg, train=replace(cfg.train, epochs=1)), tmp_path / "stopped", str(any_corpora), "cpu", progress=False
    )
    train(cfg, tmp_path / "stopped", str(any_corpora), "cpu", resume=True, progress=False)
    a, b = (load_file(str(tmp_path / run / "model.safetensors")) for run in ("straight", "stopped"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert {t.dtype for t in a.values() if t.is_floating_point()} == {torch.float32}  # master weights stay float32
    lines = [json.loads(x) for x in (tmp_path / "stopped" / "train_log.jsonl").read_text().splitlines()]
    assert [x["precision"] for x in lines] == ["bf16"] * 3
    assert json.loads((tmp_path / "stopped" / "config.json").read_text())["run"]["train"]["precision"] == "bf16"
    assert json.loads((tmp_path / "stopped" / "metrics.json").read_text())["precision"] == "bf16"


def test_a_bf16_run_differs_from_fp32_and_resume_refuses_another_precision(tmp_path, any_corpora):
    cfg = tiny_config("vae", epochs=1, max_train=300)
    train(cfg, tmp_path / "fp32", str(any_corpora), "cpu", progress=False)
    train(bf16(cfg), tmp_path / "bf16", str(any_corpora), "cpu", progress=False)
    a, b = (load_file(str(tmp_path / run / "model.safetensors")) for run in ("fp32", "bf16"))
    assert any(not torch.equal(a[k], b[k]) for k in a)  # the setting reaches the products
    with pytest.raises(Exception, match="precision"):
        train(
            replace(bf16(cfg), train=replace(bf16(cfg).train, epochs=2)),
            tmp_path / "fp32",
            str(any_corpora),
            "cpu",
            resume=True,
            progress=False,
        )


def test_precision_flag_resolves_auto_from_the_hardware(any_corpora):
    args = parser().parse_args(["--out", "x", "--corpus", "ptb", "--data-dir", str(any_corpora), "--precision", "auto"])
    assert run_config(args, "vae").train.precision == ("bf16" if precision.native_bf16(torch.device("cpu")) else "fp32")
    assert precision.resolve("fp32", torch.device("cpu")) == "fp32"
    with pytest.raises(ValueError, match="precision"):
        precision.resolve("fp16", torch.device("cpu"))


def figures(model, data, iw: int, prec: str) -> dict:
    return evaluate_split(model, data, 64, iw_samples=iw, seed=0, precision=prec)


def assert_agree(model, sentences: Dataset, iw_sentences: Dataset) -> None:
    a, b = figures(model, sentences, 0, "fp32"), figures(model, sentences, 0, "bf16")
    for key in ("nll", "reconstruction", "kl", "mi"):
        assert abs(a[key] - b[key]) <= TOLERANCE, (key, a[key], b[key])
    assert a["au"] == b["au"]
    a, b = figures(model, iw_sentences, 500, "fp32"), figures(model, iw_sentences, 500, "bf16")
    assert abs(a["iw_nll"] - b["iw_nll"]) <= TOLERANCE, (a["iw_nll"], b["iw_nll"])


@pytest.mark.parametrize("bundle", ["flickr8k-vae-mine-infonce", "flickr8k-lagging"])
def test_bf16_evaluation_agrees_with_fp32_on_a_shipped_flickr8k_model(bundle, corpora):
    cfg, vocab, model, _ = load_bundle(ROOT / "checkpoints" / bundle, torch.device("cpu"))
    model.float()
    read = lambda n: Dataset(read_split(cfg.corpus, "test", str(corpora), n, cfg.train.max_len, cfg.tokenizer), vocab)
    assert_agree(model, read(1000), read(40))


def test_bf16_evaluation_agrees_with_fp32_on_a_ptb_model(mine_bundle, corpora):
    cfg, vocab, model, _ = load_bundle(mine_bundle, torch.device("cpu"))
    read = lambda n: Dataset(read_split("ptb", "test", str(corpora), n, cfg.train.max_len, cfg.tokenizer), vocab)
    assert_agree(model, read(1000), read(30))
