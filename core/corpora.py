"""Reading the named corpora from the data directory.

Corpora are never shipped with the project: they live in a data directory chosen by
`--data-dir`, else `$VAE_MINE_DATA`, else `./data`.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path

from .errors import CorpusError

log = logging.getLogger(__name__)

CORPORA = ("ptb", "flickr8k", "yahoo", "snli")
SPLITS = ("train", "valid", "test")
# SNLI here is only the official dev/test pairs; premises and hypotheses become sentences.
_SNLI_FILES = {"valid": ("src-dev.txt", "targ-dev.txt"), "test": ("src-test.txt", "targ-test.txt")}


def data_dir(explicit: str | os.PathLike | None = None) -> Path:
    """--data-dir, else $VAE_MINE_DATA, else ./data."""
    if explicit:
        return Path(explicit)
    env = os.environ.get("VAE_MINE_DATA")
    return Path(env) if env else Path("data")


def split_paths(corpus: str, split: str, root: Path) -> list[Path]:
    if corpus not in CORPORA:
        raise CorpusError(f"unknown corpus {corpus!r}; known: {', '.join(CORPORA)}")
    if split not in SPLITS:
        raise CorpusError(f"unknown split {split!r}; known: {', '.join(SPLITS)}")
    if corpus == "snli":
        if split not in _SNLI_FILES:
            raise CorpusError(
                f"snli has no {split} split here: only the official dev/test pairs are available "
                f"({root / 'snli'}/src-dev.txt, ...)"
            )
        return [root / "snli" / name for name in _SNLI_FILES[split]]
    return [root / corpus / f"{split}.txt"]


def _read_lines(path: Path) -> list[str]:
    if not path.is_file():
        hint = "" if path.parent.is_dir() else f" (no folder {path.parent}; set --data-dir or $VAE_MINE_DATA)"
        raise CorpusError(f"corpus file not found: {path}{hint}")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise CorpusError(f"cannot read corpus file {path}: {e}") from None
    lines = [ln.strip() for ln in text.splitlines()]
    lines = [ln for ln in lines if ln]
    if not lines:
        raise CorpusError(f"corpus file is empty: {path}")
    return lines


def read_split(
    corpus: str, split: str, root: str | os.PathLike | None = None, limit: int | None = None, max_len: int = 200
) -> list[list[str]]:
    """Sentences of one split as token lists, truncated to `max_len` tokens.

    SNLI sentences are lower-cased (like Flickr8k and the text-VAE SNLI corpus) and deduplicated.
    """
    base = data_dir(root)
    paths = split_paths(corpus, split, base)
    lines: list[str] = []
    for p in paths:
        lines.extend(_read_lines(p))
    if corpus == "snli":
        lines = list(dict.fromkeys(ln.lower() for ln in lines))
    if limit is not None:
        lines = lines[:limit]
    sentences = [ln.split() for ln in lines]
    long = sum(len(s) > max_len for s in sentences)
    if long:
        log.warning("%s/%s: truncated %d sentence(s) longer than %d tokens", corpus, split, long, max_len)
        sentences = [s[:max_len] for s in sentences]
    return sentences
