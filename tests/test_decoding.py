"""Decoding: the inverse-CDF sampler draws from the right distribution, and dropping finished
sentences from the batch changes no sentence."""

from __future__ import annotations

import pytest
import torch

from core.library.checkpoint import load_bundle
from core.library.decoding import prior_samples, sample_categorical, step_decode


def test_inverse_cdf_sampler_matches_the_distribution():
    probs = torch.tensor([0.5, 0.0, 0.3, 0.15, 0.05, 0.0])
    logits = probs.log().expand(200_000, -1)
    draws = sample_categorical(logits, torch.Generator().manual_seed(0))
    freq = torch.bincount(draws, minlength=6).double() / len(draws)
    assert torch.allclose(freq, probs.double(), atol=0.004), freq
    assert freq[1] == 0 and freq[5] == 0  # impossible words are never drawn, the last one included
    peaked = torch.full((3, 10), -1e4)
    peaked[torch.arange(3), torch.tensor([9, 0, 4])] = 0.0
    assert sample_categorical(peaked).tolist() == [9, 0, 4]


@pytest.mark.usefixtures("corpora")  # a PTB-trained model, which ends its sentences
def test_a_batch_decodes_exactly_like_its_sentences_one_by_one(mine_bundle):
    _, vocab, model, _ = load_bundle(mine_bundle)
    z = torch.randn(12, model.z_dim, generator=torch.Generator().manual_seed(4)) * 2
    together = step_decode(model, vocab, z, max_len=40)
    alone = [step_decode(model, vocab, z[i : i + 1], max_len=40)[0] for i in range(12)]
    assert together == alone
    assert len({len(s) for s in together}) > 1  # sentences of several lengths: rows did leave the batch


def test_prior_samples_are_repeatable_sentences_of_words(mine_bundle):
    _, vocab, model, _ = load_bundle(mine_bundle)
    a = prior_samples(model, vocab, 300, batch_size=128, seed=3)
    assert a == prior_samples(model, vocab, 300, batch_size=128, seed=3) and len(a) == 300
    assert a != prior_samples(model, vocab, 300, batch_size=128, seed=4)
    words = {w for s in a for w in s}
    assert len(words) > 50 and not words & {"<s>", "</s>", "<pad>"}
    assert max(len(s) for s in a) <= 100
