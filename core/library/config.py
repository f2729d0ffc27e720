"""Plain dataclass configs, their named presets, and JSON round-tripping.

A checkpoint's config.json holds `RunConfig.to_dict()` (read back by core.library.checkpoint.run_config_from_dict):
everything needed to rebuild the model and objective and to continue training. An objective's settings are its
own small dataclass (each objective file owns it); this module only carries them.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from .errors import CheckpointError, SettingError
from .tokenize import UNRECORDED

DROPOUT_MASKS = ("uniform", "bernoulli")  # how core.library.models.Dropout may draw its masks


@dataclass(frozen=True)
class ModelConfig:
    emb_dim: int = 128
    hidden_dim: int = 512
    z_dim: int = 64
    dec_dropout_in: float = 0.5
    dec_dropout_out: float = 0.5
    energy_hidden: int = 512
    # How dropout draws its masks (core.library.models.Dropout): "uniform" (the default) or "bernoulli", which
    # configs that record none trained with.
    dropout_masks: str = "uniform"
    # False (the default): no bias in the encoder's output layer, the decoder's initial-state layer or its
    # output layer, as He et al.'s code builds them. True: this project's layers before, a departure with
    # which LaggingVAE's code collapsed where theirs did not (docs/lagging-reference.md).
    layer_biases: bool = False

    def __post_init__(self):
        if self.dropout_masks not in DROPOUT_MASKS:
            raise SettingError(f"dropout_masks must be one of {DROPOUT_MASKS}, not {self.dropout_masks!r}")

    def departures(self) -> dict[str, Any]:
        """Architecture fields that differ from He et al.'s code, whose layers every model here follows:
        what a model built with them is labelled with, beside its objective's departures."""
        return {"layer_biases": True} if self.layer_biases else {}


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
    # What the forward passes compute in (core.library.precision): "fp32", or "bf16" matrix products with
    # float32 weights, optimiser state and loss sums. Configs that record none trained in fp32.
    precision: str = "fp32"


# What format-1 bundles (written before these fields existed) did, so that they resume unchanged.
TRAIN_LEGACY = {"decay_from_epoch": 1}
# What a config that does not record these model fields trained with (bundles of either format).
MODEL_UNRECORDED = {"dropout_masks": "bernoulli", "layer_biases": True}


@dataclass(frozen=True)
class RunConfig:
    corpus: str = "ptb"  # a name under the data directory, or an absolute path (core.library.corpora.resolve)
    config_name: str = "paper"
    model: ModelConfig = field(default_factory=ModelConfig)
    objective: ObjectiveConfig = field(default_factory=ObjectiveConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    tokenizer: str = UNRECORDED  # core.library.tokenize's name; the default is what bundles that record none did
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
            raise SettingError(f"{what} must be true or false")
        return raw.lower() in ("true", "1")
    try:
        return kind(raw)
    except ValueError:
        raise SettingError(f"{what} must be a {kind.__name__}") from None


# What a config may hold, field by field (a bundle is untrusted input: core.library.checkpoint checks every
# config it reads against these before anything is allocated or any path is built).
RANGES: dict[str, tuple[float, float]] = {
    "emb_dim": (1, 4096),
    "hidden_dim": (1, 4096),
    "z_dim": (0, 1024),
    "energy_hidden": (1, 4096),
    "dec_dropout_in": (0, 1),
    "dec_dropout_out": (0, 1),
    "batch_size": (1, 65_536),
    "eval_batch_size": (1, 65_536),
    "lr": (0, 1e3),
    "clip": (0, 1e6),
    "lr_decay": (0, 1),
    "decay_patience": (0, 10_000),
    "decay_from_epoch": (0, 1_000_000),
    "max_halvings": (0, 1_000),
    "epochs": (0, 1_000_000),
    "minutes": (0, 1e9),
    "seed": (0, 2**63 - 1),
    "max_train": (1, 10**9),
    "max_valid": (1, 10**9),
    "probe_sentences": (0, 1_000_000),
    "max_vocab": (4, 10_000_000),
    "max_len": (2, 100_000),
    "init_range": (0, 10),
    "emb_init_range": (0, 10),
}
CHOICES = {"dropout_masks": DROPOUT_MASKS, "precision": ("fp32", "bf16")}
_KINDS = {"int": (int,), "float": (int, float), "str": (str,), "bool": (bool,)}


def check_fields(obj, source: str) -> None:
    """Each field of a config dataclass of the type its annotation names (an int is a float; a bool
    is not an int), finite, within RANGES and among CHOICES: ValueError naming the field otherwise."""
    import math

    for f in fields(obj):
        value, kinds = getattr(obj, f.name), str(f.type).replace(" ", "").split("|")
        if value is None and "None" in kinds:
            continue
        allowed = tuple(t for k in kinds for t in _KINDS.get(k, ()))
        if not allowed:
            continue
        if not isinstance(value, allowed) or (isinstance(value, bool) and bool not in allowed):
            raise SettingError(
                f"{source}: {f.name} must be {' or '.join(kinds)}, not {type(value).__name__} {value!r:.40}"
            )
        if isinstance(value, float) and not math.isfinite(value):
            raise SettingError(f"{source}: {f.name} must be finite, not {value}")
        low, high = RANGES.get(f.name, (-math.inf, math.inf))
        if isinstance(value, (int, float)) and not isinstance(value, bool) and not low <= value <= high:
            raise SettingError(f"{source}: {f.name} must be between {low:g} and {high:g}, not {value!r:.40}")
        if f.name in CHOICES and value not in CHOICES[f.name]:
            raise SettingError(f"{source}: {f.name} must be one of {CHOICES[f.name]}, not {value!r:.40}")


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
        raise SettingError(f"--config: {name_or_path!r} is neither a preset {sorted(PRESETS)} nor a JSON file")
    try:
        d = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise SettingError(f"{path}: not valid JSON ({e})") from None
    return path.stem, build_dataclass(ModelConfig, d, str(path))


__all__ = [
    "ModelConfig",
    "ObjectiveConfig",
    "TrainConfig",
    "RunConfig",
    "PRESETS",
    "model_config",
    "replace",
    "build_dataclass",
    "parse_value",
    "TRAIN_LEGACY",
    "MODEL_UNRECORDED",
    "DROPOUT_MASKS",
]
