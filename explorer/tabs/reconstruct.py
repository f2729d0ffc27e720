"""Reconstruct: sentences in, decoded from the posterior mean and from K posterior samples."""
from __future__ import annotations

import gradio as gr
import numpy as np

from core import InputError

from ..context import Context
from ..render import esc, mark_unknown, message, table
from .common import guarded, lines_of, per_model, posterior_kl

STRATEGIES = ["greedy", "sample", "beam"]


def check_decoding(strategy: str, temperature: float, beam_size: int) -> None:
    if strategy not in STRATEGIES:
        raise InputError(f"unknown decoding {strategy!r}; choose greedy, sample or beam")
    if temperature is None or not 0.05 <= float(temperature) <= 5:
        raise InputError("temperature must be between 0.05 and 5")
    if beam_size is None or not 1 <= int(beam_size) <= 20:
        raise InputError("beam size must be between 1 and 20")


@guarded
def reconstruct(ctx: Context, left: str, right: str, text: str, samples: int = 3, strategy: str = "greedy",
                temperature: float = 1.0, beam_size: int = 5, seed: int = 0) -> str:
    lines = lines_of(text, "one or more sentences (one a line)")
    dropped = len([ln for ln in (text or "").splitlines() if ln.strip()]) - len(lines)
    check_decoding(strategy, temperature, beam_size)
    k = int(samples if samples is not None else 0)
    if not 0 <= k <= 10:
        raise InputError("posterior samples must be between 0 and 10")
    opts = {"strategy": strategy, "temperature": float(temperature), "beam_size": int(beam_size), "seed": int(seed or 0)}

    def panel(model) -> str:
        prepared = model.prepare(lines)
        mu, logvar = model.encode(lines)
        kl = posterior_kl(mu, logvar).sum(1)
        rng = np.random.default_rng(int(seed or 0))
        eps = rng.standard_normal((k, *mu.shape)).astype(np.float32)
        codes = np.concatenate([mu, *(mu + np.exp(0.5 * logvar) * e for e in eps)])  # one decode for all
        decoded = model.decode(codes, **opts)
        n = len(mu)
        from_mean, drawn = decoded[:n], [decoded[(j + 1) * n : (j + 2) * n] for j in range(k)]
        blocks = []
        for i, p in enumerate(prepared):
            notes = []
            if p.unknown:
                notes.append(f"read as &lt;unk&gt;: {esc(', '.join(p.unknown))}")
            if p.truncated:
                notes.append(f"{p.truncated} words beyond the model's {model.max_len} were cut")
            rows = [["input", mark_unknown(p.tokens, p.unknown)],
                    ["KL(q(z|x) ‖ p(z))", f"{kl[i]:.2f} nats"],
                    ["from the mean", esc(from_mean[i])]]
            rows += [[f"sample {j + 1}", esc(d[i])] for j, d in enumerate(drawn)]
            blocks.append(table(["", f"sentence {i + 1}"], rows)
                          + "".join(f'<p class="vm-dim">{n}</p>' for n in notes))
        if dropped:
            blocks.append(message(f"only the first {len(lines)} sentences are shown ({dropped} more were given)"))
        return "".join(blocks)

    return per_model(ctx, [left, right], panel)


def decoding_controls():
    with gr.Row():
        strategy = gr.Radio(STRATEGIES, value="greedy", label="decoding")
        temperature = gr.Slider(0.1, 2.0, value=1.0, step=0.1, label="temperature (sampling)")
        beam = gr.Slider(1, 10, value=5, step=1, label="beam size")
        seed = gr.Number(value=0, precision=0, label="seed")
    return strategy, temperature, beam, seed


def build(ctx: Context, pair) -> None:
    text = gr.Textbox(label="sentences, one a line", lines=3, elem_id="rec-text",
                      value="a dog runs through the grass .\ntwo children are playing on the beach .")
    samples = gr.Slider(0, 10, value=3, step=1, label="posterior samples K")
    strategy, temperature, beam, seed = decoding_controls()
    go = gr.Button("Reconstruct", variant="primary", elem_id="rec-go")
    out = gr.HTML(elem_id="rec-out")
    go.click(lambda *a: reconstruct(ctx, *a), [*pair, text, samples, strategy, temperature, beam, seed], out,
             api_name="reconstruct")
    text.submit(lambda *a: reconstruct(ctx, *a), [*pair, text, samples, strategy, temperature, beam, seed], out)
