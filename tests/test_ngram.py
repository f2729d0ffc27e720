"""KenLM forward / reverse perplexity with the real lmplz (built by scripts/install_kenlm.sh)."""

from __future__ import annotations

import json
import math
import random
import subprocess
import sys

import pytest

from core.library.corpora import read_split
from core.library.ngram import KenLMError, perplexity, train_ngram

ROOT = __import__("pathlib").Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def ptb_5gram(corpora):
    return train_ngram(read_split("ptb", "train", corpora, limit=8000))


def test_a_5gram_of_real_ptb_prefers_held_out_ptb_to_its_shuffled_words(ptb_5gram, corpora):
    held = read_split("ptb", "valid", corpora, limit=500)
    rng = random.Random(0)
    shuffled = [rng.sample(s, len(s)) for s in held]
    real, scrambled = perplexity(ptb_5gram, held), perplexity(ptb_5gram, shuffled)
    assert 20 < real < 1000 and scrambled > 2 * real, (real, scrambled)


def test_perplexity_counts_end_of_sentence_like_kenlm_and_our_ppl(ptb_5gram, corpora):
    sent = read_split("ptb", "test", corpora, limit=1)[0]
    line = " ".join("UNK" if w == "<unk>" else w for w in sent)
    assert perplexity(ptb_5gram, [sent]) == pytest.approx(ptb_5gram.perplexity(line), rel=1e-9)
    # two sentences: the per-token average, not the average of per-sentence perplexities
    a, b = read_split("ptb", "test", corpora, limit=3)[1:]
    la, lb = (ptb_5gram.score(" ".join(s).replace("<unk>", "UNK")) for s in (a, b))
    expected = 10 ** (-(la + lb) / (len(a) + len(b) + 2))
    assert perplexity(ptb_5gram, [a, b]) == pytest.approx(expected, rel=1e-9)


def test_unk_in_the_text_is_accepted(ptb_5gram):
    assert math.isfinite(perplexity(ptb_5gram, [["<unk>", "said", "the", "<unk>"]]))
    lm = train_ngram([["a", "<unk>", "b"], ["<unk>", "c"]] * 3)
    assert math.isfinite(perplexity(lm, [["a", "<unk>", "c"]]))


def test_no_sentences_is_a_clear_error():
    with pytest.raises(KenLMError, match="no sentences"):
        train_ngram([])


def evaluate_cli(bundle, data, *args, env=None):
    cmd = [
        sys.executable,
        "-m",
        "core.evaluate",
        str(bundle),
        "--iw-samples",
        "0",
        "--max-sentences",
        "300",
        "--data-dir",
        str(data),
        *args,
    ]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=env, timeout=600)


def test_fppl_and_rppl_of_a_small_trained_model_end_to_end(mine_bundle, any_corpora, tmp_path):
    out = tmp_path / "eval.json"
    done = evaluate_cli(mine_bundle, any_corpora, "--fppl-samples", "400", "--json", str(out))
    assert done.returncode == 0, done.stderr
    m = json.loads(out.read_text())
    assert m["fppl_samples"] == 400
    assert (
        m["fppl_max_len"] == max(len(s) for s in read_split("ptb", "train", any_corpora)) + 1
    )  # the longest, and </s>
    assert 1 < m["fppl"] < 1e5 and 1 < m["rppl"] < 1e6, m
    assert "FPPL" in done.stdout and "RPPL" in done.stdout
    assert "sampling from the prior" in done.stderr  # the progress bar
    again = evaluate_cli(mine_bundle, any_corpora, "--fppl-samples", "400", "--json", str(tmp_path / "again.json"))
    assert again.returncode == 0, again.stderr
    assert json.loads((tmp_path / "again.json").read_text())["fppl"] == m["fppl"]  # seeded: repeatable


def test_missing_lmplz_is_a_clear_error_and_no_fppl_skips_it(mine_bundle, any_corpora, tmp_path):
    import os

    env = {**os.environ, "KENLM_HOME": str(tmp_path / "nowhere")}
    done = evaluate_cli(mine_bundle, any_corpora, "--fppl-samples", "10", env=env)
    assert done.returncode == 2 and "install_kenlm.sh" in done.stderr and "Traceback" not in done.stderr
    skipped = evaluate_cli(mine_bundle, any_corpora, "--no-fppl", "--json", str(tmp_path / "m.json"), env=env)
    assert skipped.returncode == 0, skipped.stderr
    assert "fppl" not in json.loads((tmp_path / "m.json").read_text())
