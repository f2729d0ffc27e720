"""The one tokenizer of a bundle: it turns corpus lines into tokens for training, and the text
people type into the same tokens for that model.

A bundle records its tokenizer's name in config.json (`RunConfig.tokenizer`):

- `treebank` (raw text): control characters dropped, lower-cased, words split with NLTK's
  `NLTKWordTokenizer` (Penn Treebank conventions, the ones PTB, Flickr8k and SNLI were tokenised
  with: `dog 's`, `do n't`, `a ball .`); quotes come out as `"` and markers such as `<unk>` stay whole.
- `pretokenized` (corpora already tokenised, such as PTB): corpus lines are split on whitespace and
  pass through unchanged; in typed text, a word the model's vocabulary lacks goes through `treebank`
  (so `The company's` reads as `the company 's`) while known words stay as they are (PTB's `N`).
- `plain` (bundles that record none; called `legacy` before, which still reads as it): corpus lines
  split on whitespace; typed text lower-cased,
  control characters dropped, and stray punctuation split off words the vocabulary lacks.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Container
from functools import lru_cache

from .errors import InputError

TOKENIZERS = ("treebank", "pretokenized", "plain")
UNRECORDED = "plain"  # what a bundle without a recorded tokenizer used
ALIASES = {"legacy": "plain"}  # former names, as configs and callers may still give them
PRETOKENIZED_CORPORA = ("ptb", "flickr8k", "yahoo", "snli")  # shipped as tokenised text
_MARKER = re.compile(r"(<[A-Za-z_]+>)")
_EDGE_PUNCT = re.compile(r"^([\"'(\[{]*)(.*?)([.,!?;:\"')\]}]*)$")
_QUOTES = {"``": '"', "''": '"'}


def default_for(corpus: str) -> str:
    """`pretokenized` for the corpora this project knows to be tokenised, else `treebank`."""
    return "pretokenized" if corpus in PRETOKENIZED_CORPORA else "treebank"


def known_tokenizer(name: str) -> str:
    """The name (a former one as today's), if it is one of TOKENIZERS; else InputError listing them."""
    if isinstance(name, str):
        name = ALIASES.get(name, name)
    if name not in TOKENIZERS:
        raise InputError(f"unknown tokenizer {name!r}; known: {', '.join(TOKENIZERS)}")
    return name


def tokenize(name: str, text: str, vocab: Container[str] | None = None) -> list[str]:
    """Tokens of `text`: corpus text when vocab is None, typed text for a model when it is given."""
    return _FUNCTIONS[known_tokenizer(name)](_drop_control(text), vocab)


def _drop_control(text: str) -> str:
    return "".join(" " if unicodedata.category(c).startswith("C") else c for c in text)


@lru_cache(maxsize=1)
def _word_tokenizer() -> Callable[[str], list[str]]:
    from nltk.tokenize.destructive import NLTKWordTokenizer  # importing NLTK takes a second: only when used

    return NLTKWordTokenizer().tokenize


def _treebank(text: str, vocab=None) -> list[str]:
    split = _word_tokenizer()
    tokens: list[str] = []
    for i, part in enumerate(_MARKER.split(text)):
        if i % 2:
            tokens.append(part)  # a marker such as <unk>, kept whole
        elif part.strip():
            tokens.extend(_QUOTES.get(t, t) for t in split(part.lower()))
    return tokens


def _pretokenized(text: str, vocab=None) -> list[str]:
    if vocab is None:
        return text.split()
    tokens: list[str] = []
    for word in text.split():
        tokens.extend([word] if word in vocab else _treebank(word))
    return tokens


def _plain(text: str, vocab=None) -> list[str]:
    if vocab is None:
        return text.split()
    tokens: list[str] = []
    for word in text.lower().split():
        if word in vocab:
            tokens.append(word)
            continue
        lead, core_, trail = _EDGE_PUNCT.match(word).groups()
        tokens.extend(list(lead) + ([core_] if core_ else []) + list(trail))
    return tokens


_FUNCTIONS = {"treebank": _treebank, "pretokenized": _pretokenized, "plain": _plain}
