"""Reconstruct: sentences in, decoded from the posterior mean and from K posterior samples."""
from __future__ import annotations

import gradio as gr
import numpy as np

from ..context import Context
from ..render import esc, mark_unknown, message, table
from .common import decode_options, decoding_controls, lines_of, per_model, wire


def reconstruct(ctx: Context, left: str, right: str, text: str, samples: int = 3, strategy: str = "greedy",
                temperature: float = 1.0, beam_size: int = 5, seed: int = 0) -> str:
    lines = lines_of(text, "one or more sentences (one a line)")
    dropped = len([ln for ln in (text or "").splitlines() if ln.strip()]) - len(lines)
    opts = decode_options(strategy, temperature, beam_size, seed)
    k = int(samples if samples is not None else 0)

    def panel(model) -> str:
        prepared = model.prepare(lines)
        mu, _ = model.encode(lines)
        drawn = model.posterior_samples(lines, k, opts["seed"])  # [k, N, z]
        decoded = model.decode(np.concatenate([mu, *drawn]), **opts)  # one decode for all
        kl = model.kl(lines)
        n = len(mu)
        blocks = []
        for i, p in enumerate(prepared):
            rows = [["input", mark_unknown(p.tokens, p.unknown)], ["KL(q(z|x) ‖ p(z))", f"{kl[i]:.2f} nats"],
                    ["from the mean", esc(decoded[i])]]
            rows += [[f"sample {j + 1}", esc(decoded[(j + 1) * n + i])] for j in range(k)]
            blocks.append(table(["", f"sentence {i + 1}"], rows) + "".join(
                f'<p class="vm-dim">{note}</p>' for note in input_notes(p, model.max_len)))
        if dropped:
            blocks.append(message(f"only the first {len(lines)} sentences are shown ({dropped} more were given)"))
        return "".join(blocks)

    return per_model(ctx, [left, right], panel)


def input_notes(p, max_len: int) -> list[str]:
    """What happened to an input sentence on its way in: unknown words, cut words."""
    notes = []
    if p.unknown:
        notes.append(f"read as &lt;unk&gt;: {esc(', '.join(p.unknown))}")
    if p.truncated:
        notes.append(f"{p.truncated} words beyond the model's {max_len} were cut")
    return notes


def build(ctx: Context, pair) -> None:
    text = gr.Textbox(label="sentences, one a line", lines=3, elem_id="rec-text",
                      value="a dog runs through the grass .\ntwo children are playing on the beach .")
    samples = gr.Slider(0, 10, value=3, step=1, label="posterior samples K")
    decoding = decoding_controls()
    go = gr.Button("Reconstruct", variant="primary", elem_id="rec-go")
    out = gr.HTML(elem_id="rec-out")
    wire([go.click, text.submit], lambda **a: reconstruct(ctx, **a),
         {"left": pair[0], "right": pair[1], "text": text, "samples": samples, **decoding}, out, "reconstruct")
