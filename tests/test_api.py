"""The public API on a tiny model trained in this session on real PTB text."""

from __future__ import annotations

import logging
from dataclasses import replace

import numpy as np
import pytest

import core
from core.library.errors import InputError


@pytest.fixture(scope="module")
def model(mine_bundle):
    return core.load(mine_bundle)


def test_encode_is_batched_and_matches_one_at_a_time(model):
    sents = ["the company said it would sell", "the market fell sharply", "mr. smith is chairman"]
    mu, logvar = model.encode(sents)
    assert mu.shape == logvar.shape == (3, model.z_dim)
    for i, s in enumerate(sents):
        one, _ = model.encode(s)
        assert np.allclose(one[0], mu[i], atol=1e-5)
    kl = model.kl(sents)
    assert kl.shape == (3,) and (kl >= 0).all()
    assert np.allclose(kl, 0.5 * (mu**2 + np.exp(logvar) - logvar - 1).sum(1), atol=1e-4)


def test_unknown_words_are_reported_not_dropped(model, caplog):
    """Reported in the result and in the debug log; never at INFO, where a server's log would keep a
    visitor's words."""
    with caplog.at_level(logging.INFO, logger="core.serving.api"):
        model.prepare("the zyzzyva said qwxv")
    assert "zyzzyva" not in caplog.text
    with caplog.at_level(logging.DEBUG, logger="core.serving.api"):
        prepared = model.prepare(["the zyzzyva said qwxv ."])
    p = prepared[0]
    assert p.tokens[:4] == ["the", "zyzzyva", "said", "qwxv"]
    assert "zyzzyva" in p.unknown and "qwxv" in p.unknown
    assert "zyzzyva" in caplog.text
    assert model.unknown_words(["the company"]) == [[]]
    mu_unk, _ = model.encode("the zyzzyva said")
    mu_lit, _ = model.encode("the <unk> said")
    assert np.allclose(mu_unk, mu_lit)  # read as <unk>, at the same position


def test_text_is_cleaned_the_same_way_everywhere(model):
    p = model.prepare(["The Company\x00 said\tit would\u200b SELL."])[0]
    assert p.tokens[:4] == ["the", "company", "said", "it"]
    assert "\x00" not in " ".join(p.tokens)
    assert p.tokens[-1] == "." and "sell" in p.tokens


@pytest.mark.parametrize("bad", ["", "   ", "\x00\x01", ["ok sentence", ""]])
def test_empty_text_is_refused_clearly(model, bad):
    with pytest.raises(InputError, match="empty"):
        model.encode(bad)


def test_huge_text_is_truncated_and_emoji_html_survive(model, caplog):
    huge = " ".join(["the market"] * 5000)  # 10,000 words, ~50,000 characters
    with caplog.at_level(logging.WARNING):
        p = model.prepare(huge)[0]
    assert len(p.tokens) == model.max_len and p.truncated == 10_000 - model.max_len
    assert "cut" in caplog.text
    mu, _ = model.encode([huge, "<script>alert(1)</script> 🙂 the market"])
    assert np.isfinite(mu).all()
    assert "🙂" in model.unknown_words("🙂 the market")[0]


def test_bad_arguments_are_refused_clearly(model):
    with pytest.raises(InputError, match="strategy"):
        model.decode(np.zeros(model.z_dim), strategy="nucleus")
    with pytest.raises(InputError, match=rf"shape \[N, {model.z_dim}\]"):
        model.decode(np.zeros(model.z_dim + 1))
    with pytest.raises(InputError, match="NaN"):
        model.decode(np.full(model.z_dim, np.nan))
    with pytest.raises(InputError, match="temperature"):
        model.sample_prior(2, strategy="sample", temperature=0)
    with pytest.raises(InputError, match="steps"):
        model.interpolate("a", "b", steps=1)
    with pytest.raises(InputError, match="list of strings"):
        model.encode([1, 2])
    with pytest.raises(InputError, match="unknown decoding options"):
        model.sample_prior(2, top_k=3)


@pytest.mark.parametrize(
    "name, bad",
    [
        ("seed", -1),
        ("seed", 1e30),
        ("seed", 2.5),
        ("seed", "abc"),
        ("seed", None),
        ("seed", True),
        ("temperature", 0),
        ("temperature", "nan"),
        ("temperature", 2.5),
        ("beam_size", 11),
        ("beam_size", 2.5),
        ("steps", 1),
        ("steps", 51),
        ("samples", -5),
        ("n", 0),
        ("n", 1e9),
        ("k", ""),
        ("map_n", 49),
        ("seed", "١٢"),
        ("k", "５"),
    ],
)
def test_every_limit_refuses_bad_values_naming_its_range(name, bad):
    limit = core.LIMITS[name]
    with pytest.raises(InputError) as e:
        core.check(name, bad)
    assert f"{limit.label} must be {limit.allowed}" in str(e.value)


def test_limits_accept_their_ends_and_numbers_as_text():
    assert core.check("seed", "2147483647") == 2**31 - 1 and core.check("seed", 0.0) == 0
    assert isinstance(core.check("k", 3.0), int)
    assert core.check("temperature", " 0.1 ") == pytest.approx(0.1) and core.check("temperature", 2) == 2.0
    assert core.LIMITS["beam_size"].allowed == "a whole number between 1 and 10"


def test_the_api_checks_against_the_same_limits(model):
    z = model.prior_codes(2, seed=1)
    with pytest.raises(InputError, match="seed must be a whole number between 0 and 2,147,483,647"):
        model.decode(z, "sample", seed=-1)
    with pytest.raises(InputError, match="beam size must be a whole number between 1 and 10"):
        model.decode(z, "beam", beam_size=11)
    with pytest.raises(InputError, match="posterior samples must be"):
        model.posterior_samples("the market", 11)
    assert model.decode(z, "greedy", temperature="ignored", beam_size=None) == model.decode(z)  # unused: unchecked


def test_decode_strategies(model):
    z = model.prior_codes(4, seed=1)
    greedy = model.decode(z, "greedy", max_len=20)
    assert len(greedy) == 4 and greedy == model.decode(z, "greedy", max_len=20)
    assert all(len(s.split()) <= 20 for s in greedy)
    s1 = model.decode(z, "sample", max_len=20, temperature=1.5, seed=5)
    assert s1 == model.decode(z, "sample", max_len=20, temperature=1.5, seed=5)
    assert s1 != model.decode(z, "sample", max_len=20, temperature=1.5, seed=6)
    beam = model.decode(z, "beam", max_len=20, beam_size=4)
    assert len(beam) == 4 and all(isinstance(s, str) for s in beam)
    assert model.decode(z, "beam", max_len=20, beam_size=1) == greedy  # a beam of one is greedy search
    assert all("<s>" not in s and "</s>" not in s and "<pad>" not in s for s in greedy + s1 + beam)


def test_path_plane_draws_a_path_exactly_and_the_prior_as_the_unit_circle():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=16), rng.normal(size=16)
    t = np.linspace(0, 1, 9)[:, None]
    omega = np.arccos(a @ b / np.linalg.norm(a) / np.linalg.norm(b))
    for path in ((1 - t) * a + t * b, (np.sin((1 - t) * omega) * a + np.sin(t * omega) * b) / np.sin(omega)):
        xy, prior = core.path_plane(path, rng.normal(size=(20000, 16)))
        assert np.linalg.norm(xy[:, None] - xy[None], axis=-1) == pytest.approx(
            np.linalg.norm(path[:, None] - path[None], axis=-1), abs=1e-9
        )  # lengths are latent distances
        assert np.linalg.norm(xy, axis=1) == pytest.approx(np.linalg.norm(path, axis=1), abs=1e-9)  # origin kept
        assert xy[-1, 1] == pytest.approx(xy[0, 1]) and xy[-1, 0] > xy[0, 0]  # x runs from one end to the other
        assert np.cov(prior.T) == pytest.approx(np.eye(2), abs=0.03)  # N(0, I) lands on N(0, I_2)
    same = core.path_plane(np.tile(a, (4, 1)))[0]  # a path of one point (a collapsed model's) still gets a plane
    assert np.isfinite(same).all() and np.linalg.norm(same[0]) == pytest.approx(np.linalg.norm(a))
    assert np.abs(core.path_plane(np.zeros((3, 16)))[0]).max() == 0


def test_sample_prior_reconstruct_interpolate(model):
    assert model.sample_prior(3, seed=2) == model.sample_prior(3, seed=2)
    assert len(model.sample_prior(5, seed=2, strategy="sample")) == 5
    rec = model.reconstruct(["the company said it would sell", "the market fell"])
    assert len(rec) == 2
    assert model.reconstruct("the market fell", from_mean=False, seed=1) == model.reconstruct(
        "the market fell", from_mean=False, seed=1
    )
    a, b = "the company said it would sell", "the market fell sharply"
    for mode in ("linear", "slerp"):
        codes = model.interpolation_codes(a, b, steps=6, mode=mode)
        mu, _ = model.encode([a, b])
        assert codes.shape == (6, model.z_dim)
        assert np.allclose(codes[0], mu[0], atol=1e-5) and np.allclose(codes[-1], mu[1], atol=1e-5)
        path = model.interpolate(a, b, steps=6, mode=mode)
        assert len(path) == 6 and path[0] == model.decode(mu[0])[0] and path[-1] == model.decode(mu[1])[0]
    lin = model.interpolation_codes(a, b, steps=3)
    assert np.allclose(lin[1], (lin[0] + lin[2]) / 2, atol=1e-6)
    slerp = model.interpolation_codes(a, b, steps=3, mode="slerp")
    assert np.linalg.norm(slerp[1]) >= np.linalg.norm(lin[1]) - 1e-6  # slerp keeps the norm up


def test_a_prepared_sentence_is_read_once_and_only_by_its_own_model(model):
    """What prepare() returns passes through every method that takes text (a tab tokenises its input
    once a request), with the same figures as the text; another model reads its text afresh."""
    text, other_text = "the company said it would sell", "the market fell sharply"
    prepared = model.prepare([text])
    assert model.prepare(prepared)[0] is prepared[0]
    assert np.array_equal(model.encode(prepared)[0], model.encode([text])[0])
    assert np.array_equal(model.kl(prepared), model.kl([text]))
    assert model.reconstruct(prepared) == model.reconstruct([text])
    pair = model.prepare([text, other_text])
    assert np.array_equal(model.interpolation_codes(*pair), model.interpolation_codes(text, other_text))
    again = core.load(model.path)  # a second load of the same bundle reads it as the first does
    assert again.prepare(prepared)[0] is prepared[0]
    foreign = replace(prepared[0], tokens=["zzz"], reader="another bundle|treebank")
    assert again.prepare([foreign])[0].tokens == prepared[0].tokens  # read afresh from its text
