"""Reconstruct: sentences in, decoded from the posterior mean and from K posterior samples."""

from __future__ import annotations

import gradio as gr
import numpy as np

from core import DECODING, check, decoding_options

from ..context import Context
from ..render import esc, mark_unknown, message, table
from .common import decoding_controls, input_notes, lines_of, number_box, per_model, wire


def reconstruct(
    ctx: Context,
    left: str,
    right: str,
    text: str,
    samples: int = 3,
    strategy: str = DECODING.strategy,
    temperature: float = DECODING.temperature,
    beam_size: int = DECODING.beam_size,
    seed: int = DECODING.seed,
) -> str:
    lines = lines_of(text, "one or more sentences (one a line)")
    dropped = len([ln for ln in (text or "").splitlines() if ln.strip()]) - len(lines)
    opts = decoding_options(strategy, temperature, beam_size, seed, fresh_seed=False)
    k = check("samples", samples)

    def panel(model) -> str:
        prepared = model.prepare(lines)  # tokenised once: the calls below take it as it is
        mu, _ = model.encode(prepared)
        drawn = model.posterior_samples(prepared, k, opts["seed"])  # [k, N, z]
        decoded = model.decode(np.concatenate([mu, *drawn]), **opts)  # one decode for all
        kl = model.kl(prepared)
        n = len(mu)
        blocks = []
        for i, p in enumerate(prepared):
            rows = [
                ["input", mark_unknown(p.tokens, p.unknown)],
                ["KL(q(z|x) ‖ p(z))", f"{kl[i]:.2f} nats"],
                ["from the mean", esc(decoded[i])],
            ]
            rows += [[f"sample {j + 1}", esc(decoded[(j + 1) * n + i])] for j in range(k)]
            blocks.append(
                table(["", f"sentence {i + 1}"], rows, f"reconstruct-{model.path.name}-{i + 1}")
                + input_notes(model, [p])
            )
        if dropped:
            blocks.append(message(f"only the first {len(lines)} sentences are shown ({dropped} more were given)"))
        return "".join(blocks)

    return per_model(ctx, [left, right], panel)


INTRO = (
    "The encoder reads each sentence into a code z (a mean and a spread per latent dimension); the decoder "
    "writes a sentence back from z. A model that uses z gives back something close to what you typed; a collapsed "
    "model writes much the same sentence whatever you type. The KL column is how far this sentence's code sits "
    "from the prior, in nats: near 0 means the code carries almost nothing about the sentence."
)


def build(ctx: Context, pair) -> None:
    gr.Markdown(INTRO, elem_classes="vm-intro")
    text = gr.Textbox(
        label="sentences, one a line",
        lines=3,
        elem_id="rec-text",
        value="a dog runs through the grass .\ntwo children are playing on the beach .",
    )
    samples = number_box("samples", 3, label="posterior samples K", elem_id="rec-samples")
    decoding = decoding_controls("rec")
    go = gr.Button("Reconstruct", variant="primary", elem_id="rec-go")
    out = gr.HTML(elem_id="rec-out")
    wire(
        ctx,
        [go.click, text.submit],
        lambda **a: reconstruct(ctx, **a),
        {"left": pair[0], "right": pair[1], "text": text, "samples": samples, **decoding},
        out,
        "reconstruct",
    )
