"""Sample: N sentences from the prior per model, with diversity figures."""
from __future__ import annotations

import gradio as gr

from core import InputError

from ..context import Context
from ..render import esc, table
from .common import guarded, per_model
from .reconstruct import check_decoding, decoding_controls


def diversity(sentences: list[str]) -> dict[str, float]:
    """distinct-n: distinct n-grams over all n-grams (n = 1, 2); repeated: share of sentences that
    are a copy of an earlier one. A collapsed model decoding greedily scores 0, 0, (N-1)/N."""
    out = {}
    for n in (1, 2):
        grams = [tuple(s.split()[i : i + n]) for s in sentences for i in range(len(s.split()) - n + 1)]
        out[f"distinct-{n}"] = len(set(grams)) / len(grams) if grams else 0.0
    out["repeated"] = 1 - len(set(sentences)) / len(sentences) if sentences else 0.0
    return out


@guarded
def sample(ctx: Context, left: str, right: str, n: int = 10, seed: int = 0, strategy: str = "greedy",
           temperature: float = 1.0, beam_size: int = 5) -> str:
    if n is None or not 1 <= int(n) <= 200:
        raise InputError("number of samples must be between 1 and 200")
    check_decoding(strategy, temperature, beam_size)

    def panel(model) -> str:
        sents = model.sample_prior(int(n), seed=int(seed or 0), strategy=strategy, temperature=float(temperature),
                                   beam_size=int(beam_size))
        d = diversity(sents)
        figures = (f'<p><b>distinct-1</b> {d["distinct-1"]:.3f} · <b>distinct-2</b> {d["distinct-2"]:.3f} · '
                   f'<b>repeated sentences</b> {d["repeated"]:.0%}</p>')
        return figures + table(["#", "z ~ N(0, I)"], [[str(i + 1), esc(s)] for i, s in enumerate(sents)])

    return per_model(ctx, [left, right], panel)


def build(ctx: Context, pair) -> None:
    gr.Markdown("Each sentence is decoded from its own z drawn from the prior. With greedy decoding every "
                "difference between sentences comes from z: a collapsed model repeats one sentence.")
    n = gr.Slider(1, 200, value=10, step=1, label="sentences")
    strategy, temperature, beam, seed = decoding_controls()
    go = gr.Button("Sample", variant="primary", elem_id="smp-go")
    out = gr.HTML(elem_id="smp-out")
    go.click(lambda l, r, n_, s, st, t, b: sample(ctx, l, r, n_, s, st, t, b),
             [*pair, n, seed, strategy, temperature, beam], out, api_name="sample")
