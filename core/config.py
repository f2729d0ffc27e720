"""Plain dataclass configs, their named presets, and JSON round-tripping.

A checkpoint's config.json holds `RunConfig.to_dict()` (read back by core.checkpoint.run_config_from_dict): everything needed to rebuild the model and
objective and to continue training. An objective's settings are its own small dataclass (each
objective file owns it); this module only carries them.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from .errors import CheckpointError
from .tokenize import LEGACY


DROPOUT_MASKS = ("uniform", "bernoulli")  # how core.models.Dropout may draw its masks


@dataclass(frozen=True)
class ModelConfig:
    emb_dim: int = 128
    hidden_dim: int = 512
    z_dim: int = 64
    dec_dropout_in: float = 0.5
    dec_dropout_out: float = 0.5
    energy_hidden: int = 512
    # How dropout draws its masks (core.models.Dropout): "uniform" (the default) or "bernoulli", which
    # configs that record none trained with.
    dropout_masks: str = "uniform"

    def __post_init__(self):
        if self.dropout_masks not in DROPOUT_MASKS:
            raise ValueError(f"dropout_masks must be one of {DROPOUT_MASKS}, not {self.dropout_masks!r}")


@dataclass(frozen=True)
class ObjectiveConfig:
    """Which objective (its registry name) and its settings (that objective's `Settings`)."""

    name: str = "vae"
    settings: Any = None


@dataclass(frozen=True)
class TrainConfig:
    batch_size: int = 32
    eval_batch_size: int = 128
    lr: float = 1.0
    clip: float = 5.0
    lr_decay: float = 0.5
    decay_patience: int = 2  # epochs without validation improvement before the lr is halved
    # First epoch (1-based) at which the lr may be halved: He et al.'s text.py halves only once its
    # 0-based epoch counter reaches 15, i.e. from the 16th epoch. Bundles of format 1 halved from epoch 1.
    decay_from_epoch: int = 16
    max_halvings: int = 5
    epochs: int = 100
    # A wall-clock budget beside the epoch budget: no epoch starts that would end, if as long as the
    # last, past this many minutes of training (validation included, summed over resumes). Models whose
    # epochs cost very different times (LaggingVAE's aggressive epochs) then train on equal terms of
    # time, and a run given N minutes is done within about N (a campaign's deadline can trust it).
    minutes: float | None = None
    seed: int = 783435
    max_train: int | None = None
    max_valid: int | None = None  # use the first N validation sentences (the classroom lab's quick runs)
    probe_sentences: int = 500  # posterior means of the first N validation sentences are saved each epoch
    max_vocab: int = 20_000
    max_len: int = 200
    init_range: float = 0.01
    emb_init_range: float = 0.1
    # What the forward passes compute in (core.precision): "fp32", or "bf16" matrix products with
    # float32 weights, optimiser state and loss sums. Configs that record none trained in fp32.
    precision: str = "fp32"


# What format-1 bundles (written before these fields existed) did, so that they resume unchanged.
TRAIN_LEGACY = {"decay_from_epoch": 1}
# What a config that does not record these model fields trained with (bundles of either format).
MODEL_UNRECORDED = {"dropout_masks": "bernoulli"}


@dataclass(frozen=True)
class RunConfig:
    corpus: str = "ptb"  # a name under the data directory, or an absolute path (core.corpora.resolve)
    config_name: str = "paper"
    model: ModelConfig = field(default_factory=ModelConfig)
    objective: ObjectiveConfig = field(default_factory=ObjectiveConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    tokenizer: str = LEGACY  # core.tokenize's name; the default is what bundles that record none did
    corpus_sha256: str | None = None  # of the training file, recorded when training starts

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)



def build_dataclass(kind, d: dict[str, Any], source: str):
    """kind(**d), with a CheckpointError naming any field kind does not have."""
    if not isinstance(d, dict):
        raise CheckpointError(f"{source}: {kind.__name__} must be a JSON object")
    unknown = set(d) - {f.name for f in fields(kind)}
    if unknown:
        raise CheckpointError(f"{source}: unknown {kind.__name__} fields {sorted(unknown)}")
    return kind(**d)


def parse_value(kind: type, raw: str, what: str):
    """A command-line string as a dataclass field's type (bool, int, float or str)."""
    if kind is bool:
        if raw.lower() not in ("true", "false", "1", "0"):
            raise ValueError(f"{what} must be true or false")
        return raw.lower() in ("true", "1")
    try:
        return kind(raw)
    except ValueError:
        raise ValueError(f"{what} must be a {kind.__name__}") from None


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
    return path.stem, build_dataclass(ModelConfig, d, str(path))


__all__ = ["ModelConfig", "ObjectiveConfig", "TrainConfig", "RunConfig", "PRESETS", "model_config", "replace",
           "build_dataclass", "parse_value", "TRAIN_LEGACY", "MODEL_UNRECORDED", "DROPOUT_MASKS"]
