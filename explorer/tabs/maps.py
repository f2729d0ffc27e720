"""What the Latent map, the compare view and Neighbours share: the colourings of a map (one table),
the search box's words and rings, "your sentences" (box and caps), the maps' split and size
arguments, and the neighbour overlap of a model pair. No tab imports another tab; they import this."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import gradio as gr
import numpy as np
import plotly.graph_objects as go

import core
from core import AU_THRESHOLD, OWN_MAX_BYTES, OWN_MAX_LINES, InputError, active_units, check, containing, own_sentences

from ..browser import upload_control
from ..context import SPLITS, Context
from ..render import esc

MAX_KL = 10_000  # sentences per KL call (core's cap per call)
MAX_SEARCH = 200  # characters of the search box


@dataclass(frozen=True)
class Colouring:
    """One way to colour a map: `corpus(ctx, model, sentences, mu, words, overlap)` gives (a value
    per sentence, what the colour bar says), `own(model, lines, mu, corpus_mu, words)` your sentences'
    values on that scale (lines as text or as the model prepared them), or None where a value needs
    the corpus (drawn grey)."""

    corpus: Callable
    own: Callable | None = None
    alone: str | None = None  # the colour bar's words on a map of your sentences alone (None: the name's)


def _length(ctx, model, sentences, mu, words, overlap):
    return np.array([len(s.split()) for s in sentences]), "length (words)"


def text_of(line) -> str:
    """A sentence's text, whether given as text or as the model prepared it (core.Prepared)."""
    return line if isinstance(line, str) else line.text


def _own_length(model, lines, mu, corpus_mu, words):
    return np.array([len(text_of(s).split()) for s in lines], dtype=float)


def _searched(ctx, model, sentences, mu, words, overlap):
    if not words:
        raise InputError("colouring by the searched words: type a word or phrase in the search box first")
    return containing(sentences, words).astype(float), f"holds “{esc(' '.join(words))}” (1 yes, 0 no)"


def _own_searched(model, lines, mu, corpus_mu, words):
    return containing([text_of(s) for s in lines], words).astype(float)


def _kl(ctx, model, sentences, mu, words, overlap):
    chunks = [model.kl(sentences[i : i + MAX_KL]) for i in range(0, len(sentences), MAX_KL)]
    return np.concatenate(chunks) if chunks else np.zeros(0), "KL(q(z|x) ‖ p(z)), nats"


def _own_kl(model, lines, mu, corpus_mu, words):
    return model.kl(lines)


def _overlap(ctx, model, sentences, mu, words, overlap):
    if overlap is None:
        raise InputError("the neighbour overlap needs a second model: choose one on the right")
    found = overlap()
    return found.shared * found.k, f"neighbours shared (of {found.k}; chance {found.chance * found.k:.2f})"


def _unit(rank: int) -> Colouring:
    """The r-th most active unit's posterior means (your sentences on the corpus's ranking)."""

    def corpus(ctx, model, sentences, mu, words, overlap):
        _, var = active_units(mu)
        order = np.argsort(-var)
        if rank > len(order):
            raise InputError(f"the model has only {len(order)} dimensions")
        dim = int(order[rank - 1])
        state = "active" if var[dim] >= AU_THRESHOLD else "NOT active"
        return mu[:, dim], f"z[{dim}] (rank {rank}, variance {var[dim]:.3g}, {state})"

    def own(model, lines, mu, corpus_mu, words):
        basis = corpus_mu if corpus_mu is not None else mu
        return mu[:, int(np.argsort(-active_units(basis)[1])[rank - 1])]

    return Colouring(corpus, own)


# Every colouring of the map tabs, in their dropdowns' order (the compare view puts the overlap first).
COLOURINGS: dict[str, Colouring] = {
    "sentence length": Colouring(_length, _own_length, "length (words)"),
    **{f"active unit #{r}": _unit(r) for r in range(1, 11)},
    "the searched words": Colouring(_searched, _own_searched, "holds the searched words (1 yes, 0 no)"),
    "KL of each sentence": Colouring(_kl, _own_kl, "KL(q(z|x) ‖ p(z)), nats"),
    "neighbour overlap with the other model": Colouring(_overlap),
}
COLOURS = list(COLOURINGS)


OWN_CAPS = f"one a line; at most {OWN_MAX_LINES:,} lines and {OWN_MAX_BYTES // 2**20} MB"
OWN_NOTE = (
    "Your sentences are tokenised by each model's own tokenizer, encoded and kept for this request only: "
    "never written to the server's disk, logged or shown to anyone else, and left out of the page's link."
)


def your_lines(yours) -> list[str]:
    """Your sentences from their box: [] when it is empty, else checked by core (caps, binary, type)."""
    return [] if yours is None or (isinstance(yours, str) and not yours.strip()) else own_sentences(yours)


def search_prepared(model, search: str | None) -> list:
    """The search box as the model prepared it ([] for an empty box), checked for type and length."""
    if search is not None and not isinstance(search, str):
        raise InputError("the search box must hold text")
    if search and len(search) > MAX_SEARCH:
        raise InputError(
            f"the search box holds {len(search):,} characters; a word or phrase of at most {MAX_SEARCH}, please"
        )
    return model.prepare([search]) if search and search.strip() else []


def searched(model, search: str | None) -> list[str]:
    """The search box's words as the model's tokenizer reads them ([] for an empty box)."""
    query = search_prepared(model, search)
    return query[0].tokens if query else []


def colouring(colour: str, choices=COLOURS) -> Colouring:
    """The colouring of that name, if it is one of `choices`; else InputError listing them."""
    if not isinstance(colour, str) or colour not in choices:
        raise InputError(f"unknown colouring {str(colour)[:40]!r}; choose one of: {', '.join(choices)}")
    return COLOURINGS[colour]


def colour_values(
    ctx: Context, model, sentences: list[str], mu: np.ndarray, colour: str, words: list[str], overlap=None
) -> tuple[np.ndarray, str]:
    """(a value per sentence, what the colour bar says it is) for one of COLOURS. `overlap`: a
    callable giving the neighbour overlap with the other model (only asked for that colouring)."""
    return colouring(colour).corpus(ctx, model, sentences, mu, words, overlap)


def own_values(
    model, lines: list[str], mu: np.ndarray, corpus_mu: np.ndarray | None, colour: str, words: list[str]
) -> np.ndarray:
    """Your sentences' values on the corpus's colour scale (NaN, drawn grey, where a value needs the corpus)."""
    own = colouring(colour).own
    return np.full(len(lines), np.nan) if own is None else own(model, lines, mu, corpus_mu, words)


def rings(coords: np.ndarray, hits: np.ndarray, legend: bool = True, gl: bool = False) -> go.Scatter:
    """Open red rings over the points whose sentences hold the searched words (drawn by WebGL over a
    WebGL map, gl=True)."""
    return (go.Scattergl if gl else go.Scatter)(
        x=coords[hits, 0],
        y=coords[hits, 1],
        mode="markers",
        hoverinfo="skip",
        showlegend=legend,
        name=f"holds the searched words ({int(hits.sum()):,})",
        marker=dict(size=8, color="rgba(0,0,0,0)", line=dict(color="#e8432e", width=1.5)),
    )


def map_arguments(split: str, n, limit: str = "map_n") -> int:
    """n checked against LIMITS[limit], after the split: the two arguments every map takes."""
    if split not in SPLITS:
        raise InputError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
    return check(limit, n)


def pair_overlap(ctx: Context, names, split: str, n: int) -> core.Overlap:
    """Each of the first n sentences' neighbour overlap under the two models (memoised per pair)."""
    left, right = (ctx.model(x) for x in names)
    return ctx.memo(
        ("overlap", left.fingerprint, right.fingerprint, split, n),
        lambda: core.neighbour_overlap(ctx.posterior_means(left, split, n), ctx.posterior_means(right, split, n)),
    )


def own_box(prefix: str) -> gr.Textbox:
    """Your sentences: a box to paste them in and a file picker that fills it (read in the browser)."""
    with gr.Accordion("Your sentences", open=False, elem_id=f"{prefix}-yours-panel"):
        gr.Markdown(OWN_NOTE, elem_classes="vm-dim")
        box = gr.Textbox("", label=f"your sentences ({OWN_CAPS})", lines=4, max_lines=12, elem_id=f"{prefix}-yours")
        gr.HTML(upload_control(f"{prefix}-yours"))
    return box
