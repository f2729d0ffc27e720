"""Shared fixtures: the real corpora, and tiny models trained on real PTB slices in this session.

A test that reads a corpus asks for the `corpora` fixture (module-wide through `pytestmark`): it
fails when $VAE_MINE_DATA is set but the corpus is missing there, and skips, saying why, when
$VAE_MINE_DATA is not set. CI sets it, so CI runs every test. A test that needs some corpus but
not PTB's text (a bundle to load, corrupt and reload) asks for `any_corpora`: the real data folder
where $VAE_MINE_DATA is set, else a synthetic PTB-shaped folder, so it runs on a clone without data.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest
import torch

from core.library.config import PRESETS, RunConfig, TrainConfig
from core.library.objectives import objective_class
from core.library.training import train

# The markers (registered in pyproject.toml), by module: one place says which tests are the slow kinds, so
# `pytest -m "not e2e and not cluster and not slow"` is the fast loop (README, Contributing).
E2E = {"test_app_e2e", "test_boundary", "test_hostile_bundles"}  # the real app, in Chromium or over HTTP
CLUSTER = {"test_cluster"}  # a real local Ray cluster
SLOW = {
    "test_catalogue",
    "test_ngram",
    "test_training",
    "test_precision",
    "test_lab_export",
    "test_sweep_reproduce",
    "test_campaign",
    "test_mine_variants",
    "test_own_corpora",
    "test_graphs",
    "test_layout",
    "test_mine",
    "test_mine_figures",
    "test_objectives",
}


def pytest_collection_modifyitems(items):
    for item in items:
        module = item.module.__name__.rsplit(".", 1)[-1]
        if module in E2E:  # (and test_docs' blocks that call the explorer, marked there)
            item.add_marker(pytest.mark.e2e)
        if module in CLUSTER:
            item.add_marker(pytest.mark.cluster)
        if module in SLOW:
            item.add_marker(pytest.mark.slow)


ENV_DATA = os.environ.get("VAE_MINE_DATA")
DATA = Path(ENV_DATA).resolve() if ENV_DATA else Path("data").resolve()

torch.set_num_threads(min(2, torch.get_num_threads()))


def tiny_config(
    model: str = "vae-mine",
    epochs: int = 2,
    max_train: int = 1500,
    seed: int = 7,
    decay_from_epoch: int = 1,
    **settings,
) -> RunConfig:
    """A tiny run on real PTB; the lr rule may act from epoch 1 so short runs exercise it."""
    return RunConfig(
        corpus="ptb",
        config_name="tiny",
        model=PRESETS["tiny"],
        objective=objective_class(model).config(**settings),
        train=TrainConfig(
            epochs=epochs, max_train=max_train, seed=seed, eval_batch_size=256, decay_from_epoch=decay_from_epoch
        ),
    )


@pytest.fixture(scope="session")
def corpora() -> Path:
    """The data folder holding the corpora (see the module docstring for fail / skip)."""
    if not ENV_DATA:
        pytest.skip("needs the corpora: set VAE_MINE_DATA to the data folder (CI uses ../shared/data)")
    if not (DATA / "ptb" / "train.txt").is_file():
        pytest.fail(f"VAE_MINE_DATA={ENV_DATA} but {DATA / 'ptb' / 'train.txt'} is missing")
    return DATA


@pytest.fixture(scope="session")
def data_dir(corpora) -> Path:
    return corpora


@pytest.fixture(scope="session")
def any_corpora(tmp_path_factory) -> Path:
    """The real data folder where $VAE_MINE_DATA is set (as `corpora`), else a synthetic one: a `ptb`
    folder of sentences drawn from a small made-up vocabulary (seeded), no corpus text at all."""
    if ENV_DATA:
        if not (DATA / "ptb" / "train.txt").is_file():
            pytest.fail(f"VAE_MINE_DATA={ENV_DATA} but {DATA / 'ptb' / 'train.txt'} is missing")
        return DATA
    root = tmp_path_factory.mktemp("synthetic-data")
    rng = random.Random(0)
    words = [f"w{i}" for i in range(300)] + "the market fell a dog runs company said it would sell".split()
    (root / "ptb").mkdir()
    for split, n in (("train", 2000), ("valid", 300), ("test", 300)):
        lines = (" ".join(rng.choice(words) for _ in range(rng.randint(3, 15))) for _ in range(n))
        (root / "ptb" / f"{split}.txt").write_text("\n".join(lines) + "\n")
    return root


@pytest.fixture(scope="session")
def mine_bundle(tmp_path_factory, any_corpora) -> Path:
    """A tiny VAE-MINE trained for 2 epochs on the first 1,500 PTB training sentences (synthetic ones
    on a clone without the corpora: see any_corpora)."""
    out = tmp_path_factory.mktemp("runs") / "mine"
    train(tiny_config("vae-mine"), out, str(any_corpora), "cpu", progress=False)
    return out
