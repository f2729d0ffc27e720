"""A checkpoint's atlas: the numbers the explorer would otherwise build on a user's first visit.

Posterior means of the whole training split (the neighbour index) and of the first MAP_N
validation sentences with their 2-D UMAP layout (the default latent map), computed once at export
and shipped in the bundle as float16 numbers only, no sentences. Each array is stored with the
sha256 of the sentences it came from, so a reader whose corpus differs gets None and builds its own.
"""
from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from collections.abc import Sequence

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from .corpora import read_sentences

log = logging.getLogger(__name__)
ATLAS = "atlas.safetensors"
MAP_SPLIT, MAP_N = "valid", 2000


def digest(sentences: Sequence[str]) -> str:
    """A short sha256 of a list of sentences: the key that ties an array to the text it came from."""
    return hashlib.sha256("\n".join(sentences).encode()).hexdigest()[:16]


def key(kind: str, split: str, limit: int | None) -> str:
    return f"{kind}/{split}/{limit if limit else 'all'}"


def umap_2d(mu: np.ndarray) -> np.ndarray:
    """The latent map's layout: UMAP (15 neighbours, min_dist 0.1, seed 0) of posterior means."""
    import umap  # here, not at the top: numba's import takes seconds

    fit = umap.UMAP(n_neighbors=15, min_dist=0.1, metric="euclidean", random_state=0, n_jobs=1)
    return fit.fit_transform(mu).astype(np.float32)


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
        if split == MAP_SPLIT:
            arrays[key("umap", split, limit)] = (umap_2d(mu), text_key)
    return arrays


def save(folder: Path, arrays: dict[str, tuple[np.ndarray, str]]) -> None:
    tensors = {k: torch.from_numpy(np.asarray(a, dtype=np.float16)) for k, (a, _) in arrays.items()}
    save_file(tensors, str(folder / ATLAS), metadata={"digests": json.dumps({k: d for k, (_, d) in arrays.items()})})


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


