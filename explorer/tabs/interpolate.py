"""Interpolate: the decoded path between two sentences per model, in aligned rows, and analogies."""
from __future__ import annotations

import gradio as gr

from core import InputError

from ..context import Context
from ..render import esc, mark_changes, page, table
from .common import for_model, guarded, lines_of
from .reconstruct import check_decoding, decoding_controls

# The pair of the paper's Table 4 (SNLI sentences quoted in the paper).
TABLE4 = ("this church choir sings to the masses as they sing joyous songs from the book at a church .",
          "a woman with a green headscarf , blue shirt and a very big grin .")


@guarded
def interpolate(ctx: Context, left: str, right: str, a: str, b: str, steps: int = 10, mode: str = "linear",
                strategy: str = "greedy", temperature: float = 1.0, beam_size: int = 5, seed: int = 0) -> str:
    a, b = lines_of(a, "the first sentence")[0], lines_of(b, "the second sentence")[0]
    check_decoding(strategy, temperature, beam_size)
    if steps is None or not 2 <= int(steps) <= 50:
        raise InputError("steps must be between 2 and 50")
    if mode not in ("linear", "slerp"):
        raise InputError("mode must be linear or slerp")
    opts = dict(strategy=strategy, temperature=float(temperature), beam_size=int(beam_size), seed=int(seed or 0))
    names = [left, right]
    paths, notes = [], []
    for name in names:
        path, err = for_model(ctx, name, lambda m: (m.interpolate(a, b, int(steps), mode, **opts), m.unknown_words([a, b])))
        paths.append(path)
        note = err or ""
        if path and any(path[1]):
            note += f'<p class="vm-dim">read as &lt;unk&gt;: {esc(", ".join(sorted(set(path[1][0] + path[1][1]))))}</p>'
        notes.append(note)
    rows = []
    for i in range(int(steps)):
        t = i / (int(steps) - 1)
        cells = [f"{t:.2f}"]
        for path in paths:
            if path is None:
                cells.append("")
            else:
                cells.append(mark_changes(path[0][i - 1] if i else None, path[0][i]))
        rows.append(cells)
    header = ["t"] + [esc(ctx.title(n)) + note for n, note in zip(names, notes)]
    return page(table(header, rows) + '<p class="vm-dim">highlighted: words that changed from the row above</p>')


@guarded
def analogy(ctx: Context, left: str, right: str, a: str, b: str, c: str, strategy: str = "greedy",
            temperature: float = 1.0, beam_size: int = 5, seed: int = 0) -> str:
    """a : b :: c : ?  decoded from mu(c) + mu(b) - mu(a)."""
    a, b, c = (lines_of(x, f"sentence {n}")[0] for x, n in ((a, "a"), (b, "b"), (c, "c")))
    check_decoding(strategy, temperature, beam_size)
    opts = dict(strategy=strategy, temperature=float(temperature), beam_size=int(beam_size), seed=int(seed or 0))
    rows = []
    for name in (left, right):
        def answer(m):
            mu, _ = m.encode([a, b, c])
            return m.decode(mu[2] + mu[1] - mu[0], **opts)[0]
        out, err = for_model(ctx, name, answer)
        rows.append([esc(ctx.title(name)), err or esc(out)])
    return page(table(["model", f"{esc(a)} : {esc(b)} :: {esc(c)} : ?"], rows))


def build(ctx: Context, pair) -> None:
    with gr.Row():
        a = gr.Textbox(label="from", value=TABLE4[0], elem_id="int-a")
        b = gr.Textbox(label="to", value=TABLE4[1], elem_id="int-b")
    with gr.Row():
        steps = gr.Slider(2, 50, value=10, step=1, label="steps (both ends included)")
        mode = gr.Radio(["linear", "slerp"], value="linear", label="path")
        preset = gr.Button("Paper's Table 4 pair", size="sm")
    strategy, temperature, beam, seed = decoding_controls()
    go = gr.Button("Interpolate", variant="primary", elem_id="int-go")
    out = gr.HTML(elem_id="int-out")
    preset.click(lambda: TABLE4, None, [a, b], api_name=False)
    go.click(lambda *x: interpolate(ctx, *x), [*pair, a, b, steps, mode, strategy, temperature, beam, seed], out,
             api_name="interpolate")
    gr.Markdown("### Analogy: a : b :: c : ?  (decoded from μ(c) + μ(b) − μ(a))")
    with gr.Row():
        xa = gr.Textbox(label="a", value="a man is riding a bike .")
        xb = gr.Textbox(label="b", value="a woman is riding a bike .")
        xc = gr.Textbox(label="c", value="a man is playing the guitar .")
    go2 = gr.Button("Solve analogy", elem_id="ana-go")
    out2 = gr.HTML(elem_id="ana-out")
    go2.click(lambda *x: analogy(ctx, *x), [*pair, xa, xb, xc, strategy, temperature, beam, seed], out2,
              api_name="analogy")
