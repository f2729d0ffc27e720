"""Corpora: a folder of sentences, one a line, or a single text file.

A corpus is named by `--corpus`, either as
- a folder under the data directory (`--data-dir`, else `$VAE_MINE_DATA`, else `./data`) holding
  `train.txt`, `valid.txt` and `test.txt`: `ptb`, `flickr8k`, or one of your own;
- a path to such a folder anywhere (`--corpus path/to/folder`);
- a path to one text file, split into train / valid / test (SPLIT_RATIOS) by a fixed shuffle (SPLIT_SEED),
  so that every run and the explorer see the same three splits.
`snli` is the exception: only the official dev/test pairs exist here, premises and hypotheses as sentences.

Files are UTF-8 (a BOM is skipped; CRLF and CR line ends are read); binary files, files in
another or mixed encodings, empty and single-line files, and files over MAX_BYTES are refused
with a CorpusError naming the file.
"""

from __future__ import annotations

import hashlib
import logging
import os
import random
from dataclasses import dataclass
from pathlib import Path

from .errors import CorpusError
from .tokenize import UNRECORDED, tokenize

log = logging.getLogger(__name__)

SPLITS = ("train", "valid", "test")
SPLIT_RATIOS = (0.8, 0.1, 0.1)  # of a single-file corpus's lines
SPLIT_SEED = 0
MIN_LINES_TO_SPLIT = 10
MAX_BYTES = int(os.environ.get("VAE_MINE_MAX_CORPUS_MB", "512")) * 2**20  # a file is read whole into memory
# SNLI here is only the official dev/test pairs; premises and hypotheses become sentences.
_SNLI_FILES = {"valid": ("src-dev.txt", "targ-dev.txt"), "test": ("src-test.txt", "targ-test.txt")}


def data_dir(explicit: str | os.PathLike | None = None) -> Path:
    """--data-dir, else $VAE_MINE_DATA, else ./data."""
    if explicit:
        return Path(explicit)
    env = os.environ.get("VAE_MINE_DATA")
    return Path(env) if env else Path("data")


@dataclass(frozen=True)
class Corpus:
    """Where a corpus's text lives. `name` is what a bundle records: the folder's name under the
    data directory, or the absolute path of a folder or file given as a path."""

    name: str
    path: Path
    kind: str  # "folder", "file" or "snli"

    def files(self, split: str) -> list[Path]:
        if split not in SPLITS:
            raise CorpusError(f"unknown split {split!r}; known: {', '.join(SPLITS)}")
        if self.kind == "file":
            return [self.path]
        if self.kind == "snli":
            if split not in _SNLI_FILES:
                raise CorpusError(
                    f"snli has no {split} split here: only the official dev/test pairs are "
                    f"available ({self.path}/src-dev.txt, ...)"
                )
            return [self.path / name for name in _SNLI_FILES[split]]
        return [self.path / f"{split}.txt"]

    def sha256(self) -> str:
        """sha256 of the training file (of the whole file for a single-file corpus)."""
        path = self.files("train")[0]
        _check_file(path)
        return file_sha256(path)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def resolve(spec: str, root: str | os.PathLike | None = None) -> Corpus:
    """The corpus `spec` names: a bare name is a folder under the data directory, anything with a
    path separator (or an existing path) is a folder or file."""
    spec = str(spec)
    if not spec.strip():
        raise CorpusError("no corpus given")
    path = Path(spec).expanduser()
    if os.sep in spec or "/" in spec or (path.exists() and not (data_dir(root) / spec).exists()):
        if path.is_dir():
            return Corpus(str(path.resolve()), path.resolve(), "folder")
        if path.is_file():
            return Corpus(str(path.resolve()), path.resolve(), "file")
        raise CorpusError(f"corpus not found: {path} is neither a folder nor a file")
    return Corpus(spec, data_dir(root) / spec, "snli" if spec == "snli" else "folder")


def available(root: str | os.PathLike | None = None) -> list[str]:
    """Folders under the data directory that hold a training or validation split."""
    base = data_dir(root)
    if not base.is_dir():
        return []
    return sorted(
        p.name
        for p in base.iterdir()
        if (p / "train.txt").is_file() or (p / "valid.txt").is_file() or (p / "src-dev.txt").is_file()
    )


def _check_file(path: Path) -> int:
    if not path.is_file():
        raise CorpusError(f"corpus file not found: {path}{_missing_hint(path.parent)}")
    size = path.stat().st_size
    if size > MAX_BYTES:
        raise CorpusError(
            f"corpus file {path} is {size:,} bytes, over the cap of {MAX_BYTES:,} bytes "
            f"({MAX_BYTES / 2**20:g} MiB; a file is read whole into memory); split it, or raise "
            "$VAE_MINE_MAX_CORPUS_MB"
        )
    return size


def _missing_hint(folder: Path) -> str:
    if folder.is_dir():
        return ""
    found = available(folder.parent)
    return (
        f" (no folder {folder}; set --data-dir or $VAE_MINE_DATA; corpora in {folder.parent}: "
        f"{', '.join(found) or 'none'}; `python -m core.data get ptb` downloads PTB)"
    )


def read_lines(path: Path) -> list[str]:
    """The non-blank lines of a corpus file, stripped; CorpusError for anything that is not
    UTF-8 text of at least two lines."""
    _check_file(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise CorpusError(f"cannot read corpus file {path}: {e}") from None
    nul = data.find(b"\0")
    if nul >= 0:
        raise CorpusError(
            f"corpus file {path} looks binary (a NUL byte at offset {nul}); a corpus is UTF-8 text, one sentence a line"
        )
    lines = [ln.strip() for ln in _decode(path, data).splitlines()]
    lines = [ln for ln in lines if ln]
    if not lines:
        raise CorpusError(f"corpus file is empty: {path}")
    if len(lines) == 1:
        raise CorpusError(
            f"corpus file {path} has a single line ({len(lines[0]):,} characters); a corpus holds one sentence a line"
        )
    return lines


def _decode(path: Path, data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        before = data[: e.start]
        mixed = any(b > 0x7F for b in before)  # valid UTF-8 beyond ASCII came first
        what = "mixes UTF-8 with another encoding" if mixed else "is not UTF-8"
        raise CorpusError(
            f"corpus file {path} {what}: byte 0x{data[e.start]:02x} on line {line} cannot be read "
            "as UTF-8; convert the file to UTF-8 (e.g. iconv -f latin1 -t utf-8)"
        ) from None


def split_of(lines: list[str], split: str, path: Path) -> list[str]:
    """One split of a single-file corpus: its lines shuffled by SPLIT_SEED and cut at SPLIT_RATIOS,
    each split keeping the file's order."""
    if len(lines) < MIN_LINES_TO_SPLIT:
        raise CorpusError(
            f"corpus file {path} has {len(lines)} lines; at least {MIN_LINES_TO_SPLIT} are needed to "
            f"split it into train/valid/test ({'/'.join(str(r) for r in SPLIT_RATIOS)})"
        )
    order = list(range(len(lines)))
    random.Random(SPLIT_SEED).shuffle(order)
    n_valid = max(1, round(len(lines) * SPLIT_RATIOS[1]))
    n_test = max(1, round(len(lines) * SPLIT_RATIOS[2]))
    parts = {"valid": order[:n_valid], "test": order[n_valid : n_valid + n_test], "train": order[n_valid + n_test :]}
    return [lines[i] for i in sorted(parts[split])]


def read_split(
    corpus: str,
    split: str,
    root: str | os.PathLike | None = None,
    limit: int | None = None,
    max_len: int = 200,
    tokenizer: str = UNRECORDED,
) -> list[list[str]]:
    """Sentences of one split as token lists (by the named tokenizer), truncated to `max_len` tokens.

    SNLI sentences are lower-cased (like Flickr8k and the text-VAE SNLI corpus) and deduplicated.
    """
    source = resolve(corpus, root)
    lines: list[str] = []
    for path in source.files(split):
        lines.extend(read_lines(path))
    if source.kind == "file":
        lines = split_of(lines, split, source.path)
    if source.kind == "snli":
        lines = list(dict.fromkeys(ln.lower() for ln in lines))
    if limit is not None:
        lines = lines[:limit]
    sentences = [tokens for tokens in (tokenize(tokenizer, ln) for ln in lines) if tokens]
    long = sum(len(s) > max_len for s in sentences)
    if long:
        log.warning("%s/%s: truncated %d sentence(s) longer than %d tokens", corpus, split, long, max_len)
        sentences = [s[:max_len] for s in sentences]
    return sentences


def read_sentences(
    corpus: str, split: str, data_dir: str | None = None, limit: int | None = None, tokenizer: str = UNRECORDED
) -> list[str]:
    """A corpus split as plain sentences, tokens joined by spaces (data folder: data_dir, else
    $VAE_MINE_DATA, else ./data)."""
    return [" ".join(tokens) for tokens in read_split(corpus, split, data_dir, limit, tokenizer=tokenizer)]
