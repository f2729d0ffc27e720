"""Graphed training steps (core/library/graphs.py) on the CPU: which steps a run graphs, and the graphed
step's arithmetic, run without capturing (CUDA graphs need a GPU; bench.graphs checks the
captured graphs there)."""

from __future__ import annotations

import math

import pytest
import torch
from conftest import tiny_config

from bench.graphs import CASES, compare, label, run_steps
from core.library.batching import Dataset, on_device
from core.library.corpora import read_split
from core.library.graphs import StepGraphs, choose, graph_support
from core.library.training import Trainer
from core.library.vocab import Vocab


def sgd(momentum: float = 0.0) -> dict[str, torch.optim.Optimizer]:
    return {"model": torch.optim.SGD([torch.nn.Parameter(torch.ones(2))], lr=1.0, momentum=momentum)}


def test_steps_are_graphed_only_on_cuda_with_plain_sgd_and_graphed_mode_says_why_not():
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert choose("auto", cpu, sgd())[0] is False and "CUDA device" in choose("auto", cpu, sgd())[1]
    assert choose("eager", cuda, sgd()) == (False, "eager steps (--cuda-graphs eager)")
    assert graph_support(cuda, sgd()) is None and choose("auto", cuda, sgd())[0] is True
    assert "plain SGD" in graph_support(cuda, sgd(momentum=0.9))
    with pytest.raises(ValueError, match="--cuda-graphs graphed: CUDA graphs need a CUDA device"):
        choose("graphed", cpu, sgd())
    with pytest.raises(ValueError, match="must be one of auto, graphed, eager"):
        choose("always", cuda, sgd())


def test_a_cpu_run_trains_with_eager_steps_and_refuses_graphed_ones(tmp_path, any_corpora):
    trainer = Trainer(
        tiny_config("vae", epochs=1, max_train=64), tmp_path / "a", str(any_corpora), "cpu", progress=False
    )
    assert trainer.graphs is None
    with pytest.raises(ValueError, match="CUDA graphs need a CUDA device"):
        Trainer(
            tiny_config("vae", epochs=1, max_train=64),
            tmp_path / "b",
            str(any_corpora),
            "cpu",
            progress=False,
            cuda_graphs="graphed",
        )


@pytest.fixture(scope="module")
def ptb_slice(any_corpora) -> Dataset:
    return Dataset(
        read_split("ptb", "train", any_corpora, 700), Vocab.build(read_split("ptb", "train", any_corpora, 5000))
    )


@pytest.mark.parametrize("case", CASES, ids=label)
def test_the_graphed_step_trains_exactly_as_the_eager_one(case, ptb_slice):
    """Ten steps from one state, the KL weight moving every step and the lr halved after five: the
    same losses and parameters to the bit. The clip is set high enough never to act, because on
    the CPU the eager step folds it into the lr (StepContext._clipped_step), which rounds differently."""
    steps = 10
    if case[0] == "lagging":  # a shorter inner loop keeps the test short
        case = (case[0], {**case[1], "aggressive_max_steps": 12, "aggressive_window": 4})
        steps = 6  # unclipped, its encoder-only inner steps diverge from the 8th step on (He et al.'s layers)
    result = compare(case, "tiny", ptb_slice, torch.device("cpu"), steps=steps, capture=False, clip=1e9)
    assert result["graphs_failed"] is None and result["graphs"] > 0
    assert all(math.isfinite(x) for x in result["losses"]), result["losses"]  # a diverged run compares nothing
    assert result["max_rel_loss_diff"] == 0 and result["max_rel_param_diff"] == 0
    assert len(set(result["losses"])) == steps  # training moved


def test_the_graphed_step_leaves_a_filling_queue_and_cpu_batches_to_the_eager_step(ptb_slice):
    _, _, graphs = run_steps(
        ("vae-mine", {"negatives": "queue", "queue_size": 64}),
        "tiny",
        ptb_slice,
        torch.device("cpu"),
        True,
        steps=2,
        capture=False,
    )
    assert graphs.steps == {}  # two batches of 32 fill the queue of 64 only after the second step
    _, _, graphs = run_steps(
        ("vae-mine", {"negatives": "queue", "queue_size": 64}),
        "tiny",
        ptb_slice,
        torch.device("cpu"),
        True,
        steps=3,
        capture=False,
    )
    assert len(graphs.steps) == 1
    batch = next(ptb_slice.batches(32))
    assert on_device([batch], torch.device("cpu"))[0] is batch and batch.device_lengths is None
    assert graphs.run(lambda b: (_ for _ in ()).throw(AssertionError("ran")), batch, ["model"]) is None


@pytest.mark.parametrize("name", ["cyclical", "lagging", "vae-mine"])
def test_the_graphed_step_clips_as_the_eager_one(name, ptb_slice, monkeypatch):
    """With the clip acting (0.5), against the eager step that rescales the gradients
    (clip_grad_norm_, then SGD), as it does on a GPU: bit for bit."""
    monkeypatch.setattr("core.library.objectives.base.plain_sgd", lambda opt: False)
    settings = {"aggressive_max_steps": 12, "aggressive_window": 4} if name == "lagging" else {}
    result = compare((name, settings), "tiny", ptb_slice, torch.device("cpu"), steps=6, capture=False, clip=0.5)
    assert result["max_rel_loss_diff"] == 0 and result["max_rel_param_diff"] == 0


def test_a_halving_captures_every_step_again(ptb_slice, any_corpora):
    """The lrs are constants of the graphs: after a halving each shape is captured anew."""
    one_batch = Dataset(read_split("ptb", "train", any_corpora, 32), ptb_slice.vocab)  # every step has one shape
    _, _, graphs = run_steps(("vae", {}), "tiny", one_batch, torch.device("cpu"), True, steps=10, capture=False)
    assert graphs.captures == 2 and len(graphs.steps) == 1


def test_steps_whose_capture_fails_run_eagerly_and_graphs_are_given_up_after_enough(ptb_slice, monkeypatch, caplog):
    def refuse(self, loss_fn, batch, groups, clip_with=()):
        raise RuntimeError("CUDA error: operation not permitted when stream is capturing")

    monkeypatch.setattr(StepGraphs, "_make", refuse)
    monkeypatch.setattr("core.library.graphs.MAX_FAILED", 3)
    eager_losses, eager_params, _ = run_steps(("vae-mine", {}), "tiny", ptb_slice, torch.device("cpu"), False, steps=6)
    losses, params, graphs = run_steps(
        ("vae-mine", {}), "tiny", ptb_slice, torch.device("cpu"), True, steps=6, capture=False
    )
    assert losses == eager_losses and all(torch.equal(a, b) for a, b in zip(params, eager_params))
    assert graphs.steps == {} and len(graphs.eager) == 3 and "3 captures failed" in graphs.failed
    assert "could not be captured as a CUDA graph (RuntimeError: CUDA error: operation not permitted" in caplog.text
