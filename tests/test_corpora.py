"""Corpora, vocabulary and batching on the real data."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch

from core.library.batching import Dataset
from core.library.corpora import data_dir, read_split
from core.library.errors import CorpusError
from core.library.vocab import SPECIALS, Vocab


def test_data_dir_precedence(monkeypatch, tmp_path):
    monkeypatch.setenv("VAE_MINE_DATA", str(tmp_path / "env"))
    assert data_dir("explicit") == Path("explicit")
    assert data_dir(None) == tmp_path / "env"
    monkeypatch.delenv("VAE_MINE_DATA")
    assert data_dir(None) == Path("data")


def test_ptb_split_reads_every_line(data_dir):
    lines = (data_dir / "ptb" / "valid.txt").read_text().splitlines()
    sents = read_split("ptb", "valid", data_dir)
    assert len(sents) == len(lines) == 3370
    assert sents[0] == lines[0].split()
    assert read_split("ptb", "train", data_dir, limit=10) == [
        ln.split() for ln in (data_dir / "ptb" / "train.txt").read_text().splitlines()[:10]
    ]


def test_snli_is_premises_and_hypotheses_lowercased_and_deduplicated(data_dir):
    sents = read_split("snli", "valid", data_dir)
    assert len(sents) == len({tuple(s) for s in sents})
    assert all(" ".join(s) == " ".join(s).lower() for s in sents)
    premise = (data_dir / "snli" / "src-dev.txt").read_text().splitlines()[0].lower().split()
    hypothesis = (data_dir / "snli" / "targ-dev.txt").read_text().splitlines()[0].lower().split()
    assert premise in sents and hypothesis in sents
    assert 12_000 < len(sents) < 13_100  # README: 12,981 distinct before lower-casing


@pytest.mark.parametrize("corpus,split", [("yahoo", "train"), ("snli", "train")])
def test_missing_split_names_the_path(data_dir, corpus, split):
    with pytest.raises(CorpusError, match=corpus):
        read_split(corpus, split, data_dir)


def test_missing_data_dir_and_empty_file_name_the_path(tmp_path):
    with pytest.raises(CorpusError, match=str(tmp_path / "nowhere" / "ptb" / "train.txt")):
        read_split("ptb", "train", tmp_path / "nowhere")
    (tmp_path / "ptb").mkdir()
    (tmp_path / "ptb" / "train.txt").write_text("\n \n")
    with pytest.raises(CorpusError, match=rf"empty: {tmp_path / 'ptb' / 'train.txt'}"):
        read_split("ptb", "train", tmp_path)
    with pytest.raises(CorpusError, match=r"no folder .*wikitext.*corpora in .*: ptb"):
        read_split("wikitext", "train", tmp_path)


def test_long_sentences_are_truncated_and_counted(data_dir, tmp_path, caplog):
    real = (data_dir / "ptb" / "valid.txt").read_text().splitlines()[:40]
    long = " ".join(real)  # a real-text line far over 200 tokens
    assert len(long.split()) > 200
    (tmp_path / "ptb").mkdir()
    (tmp_path / "ptb" / "valid.txt").write_text("\n".join(real[:5] + [long, long]) + "\n")
    with caplog.at_level(logging.WARNING):
        sents = read_split("ptb", "valid", tmp_path)
    assert [len(s) for s in sents[5:]] == [200, 200]
    assert "truncated 2 sentence(s) longer than 200" in caplog.text


def test_vocab_by_frequency_with_stable_ties_and_a_cap(data_dir):
    sents = read_split("ptb", "train", data_dir, limit=2000)
    vocab = Vocab.build(sents, max_size=500)
    assert vocab.itos[:4] == list(SPECIALS) and len(vocab) == 504
    counts = {}
    first_seen = {}
    for s in sents:
        for w in s:
            counts[w] = counts.get(w, 0) + 1
            first_seen.setdefault(w, len(first_seen))
    words = vocab.itos[4:]
    for a, b in zip(words, words[1:]):
        assert counts[a] > counts[b] or (counts[a] == counts[b] and first_seen[a] < first_seen[b])
    # Every word left out is no more frequent than the last one kept.
    assert max(c for w, c in counts.items() if w not in vocab) <= counts[words[-1]]
    full = Vocab.build(read_split("ptb", "train", data_dir))
    assert len(full) == 10_002  # PTB: 9,999 types incl. <unk> (merged with ours) + <pad> <s> </s>


def test_vocab_round_trip_and_unknown_words(tmp_path):
    vocab = Vocab.build([["the", "cat"], ["the", "dog"]])
    vocab.save(tmp_path / "vocab.txt")
    again = Vocab.load(tmp_path / "vocab.txt")
    assert again.itos == vocab.itos
    assert vocab.ids(["the", "zebra"]) == [vocab.stoi["the"], vocab.unk]
    assert vocab.unknown(["the", "zebra", "<unk>"]) == ["zebra"]


def test_length_buckets_cover_everything_with_little_padding(data_dir):
    sents = read_split("ptb", "train", data_dir, limit=3000)
    data = Dataset(sents, Vocab.build(sents))
    batches = list(data.batches(32, torch.Generator().manual_seed(0)))
    seen = torch.cat([b.index for b in batches]).sort().values
    assert torch.equal(seen, torch.arange(len(sents)))
    assert sum(b.n_tokens for b in batches) == data.n_tokens == sum(len(s) + 1 for s in sents)
    padded = sum(b.tokens.numel() for b in batches)
    real = int(data.lengths.sum())
    random_padded = sum(int(data.lengths[idx].max()) * len(idx) for idx in torch.randperm(len(sents)).split(32))
    assert padded / real < 1.02 < random_padded / real  # bucketing removes nearly all padding
    again = list(data.batches(32, torch.Generator().manual_seed(0)))
    assert all(torch.equal(a.index, b.index) for a, b in zip(batches, again))  # order depends on the seed only
    for b in batches[:5]:
        assert (b.tokens[:, 0] == data.vocab.bos).all()
        assert (b.tokens[torch.arange(len(b)), b.lengths - 1] == data.vocab.eos).all()
