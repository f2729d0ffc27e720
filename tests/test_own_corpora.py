"""Your own text as a corpus: folders and single files, the one tokenizer per bundle, bad files.

Every sentence here is invented for these tests; the real corpora are only read, never copied.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pytest

import core
from core.commands.train import main as train_main
from core.library import corpora
from core.library.corpora import read_split, resolve
from core.library.errors import CheckpointError, CorpusError
from core.library.tokenize import tokenize
from explorer.app import status_line
from explorer.context import Context

ROOT = Path(__file__).resolve().parents[1]
SUBJECTS = ["The old Baker", "My neighbour's cat", "A tired pilot", "Our teacher", "The small robot", "Grandma"]
VERBS = ["painted", "didn't fix", "carried", "found", "sold", "forgot"]
OBJECTS = ["a blue kite.", "the broken clock!", "(two) wooden spoons.", '"seven" lemons?', "my red umbrella."]


def invented(n: int) -> list[str]:
    """n distinct raw sentences (capitals, clitics, punctuation) made from the word lists above."""
    out = [f"{s} {v} {o}" for s in SUBJECTS for v in VERBS for o in OBJECTS]
    assert n <= len(out)
    return out[:n]


def write_folder(folder: Path, n_train: int = 60) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    lines = invented(n_train + 30)
    (folder / "train.txt").write_text("\n".join(lines[:n_train]) + "\n", encoding="utf-8")
    (folder / "valid.txt").write_text("\n".join(lines[n_train : n_train + 15]) + "\n", encoding="utf-8")
    (folder / "test.txt").write_text("\n".join(lines[n_train + 15 :]) + "\n", encoding="utf-8")
    return folder


# -- the tokenizer ------------------------------------------------------------------------------------


def test_treebank_lowercases_and_splits_raw_text_and_keeps_markers():
    assert tokenize("treebank", "My neighbour's cat DIDN'T find \"two\" <unk> spoons,\x07 (sadly).") == [
        "my",
        "neighbour",
        "'s",
        "cat",
        "did",
        "n't",
        "find",
        '"',
        "two",
        '"',
        "<unk>",
        "spoons",
        ",",
        "(",
        "sadly",
        ")",
        ".",
    ]


def test_pretokenized_corpora_pass_through_and_treebank_is_stable(corpora):
    ptb = (corpora / "ptb" / "valid.txt").read_text().splitlines()[:300]
    assert read_split("ptb", "valid", corpora, limit=300, tokenizer="pretokenized") == [ln.split() for ln in ptb]
    for name in ("ptb/valid.txt", "flickr8k/valid.txt", "snli/src-dev.txt"):
        for line in (corpora / name).read_text().splitlines()[:300]:
            once = tokenize("treebank", line)
            assert tokenize("treebank", " ".join(once)) == once  # corpus sentences re-read in the explorer


def test_typed_text_for_a_pretokenized_model_keeps_known_words_and_splits_the_rest():
    vocab = {"the", "company", "'s", "shares", "fell", "N", "%", "."}
    assert tokenize("pretokenized", "The company's shares fell N %.", vocab) == [
        "the",
        "company",
        "'s",
        "shares",
        "fell",
        "N",
        "%",
        ".",
    ]


def test_bundles_without_a_recorded_tokenizer_read_typed_text_as_before():
    """Format-1 bundles (no tokenizer recorded; the flickr8k checkpoints shipped before) keep their rules,
    the `plain` tokenizer (called `legacy` before: a config or caller that names it so gets the same)."""
    model = core.load(Path(__file__).parent / "fixtures" / "format1" / "vae-mine")
    assert model.config.tokenizer == "plain" and core.describe(model.path).tokenizer == "plain"
    assert tokenize("legacy", "The dog's ball, (red)!", model.vocab) == tokenize(
        "plain", "The dog's ball, (red)!", model.vocab
    )
    assert model.prepare("The dog's ball, (red)!")[0].tokens == ["the", "dog's", "ball", ",", "(", "red", ")", "!"]
    assert model.prepare("N <unk> u.s. ok")[0].tokens == ["n", "<unk>", "u.s.", "ok"]  # "u.s." is a PTB word


# -- where a corpus is --------------------------------------------------------------------------------


def test_a_folder_by_name_or_by_path_and_the_names_bundles_record(tmp_path):
    write_folder(tmp_path / "data" / "stories")
    by_name = read_split("stories", "valid", tmp_path / "data", tokenizer="treebank")
    by_path = read_split(str(tmp_path / "data" / "stories"), "valid", tokenizer="treebank")
    assert by_name == by_path and len(by_name) == 15 and by_name[0][:2] == ["a", "tired"]
    assert resolve("stories", tmp_path / "data").name == "stories"
    assert resolve(str(tmp_path / "data" / "stories")).name == str((tmp_path / "data" / "stories").resolve())
    assert corpora.available(tmp_path / "data") == ["stories"]


def test_a_single_file_is_split_by_a_fixed_seed_and_the_stated_ratios(tmp_path):
    lines = invented(100)
    path = tmp_path / "mine.txt"
    path.write_text("\r\n".join(lines) + "\r\n", encoding="utf-8")  # CRLF line ends are read
    splits = {s: read_split(str(path), s, tokenizer="pretokenized") for s in corpora.SPLITS}
    assert [len(splits[s]) for s in corpora.SPLITS] == [80, 10, 10]
    joined = {s: [" ".join(t) for t in splits[s]] for s in corpora.SPLITS}
    assert sorted(sum(joined.values(), [])) == sorted(lines)  # disjoint, nothing lost, no stray \r
    assert joined["train"] == [ln for ln in lines if ln in set(joined["train"])]  # file order kept
    assert read_split(str(path), "valid", tokenizer="pretokenized") == splits["valid"]  # the same every time


BAD_FILES = {
    "binary": (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", r"looks binary \(a NUL byte at offset 8\)"),
    "empty": (b"\n \r\n\n", "is empty"),
    "one line": (b"A tired pilot painted a blue kite. Our teacher sold my red umbrella.", "has a single line"),
    "latin-1": ("caf\u00e9 au lait\nna\u00efve robot\n".encode("latin-1"), "is not UTF-8: byte 0xe9 on line 1"),
    "mixed": (
        "caf\u00e9 au lait\n".encode() + "na\u00efve robot\n".encode("latin-1"),
        "mixes UTF-8 with another encoding: byte 0xef on line 2",
    ),
}


@pytest.mark.parametrize("kind", BAD_FILES)
def test_bad_files_are_refused_naming_the_file(tmp_path, kind):
    data, message = BAD_FILES[kind]
    write_folder(tmp_path / "c")
    (tmp_path / "c" / "valid.txt").write_bytes(data)
    with pytest.raises(CorpusError, match=rf"(?=.*{re.escape(str(tmp_path / 'c' / 'valid.txt'))}).*{message}"):
        read_split(str(tmp_path / "c"), "valid")


def test_a_bom_is_skipped_and_files_over_the_cap_are_refused(tmp_path, monkeypatch):
    write_folder(tmp_path / "c")
    (tmp_path / "c" / "test.txt").write_bytes(
        "\ufeffOur teacher found a blue kite.\nGrandma sold two spoons.\n".encode()
    )
    assert read_split(str(tmp_path / "c"), "test", tokenizer="treebank")[0][0] == "our"
    monkeypatch.setattr(corpora, "MAX_BYTES", 1024)
    with pytest.raises(
        CorpusError, match=r"train.txt is [0-9,]+ bytes, over the cap of 1,024 bytes.*VAE_MINE_MAX_CORPUS_MB"
    ):
        read_split(str(tmp_path / "c"), "train")


def test_a_single_file_too_short_to_split_is_refused(tmp_path):
    (tmp_path / "few.txt").write_text("\n".join(invented(5)))
    with pytest.raises(CorpusError, match=r"few.txt has 5 lines; at least 10"):
        read_split(str(tmp_path / "few.txt"), "train")


# -- a bundle trained on your own folder ----------------------------------------------------------------


def test_training_on_a_folder_records_it_and_the_explorer_warns_when_it_changes(tmp_path, capsys):
    folder = write_folder(tmp_path / "my stories")
    out = tmp_path / "runs" / "mine"
    args = [
        "--corpus",
        str(folder),
        "--model",
        "vae",
        "--config",
        "tiny",
        "--epochs",
        "1",
        "--out",
        str(out),
        "--device",
        "cpu",
        "--no-progress",
        "--batch-size",
        "16",
    ]
    assert train_main(args) == 0
    run = json.loads((out / "config.json").read_text())["run"]
    assert run["corpus"] == str(folder.resolve()) and run["tokenizer"] == "treebank"
    assert run["corpus_sha256"] == hashlib.sha256((folder / "train.txt").read_bytes()).hexdigest()
    model = core.load(out)
    assert model.prepare("My neighbour's CAT didn't fix the kite!")[0].tokens == [
        "my",
        "neighbour",
        "'s",
        "cat",
        "did",
        "n't",
        "fix",
        "the",
        "kite",
        "!",
    ]
    assert model.encode_split("valid")[0][0] == "a tired pilot painted a blue kite ."
    ctx = Context(out.parent, None, tmp_path / "cache")  # a bundle's corpus path is not read unless allowed
    assert "corpus data missing" in status_line(ctx)
    ctx = Context(out.parent, None, tmp_path / "cache", own_corpora=(folder,))  # app.py --corpus FOLDER
    assert "differs" not in status_line(ctx) and "missing" not in status_line(ctx)

    (folder / "train.txt").write_text("\n".join(invented(61)) + "\n")  # one sentence more
    capsys.readouterr()
    assert train_main([*args[:7], "2", *args[8:], "--resume"]) == 2
    assert "has changed since" in capsys.readouterr().err
    ctx = Context(out.parent, None, tmp_path / "cache", own_corpora=(folder,))
    assert "mine**: its corpus" in status_line(ctx) and "differs from the one it was trained on" in status_line(ctx)
    (folder / "train.txt").unlink()
    ctx = Context(out.parent, None, tmp_path / "cache", own_corpora=(folder,))
    assert f"corpus data missing for {folder.resolve()}" in status_line(ctx)


def test_an_unknown_recorded_tokenizer_is_a_checkpoint_error(tmp_path):
    bundle = tmp_path / "b"
    bundle.mkdir()
    d = json.loads((ROOT / "checkpoints" / "flickr8k-vae-mine" / "config.json").read_text())
    d["run"]["tokenizer"] = "sentencepiece"
    (bundle / "config.json").write_text(json.dumps(d))
    with pytest.raises(CheckpointError, match=r"config.json: unknown tokenizer 'sentencepiece'"):
        core.describe(bundle)
