"""Neighbours: the training sentences nearest to a sentence, by cosine distance of posterior means."""

from __future__ import annotations

import logging

import gradio as gr

from core import CosineIndex, VaeMineError, check
from core.library.metrics import SHARED_DISTANCE

from ..context import Context, Unavailable
from ..render import esc, message, table
from .common import counting, first_line, input_notes, many_notes, number_box, per_model, wire
from .maps import own_box, your_lines

log = logging.getLogger(__name__)
SPLIT = "train"


def index(ctx: Context, model, progress=None) -> CosineIndex:
    """core's cosine index over the posterior means of the whole training split: built once per
    checkpoint and corpus, kept in memory and in the disk cache (faiss's format)."""

    def build() -> CosineIndex:
        mu = ctx.posterior_means(model, SPLIT, None, progress)
        path = ctx.cache_path("index", model, SPLIT, None).with_suffix(".faiss")
        found = CosineIndex.load(path, *mu.shape)
        if found is not None:
            return found
        built = CosineIndex(mu, progress)
        try:
            built.save(path)
        except (OSError, RuntimeError, VaeMineError) as e:  # a full or read-only disk: the index stands, unsaved
            log.warning("index not cached: %s", e)
        return built

    return ctx.memo(("nn", model.fingerprint), build)


def warm(ctx: Context, model) -> None:
    """At start-up: the index (from the checkpoint's atlas when it ships one)."""
    if model.latent:
        index(ctx, model)


def neighbours(
    ctx: Context, left: str, right: str, text: str, k: int = 10, yours: str | None = "", progress=None
) -> str:
    """The k nearest codes to the sentence's among the training split's and your sentences' (only
    yours when the corpus is missing)."""
    sentence, several = first_line(text)
    k = check("k", k)
    lines = your_lines(yours)
    report = counting(progress, "encoding the training sentences for the index (once per checkpoint)")

    def panel(model) -> str:
        prepared = model.prepare([sentence])  # tokenised once
        mu, _ = model.encode(prepared)
        found, notes = [], input_notes(model, prepared)
        try:
            nn = index(ctx, model, report)
            sentences = ctx.sentences(model, SPLIT)
            dist, idx = nn.query(mu, k)
            found += [(float(d), sentences[i], "training") for d, i in zip(dist[0], idx[0])]
            notes += f'<p class="vm-dim">{len(sentences):,} {model.corpus} training sentences indexed</p>'
        except Unavailable as e:
            if not lines:
                raise
            notes += message(f"{ctx.public(str(e))}: only your sentences are searched")
        if lines:
            yours = model.prepare(lines)
            notes += many_notes(model, yours, "your sentences")
            dist, idx = CosineIndex(model.encode(yours)[0]).query(mu, k)
            found += [(float(d), lines[i], "yours") for d, i in zip(dist[0], idx[0])]
            notes += f'<p class="vm-dim">{len(lines):,} of your sentences searched too</p>'
        found = sorted(found, key=lambda f: f[0])[:k]
        spread = ""
        try:
            state = ctx.code_state(model, report)
            if state.collapsed or state.shared >= 0.1:  # the list below cannot mean what it seems to
                spread = message(
                    f"This model's code is {state.verdict()}: its codes differ by far less than the prior's "
                    "spread, so the decoder cannot tell them apart and nothing in this list reaches what the model "
                    "writes. Cosine distance reads only the codes' directions, which may still follow the "
                    "encoder's reading of the sentence: the list can look sensible, by the encoder alone."
                    if state.collapsed
                    else f"Read this list with care: {state.verdict()}."
                )
        except Unavailable:
            pass
        if not spread and len(found) > 1 and found[-1][0] < SHARED_DISTANCE:
            spread = message("every sentence listed has the same code as yours: the encoder maps them onto one point")
        rows = [[str(r + 1), f"{d:.4f}", esc(s), where] for r, (d, s, where) in enumerate(found)]
        return (
            notes + spread + table(["#", "cosine distance", "sentence", "from"], rows, f"neighbours-{model.path.name}")
        )

    return several + per_model(ctx, [left, right], panel)


INTRO = (
    "Your sentence and every training sentence (and your own sentences, when you add some) are encoded; the list "
    "shows the sentences whose codes "
    "(posterior means) point in the nearest direction (cosine distance: 0 is the same direction, 1 unrelated). "
    "When the codes carry meaning the neighbours are about the same thing. Two ways they do not, which the page "
    "names when it sees them: a collapsed model gives every sentence nearly the same code, so its list, however "
    "sensible it looks (cosine reads the tiny codes' directions, which may still follow the encoder), says nothing "
    "about what the decoder uses; an encoder that maps many sentences onto the same few points lists unrelated "
    "sentences at distance 0."
)


def build(ctx: Context, pair) -> None:
    gr.Markdown(INTRO, elem_classes="vm-intro")
    text = gr.Textbox(label="sentence", value="a black dog is running on the grass .", elem_id="nb-text")
    k = number_box("k", 10, elem_id="nb-k")
    yours = own_box("nb")
    go = gr.Button("Find neighbours", variant="primary", elem_id="nb-go")
    out = gr.HTML(elem_id="nb-out")
    wire(
        ctx,
        [go.click, text.submit],
        lambda **a: neighbours(ctx, **a),
        {"left": pair[0], "right": pair[1], "text": text, "k": k, "yours": yours},
        out,
        "neighbours",
        progress=True,
    )
