"""Maps of posterior means: a model's 2-D layout (UMAP), new sentences placed on a layout already
drawn, two models' layouts aligned point for point, and where two models' neighbourhoods disagree.

One set of UMAP settings (15 neighbours, min_dist 0.1, seed 0) for every layout, so a shipped
map, a map drawn here and an aligned pair read the same way. umap-learn is imported inside the
functions: numba's import takes seconds.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.metrics.pairwise import euclidean_distances
from sklearn.neighbors import NearestNeighbors

from ..library.errors import InputError

UMAP_SETTINGS = dict(n_neighbors=15, min_dist=0.1, random_state=0)
OVERLAP_K = 10  # neighbours compared per sentence
LAYOUT_FIT_MAX = 50_000  # a larger map is fitted on a sample of this many, the rest placed (umap_2d)
LAYOUT_CHUNK = 50_000  # points placed per step
PLACE_K = 5  # sampled neighbours whose places a point of a larger map is placed among
INVERSE_K = 10  # MapInverse: the map's points whose codes make the code of a place
OFF_DATA = 2.0  # MapInverse: a place farther than this many neighbour spacings from every point is off the data
PRECOMPUTED_MAX = 4096  # Placement: below this, distances go in precomputed (umap-learn's own threshold)
OWN_MAX_LINES = 10_000  # your sentences: lines per request
OWN_MAX_BYTES = 2 * 2**20  # and bytes (UTF-8) per request
OWN_MIN_ALONE = 4  # sentences needed to draw a map of your sentences alone (no corpus)


def umap_2d(mu: np.ndarray, progress=None) -> np.ndarray:
    """The latent map's layout of posterior means [N, z] -> [N, 2]. Up to LAYOUT_FIT_MAX points are
    fitted together (a whole training split of PTB or Flickr8k); a larger set is fitted on a seeded
    sample of that many and each other point is placed at the distance-weighted mean of its
    PLACE_K nearest sampled codes' places (`progress(done, total)` after each chunk), so nearby
    codes stay nearby at a cost that grows with N, not N^2. umap-learn's own `transform` places
    as well but slower than a fit of all the points (docs/explorer.md). Fewer points than UMAP's
    15 neighbours (a handful of your own sentences) get as many neighbours as there are others."""
    import umap

    mu = np.asarray(mu, dtype=np.float32)
    settings = UMAP_SETTINGS | {"n_neighbors": min(UMAP_SETTINGS["n_neighbors"], len(mu) - 1)}
    if len(mu) <= LAYOUT_FIT_MAX:
        return umap.UMAP(metric="euclidean", n_jobs=1, **settings).fit_transform(mu).astype(np.float32)
    sample = np.sort(np.random.default_rng(0).choice(len(mu), LAYOUT_FIT_MAX, replace=False))
    rest = np.setdiff1d(np.arange(len(mu)), sample)
    out = np.empty((len(mu), 2), dtype=np.float32)
    out[sample] = umap.UMAP(metric="euclidean", n_jobs=1, **settings).fit_transform(mu[sample])
    index = NearestNeighbors(n_neighbors=PLACE_K).fit(mu[sample])
    for start in range(0, len(rest), LAYOUT_CHUNK):
        part = rest[start : start + LAYOUT_CHUNK]
        dist, idx = index.kneighbors(mu[part])
        weight = 1.0 / np.maximum(dist, 1e-6)
        out[part] = (out[sample][idx] * weight[..., None]).sum(1) / weight.sum(1, keepdims=True)
        if progress:
            progress(LAYOUT_FIT_MAX + start + len(part), len(mu))
    return out


def aligned_2d(mu_a: np.ndarray, mu_b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two models' posterior means of the same N sentences laid out together by umap-learn's
    AlignedUMAP (row i of each is sentence i): each map keeps its own model's neighbourhoods while
    a sentence sits at about the same place in both, so what moved between them can be seen.
    Euclidean distances go in precomputed (as for Placement): 24.5 s against 34.4 s for 2,000
    sentences here, the same neighbour graphs."""
    import umap

    if len(mu_a) != len(mu_b):
        raise InputError(f"the two maps need the same sentences; got {len(mu_a)} and {len(mu_b)}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # umap-learn's notes on seeds and precomputed input
        fit = umap.AlignedUMAP(metric="precomputed", **UMAP_SETTINGS).fit(
            [euclidean_distances(np.asarray(m, dtype=np.float32)) for m in (mu_a, mu_b)],
            relations=[{i: i for i in range(len(mu_a))}],
        )
    return tuple(np.asarray(e, dtype=np.float32) for e in fit.embeddings_)


class Placement:
    """A layout already drawn (the atlas's, or one fitted here), with UMAP's neighbour graph built
    around it so new sentences can be placed in it by UMAP's own `transform`. The graph is fitted
    with the layout as its starting point and no optimisation epochs, so the layout itself is kept
    (umap-learn rescales a given start to [0, 10] per axis; `place` maps back). Distances go in
    precomputed by scikit-learn: umap-learn computes them on maps under 4,096 points through a Python
    callable, 2 million calls, 4.6 s for 1,000 new sentences against 0.4 s (docs/explorer.md); from
    PRECOMPUTED_MAX points on, where umap-learn builds its own neighbour index, they go in as they are."""

    def __init__(self, mu: np.ndarray, coords: np.ndarray):
        import umap

        self._mu = np.asarray(mu, dtype=np.float32)
        # an N x N distance matrix is 3.6 GB at 30,000 points: larger maps let umap-learn index them
        self._precomputed = len(self._mu) < PRECOMPUTED_MAX
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # umap-learn's notes on seeds and precomputed input
            self._fit = umap.UMAP(
                metric="precomputed" if self._precomputed else "euclidean",
                n_jobs=1,
                init=coords,
                n_epochs=0,
                **UMAP_SETTINGS,
            ).fit(euclidean_distances(self._mu) if self._precomputed else self._mu)
        self._fit.n_epochs = None  # transform's own default (100 epochs for up to 10,000 points)
        self._low, self._span = coords.min(0), np.maximum(coords.max(0) - coords.min(0), 1e-12)

    @property
    def nbytes(self) -> int:
        """What it holds (the explorer's memory cache counts it): the means and every array and sparse
        matrix of the fitted UMAP, its N x N distance matrix the largest (about 100 MB at 5,000 points)."""
        held = [self._mu, *vars(self._fit).values()]
        return int(
            sum(
                getattr(a, "nbytes", 0)
                if isinstance(a, np.ndarray)
                else sum(getattr(a, p).nbytes for p in ("data", "indices", "indptr") if hasattr(a, p))
                if hasattr(a, "tocsr")
                else 0
                for a in held
            )
        )

    def place(self, mu_new: np.ndarray) -> np.ndarray:
        """Coordinates [M, 2] of new posterior means in the layout's own frame."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            mu_new = np.asarray(mu_new, dtype=np.float32)
            moved = self._fit.transform(euclidean_distances(mu_new, self._mu) if self._precomputed else mu_new)
        return (moved / 10.0 * self._span + self._low).astype(np.float32)


@dataclass(frozen=True)
class MapPoint:
    """What a map puts at a place: `code`, the distance-weighted mean of the codes of the INVERSE_K
    points nearest that place on the map (a click on a point gives that point's own code), and how
    far the place lies from the data: `gap`, the distance to the nearest point over the median
    distance between neighbouring points (above OFF_DATA: a place where no sentence sits)."""

    code: np.ndarray  # [z]
    nearest: int  # the index of the point nearest the place
    gap: float

    @property
    def off_data(self) -> bool:
        return self.gap > OFF_DATA


class MapInverse:
    """The inverse of one drawn map (any layout: UMAP, or a collapsed model's codes at their true
    scale): a place on the map -> the code it stands for, so the explorer can decode it. Built
    once per map: a 2-D neighbour index over the layout and its typical spacing."""

    def __init__(self, coords: np.ndarray, mu: np.ndarray):
        self._coords = np.asarray(coords, dtype=np.float64)
        self._mu = np.asarray(mu, dtype=np.float32)
        self._nn = NearestNeighbors(n_neighbors=min(INVERSE_K, len(coords))).fit(self._coords)
        sample = self._coords[:: max(1, len(coords) // 2000)]
        spacing = self._nn.kneighbors(sample, n_neighbors=min(2, len(coords)))[0][:, -1]
        self._spacing = float(max(np.median(spacing), 1e-12))
        self.nbytes = self._coords.nbytes + self._mu.nbytes

    def at(self, x: float, y: float) -> MapPoint:
        dist, idx = self._nn.kneighbors([[float(x), float(y)]])
        dist, idx = dist[0], idx[0]
        if dist[0] < 1e-9 * self._spacing:  # on a point: its own code
            return MapPoint(self._mu[idx[0]].copy(), int(idx[0]), 0.0)
        weight = 1.0 / dist
        code = (self._mu[idx] * weight[:, None]).sum(0) / weight.sum()
        return MapPoint(code.astype(np.float32), int(idx[0]), float(dist[0] / self._spacing))


def nearest(mu: np.ndarray, k: int = OVERLAP_K) -> np.ndarray:
    """For each row, the indices [N, k] of its k nearest other rows by cosine distance (itself left out)."""
    k = min(k, len(mu) - 1)
    idx = NearestNeighbors(metric="cosine", algorithm="brute").fit(mu).kneighbors(mu, n_neighbors=k + 1)[1]
    out = np.empty((len(mu), k), dtype=np.int64)
    for i, row in enumerate(idx):
        others = row[row != i]  # a duplicate of sentence i may come first; i itself is dropped wherever it is
        out[i] = others[:k]
    return out


@dataclass(frozen=True)
class Overlap:
    """How far two models agree on each sentence's neighbours: `shared[i]` is the fraction of
    sentence i's k nearest neighbours (cosine, posterior means) that both models name."""

    shared: np.ndarray  # [N] in [0, 1]
    left: np.ndarray  # [N, k] each model's neighbours
    right: np.ndarray
    k: int

    @property
    def mean(self) -> float:
        return float(self.shared.mean())

    @property
    def chance(self) -> float:
        """The expected overlap of two neighbour lists drawn at random: k / (N - 1)."""
        return chance_overlap(len(self.shared), self.k)


def chance_overlap(n: int, k: int = OVERLAP_K) -> float:
    return min(k, n - 1) / (n - 1)


def neighbour_overlap(mu_a: np.ndarray, mu_b: np.ndarray, k: int = OVERLAP_K) -> Overlap:
    if len(mu_a) != len(mu_b) or len(mu_a) < 2:
        raise InputError(
            f"the overlap needs the same two or more sentences under both models; got {len(mu_a)} and {len(mu_b)}"
        )
    a, b = nearest(mu_a, k), nearest(mu_b, k)
    shared = np.array([len(set(x) & set(y)) for x, y in zip(a, b)], dtype=np.float32) / a.shape[1]
    return Overlap(shared, a, b, a.shape[1])


def own_sentences(text) -> list[str]:
    """The non-empty lines of a text a visitor pasted or uploaded, checked against the caps
    (OWN_MAX_BYTES, OWN_MAX_LINES): InputError saying what is wrong (empty, too large, binary)."""
    if not isinstance(text, str):
        raise InputError("your sentences must be text")
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > OWN_MAX_BYTES:
        raise InputError(f"your sentences are {size / 2**20:.1f} MB; at most {OWN_MAX_BYTES / 2**20:.0f} MB")
    if "\x00" in text:
        raise InputError("your sentences hold NUL bytes: that is a binary file, not text with one sentence a line")
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    if not lines:
        raise InputError("your sentences are empty: paste text or upload a .txt file with one sentence a line")
    if len(lines) > OWN_MAX_LINES:
        raise InputError(f"your sentences hold {len(lines):,} lines; at most {OWN_MAX_LINES:,}")
    return lines


def containing(sentences: Sequence[str], words: Sequence[str]) -> np.ndarray:
    """A mask: which sentences (space-separated tokens) hold `words` as consecutive tokens."""
    n = len(words)
    if not n:
        return np.zeros(len(sentences), dtype=bool)
    words = list(words)
    out = np.zeros(len(sentences), dtype=bool)
    for i, s in enumerate(sentences):
        tokens = s.split()
        out[i] = any(tokens[j : j + n] == words for j in range(len(tokens) - n + 1))
    return out
