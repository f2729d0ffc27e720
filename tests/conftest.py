"""Shared fixtures: the real corpora, and tiny models trained on real PTB slices in this session."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from core.config import PRESETS, ObjectiveConfig, RunConfig, TrainConfig
from core.train import train

DATA = Path(os.environ.get("VAE_MINE_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")).resolve()
if not (DATA / "ptb" / "train.txt").is_file():
    raise RuntimeError(f"tests need the corpora: no {DATA / 'ptb' / 'train.txt'} (set VAE_MINE_DATA)")

torch.set_num_threads(min(2, torch.get_num_threads()))


def tiny_config(model: str = "vae-mine", epochs: int = 2, max_train: int = 1500, seed: int = 7, **objective) -> RunConfig:
    return RunConfig(
        corpus="ptb",
        config_name="tiny",
        model=PRESETS["tiny"],
        objective=ObjectiveConfig(name=model, **objective),
        train=TrainConfig(epochs=epochs, max_train=max_train, seed=seed, eval_batch_size=256),
    )


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return DATA


@pytest.fixture(scope="session")
def mine_bundle(tmp_path_factory) -> Path:
    """A tiny VAE-MINE trained for 2 epochs on the first 1,500 PTB training sentences."""
    out = tmp_path_factory.mktemp("runs") / "mine"
    train(tiny_config("vae-mine"), out, str(DATA), "cpu", progress=False)
    return out
