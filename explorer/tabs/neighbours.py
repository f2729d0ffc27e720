"""Neighbours: the training sentences nearest to a sentence, by cosine distance of posterior means."""
from __future__ import annotations

import gradio as gr
from sklearn.neighbors import NearestNeighbors

from core import check

from ..context import Context
from ..render import esc, message, table
from .common import counting, input_notes, first_line, number_box, per_model, wire

SPLIT = "train"


def index(ctx: Context, model, progress=None) -> NearestNeighbors:
    """A cosine index over the posterior means of the whole training split, built once per checkpoint."""
    return ctx.memo(("nn", model.fingerprint), lambda: NearestNeighbors(metric="cosine", algorithm="brute").fit(
        ctx.posterior_means(model, SPLIT, None, progress)))


def warm(ctx: Context, model) -> None:
    """At start-up: the index (from the checkpoint's atlas when it ships one)."""
    if model.latent:
        index(ctx, model)


def neighbours(ctx: Context, left: str, right: str, text: str, k: int = 10, progress=None) -> str:
    sentence, several = first_line(text)
    k = check("k", k)

    report = counting(progress, "encoding the training sentences for the index (once per checkpoint)")

    def panel(model) -> str:
        nn = index(ctx, model, report)
        sentences = ctx.sentences(model, SPLIT)
        mu, _ = model.encode([sentence])
        dist, idx = nn.kneighbors(mu, n_neighbors=min(k, len(sentences)))
        rows = [[str(r + 1), f"{d:.4f}", esc(sentences[i])] for r, (d, i) in enumerate(zip(dist[0], idx[0]))]
        spread = "" if dist[0][-1] - dist[0][0] > 1e-3 else message(
            "all neighbours are at nearly the same distance: the posterior means barely depend on the sentence")
        return (input_notes(model, model.prepare([sentence]))
                + f'<p class="vm-dim">{len(sentences):,} {model.corpus} training sentences indexed</p>' + spread
                + table(["#", "cosine distance", "training sentence"], rows, f"neighbours-{model.path.name}"))

    return several + per_model(ctx, [left, right], panel)


INTRO = ("Your sentence and every training sentence are encoded; the list shows the training sentences whose codes "
         "(posterior means) point in the nearest direction (cosine distance: 0 is the same direction, 1 unrelated). "
         "When the codes carry meaning the neighbours are about the same thing; when every code is the same, all "
         "distances are about equal and the list is arbitrary.")


def build(ctx: Context, pair) -> None:
    gr.Markdown(INTRO, elem_classes="vm-intro")
    text = gr.Textbox(label="sentence", value="a black dog is running on the grass .", elem_id="nb-text")
    k = number_box("k", 10, elem_id="nb-k")
    go = gr.Button("Find neighbours", variant="primary", elem_id="nb-go")
    out = gr.HTML(elem_id="nb-out")
    wire(ctx, [go.click, text.submit], lambda **a: neighbours(ctx, **a),
         {"left": pair[0], "right": pair[1], "text": text, "k": k}, out, "neighbours", progress=True)
