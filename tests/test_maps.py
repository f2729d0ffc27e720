"""core.serving.maps on the shipped checkpoints and real Flickr8k sentences: the neighbour overlap checked
against a plain re-count, its chance level, placement by UMAP's transform, the aligned layout the
atlases ship, and the caps on a visitor's own sentences."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import core
from core.serving.atlas import add_aligned, drop_aligned, load_all

SHIPPED = Path(__file__).resolve().parents[1] / "checkpoints"
LIVE, MINE, COLLAPSED = "flickr8k-lagging", "flickr8k-vae-mine-infonce", "flickr8k-vae-0.5"


@pytest.fixture(scope="module")
def means(data_dir):
    """Posterior means of the first 600 validation sentences under three shipped models."""
    models = {n: core.load(SHIPPED / n) for n in (LIVE, MINE, COLLAPSED)}
    sentences = core.read_sentences("flickr8k", "valid", str(data_dir), 600, models[LIVE].config.tokenizer)
    return sentences, {n: m.encode(sentences)[0] for n, m in models.items()}


def test_overlap_matches_a_plain_count_and_a_collapsed_model_sits_near_chance(means):
    _, mu = means
    found = core.neighbour_overlap(mu[LIVE], mu[MINE])

    # the same figure counted by hand: cosine distances, self excluded, top 10 of each, shared
    def top(m):
        unit = m / np.linalg.norm(m, axis=1, keepdims=True)
        dist = 1 - unit @ unit.T
        np.fill_diagonal(dist, np.inf)
        return np.argsort(dist, axis=1, kind="stable")[:, :10]

    a, b = top(mu[LIVE]), top(mu[MINE])
    by_hand = np.array([len(set(x) & set(y)) / 10 for x, y in zip(a, b)])
    assert np.abs(found.shared - by_hand).mean() < 0.01  # ties among equal distances may order differently
    assert found.chance == pytest.approx(10 / 599)
    assert core.neighbour_overlap(mu[LIVE], mu[LIVE]).mean == 1.0
    live = found.mean
    collapsed = core.neighbour_overlap(mu[LIVE], mu[COLLAPSED]).mean
    assert live > 5 * found.chance  # two models that read their sentences agree far above chance
    assert collapsed < live / 2  # VAE-0.5's codes carry almost nothing of the sentence: toward chance


def test_a_placed_sentence_lands_where_its_own_point_is(data_dir):
    live = core.load(SHIPPED / LIVE)
    sentences = core.read_sentences("flickr8k", core.MAP_SPLIT, str(data_dir), None, live.config.tokenizer)
    digest = core.split_digest(sentences)
    mu = live.atlas("means", core.MAP_SPLIT, core.MAP_N, digest)
    coords = live.atlas("umap", core.MAP_SPLIT, core.MAP_N, digest)  # the shipped map
    placed = core.Placement(mu, coords)
    own = live.encode(sentences[:50])[0]  # the map's own sentences, encoded again and placed
    xy = placed.place(own)
    spread = np.linalg.norm(coords - coords.mean(0), axis=1).mean()
    near = np.median(np.linalg.norm(xy - coords[:50], axis=1))
    assert near < 0.1 * spread
    far = placed.place(own[::-1])  # placed against other sentences' points: far off
    assert np.median(np.linalg.norm(far - coords[:50], axis=1)) > 3 * near


def test_a_map_larger_than_one_fit_keeps_each_codes_neighbours_near(data_dir, monkeypatch):
    """Past LAYOUT_FIT_MAX points the layout is fitted on a sample and the rest placed among their
    nearest sampled codes: every point gets a place, and a placed point lands near the sentences
    whose codes are nearest its own, far nearer than a random pair."""
    from core.serving import maps

    live = core.load(SHIPPED / LIVE)
    sentences = core.read_sentences("flickr8k", "train", str(data_dir), None, live.config.tokenizer)
    mu = live.atlas("means", "train", None, core.split_digest(sentences))[:3000]
    monkeypatch.setattr(maps, "LAYOUT_FIT_MAX", 1000)
    monkeypatch.setattr(maps, "LAYOUT_CHUNK", 700)
    seen = []
    xy = maps.umap_2d(mu, lambda done, total: seen.append((done, total)))
    assert xy.shape == (3000, 2) and np.isfinite(xy).all()
    assert seen[-1] == (3000, 3000) and len(seen) == 3  # 2,000 placed in chunks of 700
    sample = np.sort(np.random.default_rng(0).choice(3000, 1000, replace=False))
    placed = np.setdiff1d(np.arange(3000), sample)[:300]
    nearest_code = [sample[np.argmin(np.linalg.norm(mu[sample] - mu[i], axis=1))] for i in placed]
    to_nearest = np.median(np.linalg.norm(xy[placed] - xy[nearest_code], axis=1))
    to_random = np.median(np.linalg.norm(xy[placed] - xy[np.random.default_rng(1).choice(sample, 300)], axis=1))
    assert to_nearest < 0.2 * to_random


def test_a_sentence_is_placed_on_a_map_too_large_for_a_distance_matrix(data_dir):
    """From PRECOMPUTED_MAX points the placement lets umap-learn index the means (an N x N matrix
    would be 3.6 GB at 30,000): a map's own sentences still land on their own points."""
    from core.serving import maps

    live = core.load(SHIPPED / LIVE)
    sentences = core.read_sentences("flickr8k", "train", str(data_dir), None, live.config.tokenizer)
    n = maps.PRECOMPUTED_MAX + 500
    mu = live.atlas("means", "train", None, core.split_digest(sentences))[:n]
    coords = np.random.default_rng(0).normal(size=(n, 2)).astype(np.float32)
    coords[:, 0] += 3 * mu[:, np.argmax(mu.var(0))]  # a layout that follows the codes' widest dimension
    placed = core.Placement(mu, coords)
    assert placed.nbytes < n * n * 4  # no distance matrix held
    xy = placed.place(live.encode(sentences[:40])[0])
    near = np.median(np.linalg.norm(xy - coords[:40], axis=1))
    far = np.median(np.linalg.norm(xy - coords[40:80], axis=1))
    assert near < far / 2


def test_a_placement_counts_the_memory_it_holds():
    """The explorer's memory bound counts a placement by `nbytes`: what a fit holds, measured."""
    import tracemalloc

    rng = np.random.default_rng(0)
    mu, coords = rng.normal(size=(3000, 32)).astype(np.float32), rng.normal(size=(3000, 2)).astype(np.float32)
    core.Placement(mu[:100], coords[:100])  # umap-learn's and numba's one-off allocations, not the placement's
    tracemalloc.start()
    placed = core.Placement(mu, coords)
    held = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    assert held > 3000**2 * 4  # the distance matrix at least
    assert 0.8 * held < placed.nbytes < 1.25 * held


def test_the_atlases_ship_the_default_pairs_aligned_layout(data_dir, tmp_path):
    live, mine = (core.load(SHIPPED / n) for n in (LIVE, MINE))
    sentences = core.read_sentences("flickr8k", core.MAP_SPLIT, str(data_dir), None, live.config.tokenizer)
    digest = core.split_digest(sentences)
    left = live.atlas(core.aligned_kind(mine.fingerprint), core.MAP_SPLIT, core.MAP_N, digest)
    right = mine.atlas(core.aligned_kind(live.fingerprint), core.MAP_SPLIT, core.MAP_N, digest)
    assert left.shape == right.shape == (core.MAP_N, 2)
    assert live.atlas(core.aligned_kind("0" * 64), core.MAP_SPLIT, core.MAP_N, digest) is None  # another partner: none
    # add_aligned on copies writes each side and keeps what the atlas held
    import shutil

    copies = [shutil.copytree(SHIPPED / n, tmp_path / n) for n in (LIVE, COLLAPSED)]
    before = set(load_all(copies[0]))
    a, b = core.load(copies[0]), core.load(copies[1])
    add_aligned(a, b, str(data_dir), "valid", 60)
    after = load_all(copies[0])
    assert before < set(after) and f"{core.aligned_kind(b.fingerprint)}/valid/60" in after
    assert b.atlas(core.aligned_kind(a.fingerprint), "valid", 60, digest).shape == (60, 2)
    # drop_aligned keeps the named partners' layouts and everything that is not a layout
    ours = core.aligned_kind(b.fingerprint)
    others = {k for k in after if k.startswith("aligned-") and not k.startswith(ours)}
    assert others, "the shipped atlas pairs the live model with more than the collapsed one"
    assert set(drop_aligned(copies[0], [b.fingerprint])) == others
    assert set(load_all(copies[0])) == set(after) - others
    assert drop_aligned(copies[0], [b.fingerprint]) == []


@pytest.mark.parametrize(
    "text, wanted",
    [
        ("", "empty"),
        ("\n  \n", "empty"),
        ("a dog .\x00\x01", "binary"),
        ("a dog .\n" * 10_001, "10,001 lines"),
        ("x" * (2 * 2**20 + 1), "at most 2 MB"),
        (b"a dog", "must be text"),
    ],
)
def test_your_sentences_are_refused_with_what_is_wrong(text, wanted):
    with pytest.raises(core.InputError, match=wanted):
        core.own_sentences(text)


def test_your_sentences_keep_their_lines_and_the_search_matches_whole_words():
    assert core.own_sentences("a dog .\r\n\n  two cats  \n") == ["a dog .", "two cats"]
    found = core.containing(["a dog runs .", "the dogs run .", "a hot dog stand"], ["dog"])
    assert found.tolist() == [True, False, True]
    assert core.containing(["a hot dog stand", "a dog , hot"], ["hot", "dog"]).tolist() == [True, False]
