"""A checkpoint's atlas: the numbers the explorer would otherwise build on a user's first visit.

Posterior means of the whole training split with their 2-D UMAP layout (the neighbour index and
the default latent map: every training sentence) and of the first MAP_N validation sentences with
theirs (the compare view's sentences and the interpolation cloud), computed once at export
and shipped in the bundle as float16 numbers only, no sentences. `add_aligned` adds, for a pair of
bundles, each one's side of their aligned layout (the explorer's compare view), keyed by the other
bundle's weights. Each array is stored with the
sha256 of the sentences it came from, so a reader whose corpus differs gets None and builds its own.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from ..library.corpora import read_sentences
from ..library.errors import SettingError
from .maps import aligned_2d, umap_2d

log = logging.getLogger(__name__)
ATLAS = "atlas.safetensors"
MAP_SPLIT, MAP_N = "valid", 2000  # the compare view's sentences: an aligned fit of two models
WHOLE_SPLIT = "train"  # the latent map's default: every sentence of it


def digest(sentences: Sequence[str]) -> str:
    """A short sha256 of a list of sentences: the key that ties an array to the text it came from."""
    return hashlib.sha256("\n".join(sentences).encode()).hexdigest()[:16]


def key(kind: str, split: str, limit: int | None) -> str:
    return f"{kind}/{split}/{limit if limit else 'all'}"


def aligned_kind(other_fingerprint: str) -> str:
    """The atlas kind of one side of an aligned pair: named by the other model's weights."""
    return f"aligned-{other_fingerprint[:16]}"


def build(model, data_dir: str | None = None, progress: bool = True) -> dict[str, tuple[np.ndarray, str]]:
    """{key: (array, digest of the whole split it came from)} for a loaded `core` model (TextVAEModel)."""
    from tqdm.auto import tqdm

    arrays = {}
    for split, limit in (("train", None), (MAP_SPLIT, MAP_N)):
        whole = read_sentences(model.corpus, split, data_dir, None, model.config.tokenizer)
        sentences, text_key = whole[:limit], digest(whole)
        bar = tqdm(total=len(sentences), desc=f"atlas: {split} posterior means", unit="sent", disable=not progress)
        mu = model.encode_many(sentences, lambda done, total: bar.update(done - bar.n))[0]
        bar.close()
        arrays[key("means", split, limit)] = (mu, text_key)
        if progress:
            log.info("atlas: UMAP layout of %d %s posterior means", len(mu), split)
        arrays[key("umap", split, limit)] = (umap_2d(mu), text_key)
    return arrays


def save(folder: Path, arrays: dict[str, tuple[np.ndarray, str]]) -> None:
    tensors = {k: torch.from_numpy(np.asarray(a, dtype=np.float16)) for k, (a, _) in arrays.items()}
    tmp = folder / f".{ATLAS}.tmp"
    save_file(tensors, str(tmp), metadata={"digests": json.dumps({k: d for k, (_, d) in arrays.items()})})
    tmp.replace(folder / ATLAS)  # a reader never sees half an atlas


def load_all(folder: Path) -> dict[str, tuple[np.ndarray, str]]:
    """Every array of a bundle's atlas with its digest ({} when it has none)."""
    path = folder / ATLAS
    if not path.is_file():
        return {}
    with safe_open(str(path), "pt") as f:
        digests = json.loads((f.metadata() or {}).get("digests", "{}"))
        return {k: (f.get_tensor(k).float().numpy(), digests.get(k, "")) for k in f.keys()}  # noqa: SIM118


def add_aligned(model_a, model_b, data_dir: str | None = None, split: str = MAP_SPLIT, limit: int = MAP_N) -> None:
    """Ship the aligned layout of two loaded models (TextVAEModel) of one corpus: each bundle's atlas
    gets its own side, keyed by the other's weights, so the explorer's default compare view needs no
    fit. The posterior means are the ones the atlases ship, when they do."""
    if model_a.corpus != model_b.corpus:
        raise SettingError(f"{model_a.path.name} and {model_b.path.name} read different corpora")
    whole = read_sentences(model_a.corpus, split, data_dir, None, model_a.config.tokenizer)
    text_key = digest(whole)
    means = [m.atlas("means", split, limit, text_key) for m in (model_a, model_b)]
    means = [mu if mu is not None else m.encode_many(whole[:limit])[0] for mu, m in zip(means, (model_a, model_b))]
    coords = aligned_2d(*means)
    for model, other, xy in ((model_a, model_b, coords[0]), (model_b, model_a, coords[1])):
        arrays = load_all(model.path)
        arrays[key(aligned_kind(other.fingerprint), split, limit)] = (xy, text_key)
        save(model.path, arrays)


def drop_aligned(folder: Path, partners: Sequence[str]) -> list[str]:
    """Remove from a bundle's atlas every aligned layout whose partner's fingerprint is not in
    `partners` (a layout with a bundle no longer shipped is never read again); the keys removed."""
    arrays = load_all(folder)
    kept = {aligned_kind(f) for f in partners}
    dropped = [k for k in arrays if k.startswith("aligned-") and k.split("/")[0] not in kept]
    if dropped:
        save(folder, {k: v for k, v in arrays.items() if k not in dropped})
    return dropped


def read(folder: Path, kind: str, split: str, limit: int | None, split_digest: str) -> np.ndarray | None:
    """The stored array (float32) for the first `limit` sentences of a split whose whole text has
    `split_digest`, or None: no atlas, no such array, or the atlas was built from another text."""
    path, k = folder / ATLAS, key(kind, split, limit)
    if not path.is_file():
        return None
    try:
        with safe_open(str(path), "pt") as f:
            digests = json.loads((f.metadata() or {}).get("digests", "{}"))
            if digests.get(k) != split_digest or k not in f.keys():  # noqa: SIM118 (safe_open has no __contains__)
                return None
            return f.get_tensor(k).float().numpy()
    except (SafetensorError, OSError, ValueError) as e:
        log.warning("ignoring unreadable atlas %s: %s", path, e)
        return None


def size(folder: Path) -> int:
    """Bytes of the bundle's atlas (0 when it has none)."""
    path = folder / ATLAS
    return path.stat().st_size if path.is_file() else 0
