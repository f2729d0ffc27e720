"""core.serving.index on the shipped checkpoints' training codes: exact search agrees with
scikit-learn's cosine neighbours, the HNSW graph finds nearly all of them, and a saved index comes
back as it was, while a torn or mismatched file is refused (and rebuilt by its caller)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from sklearn.neighbors import NearestNeighbors

import core
from core.serving.index import CosineIndex

SHIPPED = Path(__file__).resolve().parents[1] / "checkpoints"


def training_codes(data_dir) -> np.ndarray:
    live = core.load(SHIPPED / "flickr8k-lagging")
    sentences = core.read_sentences("flickr8k", "train", str(data_dir), None, live.config.tokenizer)
    return live.atlas("means", "train", None, core.split_digest(sentences))


def test_exact_search_is_scikit_learns_and_the_graph_finds_nearly_all(data_dir):
    mu = training_codes(data_dir)
    queries = mu[::997]
    exact = CosineIndex(mu)
    assert exact.exact and len(exact) == len(mu)
    dist, idx = exact.query(queries, 10)
    ref_dist, ref_idx = NearestNeighbors(metric="cosine", algorithm="brute").fit(mu).kneighbors(queries, 10)
    np.testing.assert_allclose(dist, ref_dist, atol=1e-4)
    assert (dist >= 0).all() and (dist[:, 0] < 1e-6).all()  # each query is an indexed code: itself, at 0
    assert np.mean([len(set(a) & set(b)) for a, b in zip(idx, ref_idx)]) > 9.8  # ties may swap at the edge
    graph = CosineIndex(mu, exact=False)
    assert not graph.exact and graph.recall(mu, queries=500) > 0.95
    assert exact.recall(mu, queries=200) == 1.0


def test_a_saved_index_comes_back_and_a_bad_file_is_refused(data_dir, tmp_path):
    mu = training_codes(data_dir)[:5000]
    seen = []
    graph = CosineIndex(mu, lambda done, total: seen.append((done, total)), exact=False)
    assert seen[-1] == (5000, 5000)
    path = tmp_path / "index.faiss"
    graph.save(path)
    back = CosineIndex.load(path, *mu.shape)
    assert back is not None and not back.exact
    for a, b in zip(graph.query(mu[:50], 10), back.query(mu[:50], 10)):
        np.testing.assert_array_equal(a, b)
    assert CosineIndex.load(path, len(mu) + 1, mu.shape[1]) is None  # another split's codes: rebuilt
    assert CosineIndex.load(tmp_path / "none.faiss", *mu.shape) is None
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])  # torn
    assert CosineIndex.load(path, *mu.shape) is None
    path.write_bytes(b"\x00" * 100)
    assert CosineIndex.load(path, *mu.shape) is None
