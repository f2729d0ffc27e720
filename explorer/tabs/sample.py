"""Sample: N sentences from the prior per model, with diversity figures."""

from __future__ import annotations

import gradio as gr

from core import DECODING, check, decoding_options, diversity

from ..context import Context
from ..render import esc, table
from .common import decoding_controls, number_box, per_model, wire


def sample(
    ctx: Context,
    left: str,
    right: str,
    n: int = 10,
    seed: int = DECODING.seed,
    strategy: str = DECODING.strategy,
    temperature: float = DECODING.temperature,
    beam_size: int = DECODING.beam_size,
) -> str:
    n = check("n", n)
    opts = decoding_options(strategy, temperature, beam_size, seed, fresh_seed=False)

    def panel(model) -> str:
        sents = model.sample_prior(n, **opts)
        d = diversity(sents)
        figures = (
            f"<p><b>distinct-1</b> {d['distinct-1']:.3f} · <b>distinct-2</b> {d['distinct-2']:.3f} · "
            f"<b>repeated sentences</b> {d['repeated']:.0%}</p>"
        )
        return figures + table(
            ["#", "z ~ N(0, I)"], [[str(i + 1), esc(s)] for i, s in enumerate(sents)], f"samples-{model.path.name}"
        )

    return per_model(ctx, [left, right], panel)


def build(ctx: Context, pair) -> None:
    gr.Markdown(
        "Each sentence is decoded from its own z drawn from the prior N(0, I). With greedy decoding every "
        "difference between the sentences comes from z, so a collapsed model repeats one sentence. Distinct-1 "
        "and distinct-2 are the shares of different words and word pairs among all written; 'repeated' is the "
        "share of sentences that appeared earlier in the list.",
        elem_classes="vm-intro",
    )
    n = number_box("n", 10, label="sentences", elem_id="smp-n")
    decoding = decoding_controls("smp")
    go = gr.Button("Sample", variant="primary", elem_id="smp-go")
    out = gr.HTML(elem_id="smp-out")
    wire(
        ctx,
        go.click,
        lambda **a: sample(ctx, **a),
        {"left": pair[0], "right": pair[1], "n": n, **decoding},
        out,
        "sample",
    )
