"""Checkpoint bundles: a folder anyone can load without unpickling anything.

    model.safetensors   weights: `model.*` (encoder/decoder) and `objective.*` (e.g. the energy network)
    config.json         RunConfig + vocabulary size: enough to rebuild model and objective
    vocab.txt           one word a line, ids in line order
    metrics.json        evaluation figures written after training
    train_log.jsonl     one JSON line per epoch
    resume/             optimiser, RNG and loop state of the last finished epoch (for --resume)

Every write goes to a temporary file first and is renamed into place, so a run killed while
saving leaves the previous file intact.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from .config import RunConfig
from .errors import CheckpointError
from .models import TextVAE
from .objectives import Objective, build_objective, objective_class
from .vocab import Vocab

FORMAT = "vae-mine-bundle"
FORMAT_VERSION = 1
WEIGHTS, CONFIG, VOCAB, METRICS, LOG = "model.safetensors", "config.json", "vocab.txt", "metrics.json", "train_log.jsonl"


def atomic_write(path: Path, write) -> None:
    """Call write(tmp_path), then rename tmp_path onto path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: Path, obj: Any) -> None:
    atomic_write(path, lambda tmp: Path(tmp).write_text(json.dumps(obj, indent=2, sort_keys=False) + "\n"))


def save_tensors(path: Path, tensors: dict[str, torch.Tensor], dtype: torch.dtype | None = None) -> None:
    out = {}
    for k, v in tensors.items():
        v = v.detach().cpu()
        if dtype is not None and v.is_floating_point():
            v = v.to(dtype)
        out[k] = v.contiguous()
    atomic_write(path, lambda tmp: save_file(out, tmp, metadata={"format": FORMAT}))


def load_tensors(path: Path) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise CheckpointError(f"missing weights file: {path}")
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise CheckpointError(f"corrupt weights file {path}: {e}") from None


def weights_of(model: TextVAE, objective: Objective) -> dict[str, torch.Tensor]:
    sd = {f"model.{k}": v for k, v in model.state_dict().items()}
    sd.update({f"objective.{k}": v for k, v in objective.state_dict().items()})
    return sd


def save_config(folder: Path, cfg: RunConfig, vocab: Vocab) -> None:
    write_json(folder / CONFIG, {"format": FORMAT, "version": FORMAT_VERSION, "vocab_size": len(vocab), "run": cfg.to_dict()})


def save_bundle(folder: Path, cfg: RunConfig, vocab: Vocab, model: TextVAE, objective: Objective, dtype=None) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write(folder / VOCAB, vocab.save)
    save_config(folder, cfg, vocab)
    save_tensors(folder / WEIGHTS, weights_of(model, objective), dtype)


def read_config(folder: Path) -> tuple[RunConfig, int]:
    path = folder / CONFIG
    if not path.is_file():
        raise CheckpointError(f"missing config file: {path}")
    try:
        d = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"corrupt config file {path}: {e}") from None
    if not isinstance(d, dict) or d.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a {FORMAT} config")
    if d.get("version") != FORMAT_VERSION:
        raise CheckpointError(f"{path}: bundle version {d.get('version')} is not the supported {FORMAT_VERSION}")
    try:
        return RunConfig.from_dict(d["run"], str(path)), int(d["vocab_size"])
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"{path}: bad config ({e})") from None


def build(cfg: RunConfig, vocab_size: int) -> tuple[TextVAE, Objective]:
    """A fresh model and objective for this config (weights not initialised)."""
    latent = objective_class(cfg.objective.name).latent
    model = TextVAE(vocab_size, cfg.model, latent=latent)
    return model, build_objective(model, cfg.objective, vocab_size)


def load_weights(path: Path, model: TextVAE, objective: Objective, tensors: dict[str, torch.Tensor] | None = None) -> None:
    """Load a bundle's weights into model and objective; any missing, extra or misshapen key is an error."""
    tensors = load_tensors(path) if tensors is None else tensors
    expected = weights_of(model, objective)
    missing = sorted(set(expected) - set(tensors))
    extra = sorted(k for k in set(tensors) - set(expected) if k.startswith(("model.", "objective.")))
    bad = sorted(k for k in expected if k in tensors and tensors[k].shape != expected[k].shape)
    if missing or extra or bad:
        detail = "; ".join(
            f"{what}: {', '.join(keys[:4])}{' ...' if len(keys) > 4 else ''}"
            for what, keys in (("missing", missing), ("unexpected", extra), ("wrong shape", bad))
            if keys
        )
        raise CheckpointError(f"weights file {path} does not match its config.json ({detail})")
    with torch.no_grad():
        for k, v in expected.items():
            v.copy_(tensors[k].to(v.dtype))


def load_bundle(folder: str | os.PathLike, device: str | torch.device = "cpu") -> tuple[RunConfig, Vocab, TextVAE, Objective]:
    folder = Path(folder)
    if not folder.is_dir():
        raise CheckpointError(f"checkpoint folder not found: {folder}")
    cfg, vocab_size = read_config(folder)
    vocab = Vocab.load(folder / VOCAB)
    if len(vocab) != vocab_size:
        raise CheckpointError(f"{folder / VOCAB} has {len(vocab)} words but {folder / CONFIG} says {vocab_size}")
    model, objective = build(cfg, vocab_size)
    load_weights(folder / WEIGHTS, model, objective)
    return cfg, vocab, model.to(device).eval(), objective.to(device).eval()
