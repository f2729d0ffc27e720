"""The k nearest codes by cosine distance, over up to a million posterior means (faiss).

Up to EXACT_MAX codes are searched exactly (a flat inner-product index over unit vectors: a query
over 50,000 codes of 32 dimensions is a fraction of a millisecond); a larger set gets an HNSW graph,
whose recall@10 against exact search `recall()` measures. An index is saved in faiss's own format
(never a pickle) so the explorer builds it once per checkpoint and corpus.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..library.files import atomic_write

EXACT_MAX = 50_000  # codes searched exactly; more get an HNSW graph
HNSW_M, HNSW_EF_BUILD, HNSW_EF_SEARCH = 32, 80, 128  # graph degree, and candidates kept building and searching
ADD_CHUNK = 50_000  # codes added between two progress reports


def _faiss():
    import faiss  # imported here: the library (and its OpenMP) only where an index is built

    return faiss


def unit(mu: np.ndarray) -> np.ndarray:
    """Rows scaled to length 1 (an all-zero code stays zero: it is nobody's neighbour by direction)."""
    mu = np.asarray(mu, dtype=np.float32)
    return np.ascontiguousarray(mu / np.maximum(np.linalg.norm(mu, axis=1, keepdims=True), 1e-12))


class CosineIndex:
    """Cosine nearest neighbours of a set of codes; `nbytes` is what it holds, `exact` how it searches."""

    def __init__(self, mu: np.ndarray, progress=None, exact: bool | None = None, _index=None):
        faiss = _faiss()
        if _index is not None:
            self._index = _index
        else:
            x = unit(mu)
            self._index = (
                faiss.IndexFlatIP(x.shape[1])
                if (len(x) <= EXACT_MAX if exact is None else exact)
                else faiss.IndexHNSWFlat(x.shape[1], HNSW_M, faiss.METRIC_INNER_PRODUCT)
            )
            if hasattr(self._index, "hnsw"):
                self._index.hnsw.efConstruction = HNSW_EF_BUILD
            for start in range(0, len(x), ADD_CHUNK):
                self._index.add(x[start : start + ADD_CHUNK])
                if progress:
                    progress(min(start + ADD_CHUNK, len(x)), len(x))
        if hasattr(self._index, "hnsw"):
            self._index.hnsw.efSearch = HNSW_EF_SEARCH

    @property
    def exact(self) -> bool:
        return not hasattr(self._index, "hnsw")

    @property
    def nbytes(self) -> int:
        codes = self._index.ntotal * self._index.d * 4
        return codes if self.exact else codes + self._index.ntotal * HNSW_M * 2 * 4  # and the graph's links

    def __len__(self) -> int:
        return int(self._index.ntotal)

    def query(self, mu: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(cosine distances [M, k'], indices [M, k']) of each code's k' = min(k, size) nearest, nearest first."""
        sims, idx = self._index.search(unit(mu), min(k, len(self)))
        return np.maximum(1.0 - sims, 0.0).astype(np.float32), idx.astype(np.int64)  # no -0.0000 from rounding

    def recall(self, mu: np.ndarray, k: int = 10, queries: int = 1000, seed: int = 0) -> float:
        """The share of exact search's k nearest that this index returns, over `queries` of the
        indexed codes `mu` drawn at random (1.0 for an exact index)."""
        rows = np.random.default_rng(seed).choice(len(mu), min(queries, len(mu)), replace=False)
        found = self.query(mu[rows], k)[1]
        truth = CosineIndex(mu, exact=True).query(mu[rows], k)[1]
        return float(np.mean([len(set(a) & set(b)) / len(b) for a, b in zip(found, truth)]))

    def save(self, path: Path) -> None:
        """Write the index in faiss's own format (write then rename: never half a file)."""
        atomic_write(Path(path), lambda tmp: _faiss().write_index(self._index, str(tmp)))

    @classmethod
    def load(cls, path: Path, rows: int, dims: int) -> CosineIndex | None:
        """The saved index, or None when there is none, it is unreadable, or it holds another
        number of codes or dimensions than expected (then it is rebuilt)."""
        if not Path(path).is_file():
            return None
        try:
            index = _faiss().read_index(str(path))
        except RuntimeError:
            return None
        return cls(None, _index=index) if index.ntotal == rows and index.d == dims else None
