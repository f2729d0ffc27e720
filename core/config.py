"""Plain dataclass configs, their named presets, and JSON round-tripping.

A checkpoint's config.json is `RunConfig.to_dict()`: everything needed to rebuild the model and
objective and to continue training.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from .errors import CheckpointError


@dataclass(frozen=True)
class ModelConfig:
    emb_dim: int = 128
    hidden_dim: int = 512
    z_dim: int = 64
    dec_dropout_in: float = 0.5
    dec_dropout_out: float = 0.5
    energy_hidden: int = 512


@dataclass(frozen=True)
class ObjectiveConfig:
    """Which objective and its knobs; each objective reads only the fields it needs."""

    name: str = "vae"
    kl_weight: float = 1.0
    alpha: float = 3.0  # VAE-MINE weight of the MI bound; the paper sweeps 2.0 ... 5.0
    energy_lr_scale: float = 0.1  # VAE-MINE energy network's SGD lr, relative to the model's
    energy_bound: float = 10.0  # VAE-MINE energy outputs squashed into (-bound, bound)
    energy_standardize_h: bool = True  # VAE-MINE energy reads h_x standardised across the batch
    energy_gauge: float = 0.01  # VAE-MINE: weight pinning the energy's free offset at xi* = 1
    kl_start: float = 0.1  # vae-0.5, vae-bow: KL weight at the start of the linear anneal
    anneal_epochs: float = 10.0  # vae-0.5, vae-bow: epochs over which the KL weight rises to 1
    word_dropout: float = 0.5  # vae-0.5: share of decoder input words replaced by <unk>
    bow_lr_scale: float = 0.1  # vae-bow: SGD lr of the bag-of-words network, relative to the model's
    mmd_weight: float = 10.0  # infovae: weight of MMD(q(z), p(z)) added to the negative ELBO
    cycles: int = 4  # cyclical: number of beta cycles, then beta = 1
    cycle_epochs: float = 10.0  # cyclical: length of one cycle
    cycle_ratio: float = 0.5  # cyclical: share of a cycle over which beta rises from 0 to 1
    aggressive_max_steps: int = 100  # lagging: most encoder steps per decoder step
    aggressive_window: int = 15  # lagging: inner steps per loss comparison of the stop rule


@dataclass(frozen=True)
class TrainConfig:
    batch_size: int = 32
    eval_batch_size: int = 128
    lr: float = 1.0
    clip: float = 5.0
    lr_decay: float = 0.5
    decay_patience: int = 2  # epochs without validation improvement before the lr is halved
    max_halvings: int = 5
    epochs: int = 100
    seed: int = 783435
    max_train: int | None = None
    max_valid: int | None = None  # use the first N validation sentences (the classroom lab's quick runs)
    max_vocab: int = 20_000
    max_len: int = 200
    init_range: float = 0.01
    emb_init_range: float = 0.1


@dataclass(frozen=True)
class RunConfig:
    corpus: str = "ptb"
    config_name: str = "paper"
    model: ModelConfig = field(default_factory=ModelConfig)
    objective: ObjectiveConfig = field(default_factory=ObjectiveConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any], source: str = "config") -> "RunConfig":
        try:
            return cls(
                corpus=d["corpus"],
                config_name=d.get("config_name", "custom"),
                model=_build(ModelConfig, d["model"], source),
                objective=_build(ObjectiveConfig, d["objective"], source),
                train=_build(TrainConfig, d["train"], source),
            )
        except KeyError as e:
            raise CheckpointError(f"{source}: missing section {e}") from None


def _build(kind, d: dict[str, Any], source: str):
    known = {f.name for f in fields(kind)}
    unknown = set(d) - known
    if unknown:
        raise CheckpointError(f"{source}: unknown {kind.__name__} fields {sorted(unknown)}")
    return kind(**d)


# Named presets. `paper` is the paper's architecture; `small` trains in minutes on a laptop CPU;
# `tiny` is for tests.
PRESETS: dict[str, ModelConfig] = {
    "paper": ModelConfig(),
    "small": ModelConfig(emb_dim=64, hidden_dim=256, z_dim=32, energy_hidden=256),
    "tiny": ModelConfig(emb_dim=32, hidden_dim=64, z_dim=8, energy_hidden=64),
}


def model_config(name_or_path: str) -> tuple[str, ModelConfig]:
    """A preset by name, or a JSON file holding ModelConfig fields."""
    if name_or_path in PRESETS:
        return name_or_path, PRESETS[name_or_path]
    path = Path(name_or_path)
    if not path.is_file():
        raise ValueError(f"--config: {name_or_path!r} is neither a preset {sorted(PRESETS)} nor a JSON file")
    try:
        d = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not valid JSON ({e})") from None
    return path.stem, _build(ModelConfig, d, str(path))


__all__ = ["ModelConfig", "ObjectiveConfig", "TrainConfig", "RunConfig", "PRESETS", "model_config", "replace"]
