"""Checkpoint bundles: a folder anyone can load without unpickling anything.

    model.safetensors   weights: `model.*` (encoder/decoder) and `objective.*` (e.g. the energy network)
    config.json         RunConfig + vocabulary size: enough to rebuild model and objective
    vocab.txt           one word a line, ids in line order
    metrics.json        evaluation figures written after training
    train_log.jsonl     one JSON line per epoch
    probe_means.safetensors   posterior means of the probe set (the first validation sentences)
                        after each epoch, float16 `means` [epochs, N, z] and `epochs` [epochs]
    resume/             weights, RNG and loop state of the last finished epoch (for --resume):
                        last.safetensors (weights + `rng.*`; the loop and objective state in its
                        metadata), trainer.json (a copy of that state to read);
                        partial.safetensors, while an epoch is in progress: weights, `rng.*`, the
                        epoch's running sums (`sums.*`) and, in its metadata, where the epoch stands

Format 2 stores each objective's own settings (`objective: {name, settings}`); format 1 bundles
(one flat settings object shared by all objectives) still load and resume as they trained.

Every write goes to a temporary file first and is renamed into place, so a run killed while
saving leaves the previous file intact.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from .config import MODEL_UNRECORDED, TRAIN_LEGACY, ModelConfig, RunConfig, TrainConfig, build_dataclass, check_fields
from .errors import CheckpointError, InputError
from .files import atomic_write, drop_stale
from .models import TextVAE
from .objectives import Objective, build, parse_objective
from .tokenize import UNRECORDED, known_tokenizer
from .vocab import Vocab

log = logging.getLogger(__name__)
FORMAT = "vae-mine-bundle"
FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)
WEIGHTS, CONFIG, VOCAB, METRICS, LOG = (
    "model.safetensors",
    "config.json",
    "vocab.txt",
    "metrics.json",
    "train_log.jsonl",
)
RESUME_DIR, RESUME_WEIGHTS, RESUME_STATE = "resume", "last.safetensors", "trainer.json"
RESUME_PARTIAL = "partial.safetensors"  # a checkpoint inside an epoch: weights, RNG and position in one file
PROBE = "probe_means.safetensors"
EVALUATION = "evaluation.json"  # a bundle's own test evaluation (core.evaluate --json), made where it was trained
SAMPLES = "samples.txt.gz"  # beside it: the prior samples FPPL / RPPL score (core.evaluate --samples)
OUTPUT = "train.out"  # a run's terminal output when core.commands.parallel started it
MAX_VOCAB = 10_000_000  # the most words a bundle's config may claim


def write_json(path: Path, obj: Any) -> None:
    atomic_write(path, lambda tmp: Path(tmp).write_text(json.dumps(obj, indent=2, sort_keys=False) + "\n"))


def save_tensors(
    path: Path,
    tensors: dict[str, torch.Tensor],
    dtype: torch.dtype | None = None,
    metadata: dict[str, str] | None = None,
) -> None:
    out = {}
    for k, v in tensors.items():
        v = v.detach().cpu()
        if dtype is not None and v.is_floating_point():
            v = v.to(dtype)
        out[k] = v.contiguous()
    atomic_write(path, lambda tmp: save_file(out, tmp, metadata={"format": FORMAT, **(metadata or {})}))


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
    write_json(
        folder / CONFIG, {"format": FORMAT, "version": FORMAT_VERSION, "vocab_size": len(vocab), "run": cfg.to_dict()}
    )


def read_json(path: Path, what: str) -> Any:
    """A JSON file, or a CheckpointError naming it."""
    if not path.is_file():
        raise CheckpointError(f"missing {what}: {path}")
    try:
        return json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"corrupt {what} {path}: {e}") from None


def check_metrics(d: Any, path: Path) -> dict:
    """A bundle's metrics.json as the explorer reads it: an object of numbers, text, true/false or
    null, or objects of those (a split's figures); the counts and times numbers. CheckpointError
    naming the file and field otherwise."""

    def plain(v) -> bool:
        return v is None or isinstance(v, (bool, int, float, str))

    if not isinstance(d, dict):
        raise CheckpointError(f"{path}: must be a JSON object, not {type(d).__name__}")
    for key, value in d.items():
        inner = value.values() if isinstance(value, dict) else [value]
        if not all(plain(v) for v in inner):
            raise CheckpointError(f"{path}: field {str(key)[:40]!r} must hold numbers or text")
    for key in ("epochs", "best_epoch", "train_seconds"):
        if key in d and (not isinstance(d[key], (int, float)) or isinstance(d[key], bool)):
            raise CheckpointError(f"{path}: field {key!r} must be a number, not {str(d[key])[:40]!r}")
    for split in ("valid", "test", "shipped_test"):
        if split in d and not isinstance(d[split], dict):
            raise CheckpointError(f"{path}: field {split!r} must be an object of figures")
    return d


def read_log(path: Path) -> list[dict]:
    """The JSON-object lines of a train_log.jsonl (others skipped); CheckpointError when the file is
    not UTF-8 text. A torn last line (a run killed while appending) is skipped like any other."""
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as e:
        raise CheckpointError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    except OSError as e:
        raise CheckpointError(f"{path}: unreadable ({e.strerror})") from None
    lines, skipped = [], 0
    for ln in filter(str.strip, text.splitlines()):
        try:
            line = json.loads(ln)
        except json.JSONDecodeError:
            line = None
        if isinstance(line, dict):
            lines.append(line)
        else:
            skipped += 1
    if skipped:  # a run killed while appending leaves a partial last line
        log.warning("%s: dropped %d line(s) that were not whole JSON objects (a write cut short)", path, skipped)
    return lines


def save_bundle(folder: Path, cfg: RunConfig, vocab: Vocab, model: TextVAE, objective: Objective, dtype=None) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write(folder / VOCAB, vocab.save)
    save_config(folder, cfg, vocab)
    save_tensors(folder / WEIGHTS, weights_of(model, objective), dtype)


def run_config_from_dict(d: dict[str, Any], source: str = "config", version: int = 2) -> RunConfig:
    """A run's config from the "run" section of a bundle's config.json (format 1 or 2): here, not in
    core.library.config, because the objective's settings are parsed by the objective registry."""
    try:
        if not isinstance(d, dict):
            raise CheckpointError(f"{source}: the run section must be a JSON object")
        train = d["train"] if version >= 2 else {**d["train"], **TRAIN_LEGACY}
        corpus, name, digest = d["corpus"], d.get("config_name", "custom"), d.get("corpus_sha256")
        if (
            not isinstance(corpus, str)
            or not corpus.strip()
            or not isinstance(name, str)
            or not (digest is None or isinstance(digest, str))
        ):
            raise CheckpointError(f"{source}: corpus, config_name and corpus_sha256 must be text")
        cfg = RunConfig(
            corpus=corpus,
            config_name=name,
            model=build_dataclass(ModelConfig, {**MODEL_UNRECORDED, **d["model"]}, source),
            objective=parse_objective(d["objective"], source, legacy=version < 2),
            train=build_dataclass(TrainConfig, train, source),
            tokenizer=known_tokenizer(d.get("tokenizer", UNRECORDED)),
            corpus_sha256=digest,
        )
        check_fields(cfg.model, f"{source}: model")
        check_fields(cfg.train, f"{source}: train")
        return cfg
    except KeyError as e:
        raise CheckpointError(f"{source}: missing section {e}") from None
    except (InputError, TypeError, ValueError) as e:
        raise CheckpointError(f"{source}: {e}" if not str(e).startswith(source) else str(e)) from None


def read_config(folder: Path) -> tuple[RunConfig, int]:
    """(the run's config, the vocabulary size) from a bundle's config.json, format 1 or 2."""
    path = folder / CONFIG
    d = read_json(path, "config file")
    if not isinstance(d, dict) or d.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a {FORMAT} config")
    if d.get("version") not in READABLE_VERSIONS:
        raise CheckpointError(
            f"{path}: bundle version {d.get('version')} is not one of the supported {READABLE_VERSIONS}"
        )
    size = d.get("vocab_size")
    if not isinstance(size, int) or isinstance(size, bool) or not 4 <= size <= MAX_VOCAB:
        raise CheckpointError(
            f"{path}: vocab_size must be a whole number between 4 and {MAX_VOCAB:,}, not {str(size)[:40]!r}"
        )
    try:
        return run_config_from_dict(d["run"], str(path), d["version"]), size
    except CheckpointError:
        raise
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"{path}: bad config ({e})") from None


def bundle_version(folder: Path) -> int:
    return read_json(folder / CONFIG, "config file").get("version")


def as_version(cfg: RunConfig, version: int) -> RunConfig:
    """cfg as a bundle of `version` holds it: format 1 knew fewer settings, which take the values
    that format-1 runs trained with (so a command line can be compared with an old run's config)."""
    if version >= 2:
        return cfg
    d = cfg.to_dict()
    d["objective"] = {"name": cfg.objective.name, **d["objective"]["settings"]}
    return run_config_from_dict(d, "command line", version=1)


def load_weights(
    path: Path, model: TextVAE, objective: Objective, tensors: dict[str, torch.Tensor] | None = None
) -> None:
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


def check_header(path: Path, cfg: RunConfig, vocab_size: int) -> None:
    """The weights file's tensor names and shapes against those the config implies, read from its
    header before anything is allocated (the model is built on the meta device): a config that
    names huge sizes fails here, not after allocating them."""
    try:
        with torch.device("meta"):
            model, objective = build(cfg, vocab_size)
    except (TypeError, ValueError, RuntimeError) as e:
        raise CheckpointError(f"{path.parent / CONFIG}: the model it describes cannot be built ({e})") from None
    expected = {k: tuple(v.shape) for k, v in weights_of(model, objective).items()}
    if not path.is_file():
        raise CheckpointError(f"missing weights file: {path}")
    try:
        with safe_open(str(path), "pt") as f:
            found = {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise CheckpointError(f"corrupt weights file {path}: {e}") from None
    bad = sorted(k for k in expected if found.get(k) not in (None, expected[k]))
    if bad:
        raise CheckpointError(
            f"weights file {path} does not match its config.json (wrong shape: "
            f"{', '.join(f'{k} {found[k]} for {expected[k]}' for k in bad[:3])})"
        )


def load_bundle(
    folder: str | os.PathLike, device: str | torch.device = "cpu"
) -> tuple[RunConfig, Vocab, TextVAE, Objective]:
    folder = Path(folder)
    if not folder.is_dir():
        raise CheckpointError(f"checkpoint folder not found: {folder}")
    cfg, vocab_size = read_config(folder)
    vocab = Vocab.load(folder / VOCAB)
    if len(vocab) != vocab_size:
        raise CheckpointError(f"{folder / VOCAB} has {len(vocab)} words but {folder / CONFIG} says {vocab_size}")
    check_header(folder / WEIGHTS, cfg, vocab_size)
    model, objective = build(cfg, vocab_size)
    tensors = load_tensors(folder / WEIGHTS)
    load_weights(folder / WEIGHTS, model, objective, tensors)
    broken = [k for k, v in tensors.items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if broken:
        raise CheckpointError(f"weights file {folder / WEIGHTS} holds NaN or infinite values ({', '.join(broken[:3])})")
    return cfg, vocab, model.to(device).eval(), objective.to(device).eval()


# -- resume state -------------------------------------------------------------------------------------


def save_resume(folder: Path, tensors: dict[str, torch.Tensor], loop: dict, objective_state: dict) -> None:
    """The last finished epoch: weights, RNG states (`rng.*`) and, in the file's metadata, the loop
    and objective state, in one atomic write; trainer.json beside it is a copy to read."""
    state = {"loop": loop, "objective": objective_state}
    save_tensors(folder / RESUME_DIR / RESUME_WEIGHTS, tensors, metadata={"state": json.dumps(state)})
    write_json(folder / RESUME_DIR / RESUME_STATE, state)


def _state_file(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor], dict | None]:
    """(tensors, rng states, the JSON state in its metadata or None) of a resume file."""
    tensors = load_tensors(path)
    rng = {k: tensors.pop(k) for k in [k for k in tensors if k.startswith("rng.")]}
    with safe_open(str(path), "pt") as f:
        raw = (f.metadata() or {}).get("state")
    try:
        state = None if raw is None else json.loads(raw)
    except ValueError as e:
        raise CheckpointError(f"corrupt resume state in {path}: {e}") from None
    return tensors, rng, state


def load_resume(folder: Path) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor], dict, dict] | None:
    """(weights, rng states, loop state, objective state) of the last finished epoch, or None.
    Runs saved before the state moved into the weights file's metadata keep it in trainer.json."""
    path, state_path = folder / RESUME_DIR / RESUME_WEIGHTS, folder / RESUME_DIR / RESUME_STATE
    if not path.exists():
        return None
    tensors, rng, saved = _state_file(path)
    if saved is None:
        if not state_path.exists():
            return None
        saved = read_json(state_path, "resume state")
    if not isinstance(saved, dict) or not isinstance(saved.get("loop"), dict):
        raise CheckpointError(f"corrupt resume state in {folder / RESUME_DIR}: no loop section")
    return tensors, rng, saved["loop"], saved.get("objective", {})


PARTIAL_FIELDS = ("epoch", "batch", "sentences", "tokens", "seconds", "extra_batches", "sums", "loop", "objective")


def save_partial(folder: Path, tensors: dict[str, torch.Tensor], state: dict) -> None:
    """A checkpoint inside an epoch: one file, written atomically, so it is whole or absent."""
    save_tensors(folder / RESUME_DIR / RESUME_PARTIAL, tensors, metadata={"state": json.dumps(state)})


def load_partial(folder: Path) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor], dict] | None:
    """(tensors, rng states, state) of the checkpoint inside an epoch, or None. Raises
    CheckpointError for a damaged one."""
    path = folder / RESUME_DIR / RESUME_PARTIAL
    if not path.exists():
        return None
    tensors, rng, state = _state_file(path)
    missing = [k for k in PARTIAL_FIELDS if not isinstance(state, dict) or k not in state]
    if missing:
        raise CheckpointError(f"corrupt mid-epoch checkpoint {path}: no {', '.join(missing)}")
    return tensors, rng, state


def drop_partial(folder: Path) -> None:
    (folder / RESUME_DIR / RESUME_PARTIAL).unlink(missing_ok=True)


def drop_temporary(folder: Path) -> None:
    """Temporary files of writes a kill interrupted (atomic_write cleans up after anything else)."""
    for name in (
        RESUME_DIR + "/" + RESUME_WEIGHTS,
        RESUME_DIR + "/" + RESUME_STATE,
        RESUME_DIR + "/" + RESUME_PARTIAL,
        WEIGHTS,
        CONFIG,
        VOCAB,
        METRICS,
        LOG,
        PROBE,
    ):
        path = folder / name
        drop_stale(path.parent, f".{path.name}.*", older_than=0)  # resuming: no writer of this run is alive


def truncate_log(folder: Path, last_epoch: int) -> None:
    """Drop log lines after `last_epoch`: a run killed after writing its log line but before its
    resume state repeats that epoch."""
    path = folder / LOG
    if path.exists():
        kept = [ln for ln in read_log(path) if isinstance(ln.get("epoch"), int) and ln["epoch"] <= last_epoch]
        atomic_write(path, lambda tmp: Path(tmp).write_text("".join(json.dumps(ln) + "\n" for ln in kept)))


def append_log(folder: Path, line: dict) -> None:
    """Add an epoch's line: the whole log is rewritten atomically, so a kill never tears a line."""
    path = folder / LOG
    old = path.read_bytes() if path.exists() else b""
    atomic_write(path, lambda tmp: Path(tmp).write_bytes(old + (json.dumps(line) + "\n").encode()))


def append_probe(folder: Path, epoch: int, means: torch.Tensor) -> None:
    """Add an epoch's probe-set posterior means [N, z] to the run's probe file (float16), replacing
    any later epochs (a resumed run repeats them)."""
    old = read_probe(folder)
    epochs, stack = ([], []) if old is None else (old[0].tolist(), list(old[1]))
    keep = [i for i, e in enumerate(epochs) if e < epoch]
    epochs, stack = [epochs[i] for i in keep] + [epoch], [stack[i] for i in keep] + [means.detach().cpu().half()]
    save_tensors(folder / PROBE, {"epochs": torch.tensor(epochs), "means": torch.stack(stack)})


def copy_probe(src: Path, dst: Path, max_epochs: int) -> None:
    """Copy a run's probe file keeping at most `max_epochs` epochs, evenly spaced, the first and
    the last always among them (a shipped bundle's training replay at a bounded size)."""
    probe = read_probe(src)
    if probe is None:
        return
    epochs, means = probe
    n = len(epochs)
    keep = sorted({round(i * (n - 1) / (max_epochs - 1)) for i in range(max_epochs)}) if max_epochs > 1 else [n - 1]
    keep = [i for i in keep if i < n]
    save_tensors(dst / PROBE, {"epochs": epochs[keep], "means": means[keep]})


def read_probe(folder: Path) -> tuple[torch.Tensor, torch.Tensor] | None:
    """(epochs [E], posterior means [E, N, z]) of the probe set, or None when the bundle has none."""
    if not (folder / PROBE).is_file():
        return None
    tensors = load_tensors(folder / PROBE)
    if (
        set(tensors) != {"epochs", "means"}
        or tensors["means"].dim() != 3
        or len(tensors["epochs"]) != len(tensors["means"])
    ):
        raise CheckpointError(f"{folder / PROBE} is not a probe file (epochs [E], means [E, N, z])")
    return tensors["epochs"], tensors["means"]
