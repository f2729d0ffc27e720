"""Interpolate: the decoded path between two sentences per model, in aligned rows, and analogies."""
from __future__ import annotations

from html import unescape

import gradio as gr

from core import MODES, check, word_f1

from ..context import Context
from ..render import changed, esc, mark_changes, page, table
from .common import decode_options, decoding_controls, for_model, input_notes, lines_of, number_box, shown_text, wire

# The pair of the paper's Table 4 (SNLI sentences quoted in the paper).
TABLE4 = ("this church choir sings to the masses as they sing joyous songs from the book at a church .",
          "a woman with a green headscarf , blue shirt and a very big grin .")


START = ("a dog runs through the grass .", "two children are playing on the beach .")  # in Flickr8k's style


def score(path: list[str], i: int, ends: list[str]) -> str:
    """A step's scores: words new against the step before, and word-F1 with each input (as read)."""
    new = sum(changed(path[i - 1] if i else None, path[i]))
    f1 = " / ".join(f"{word_f1(path[i], unescape(e)):.2f}" for e in ends)
    return f'<br><span class="vm-dim">{new} new word{"" if new == 1 else "s"} · F1 with from / to: {f1}</span>'


def interpolate(ctx: Context, left: str, right: str, a: str, b: str, steps: int = 10, mode: str = "linear",
                strategy: str = "greedy", temperature: float = 1.0, beam_size: int = 5, seed: int = 0) -> str:
    a, b = lines_of(a, "the first sentence")[0], lines_of(b, "the second sentence")[0]
    opts = decode_options(strategy, temperature, beam_size, seed)
    steps = check("steps", steps)
    names = [left, right]
    paths, notes, ends = [], [], []
    for name in names:
        def run(m):
            prepared = m.prepare([a, b])
            return (m.interpolate(a, b, steps, mode, **opts), input_notes(m, prepared, ["from", "to"]),
                    [shown_text(p) for p in prepared])

        result, err = for_model(ctx, name, run)
        paths.append(result and result[0])
        notes.append(err or result[1])
        ends.append(result[2] if result else ["", ""])
    rows = [["from (as read)"] + [f'<span class="vm-dim">{e[0]}</span>' for e in ends]] if any(paths) else []
    for i in range(max((len(p) for p in paths if p), default=0)):
        cells = [f"{i / (steps - 1):.2f}"]
        cells += ["" if p is None else mark_changes(p[i - 1] if i else None, p[i]) + score(p, i, e)
                  for p, e in zip(paths, ends)]
        rows.append(cells)
    if any(paths):
        rows.append(["to (as read)"] + [f'<span class="vm-dim">{e[1]}</span>' for e in ends])
        rows.append(["distinct"] + ["" if p is None else f"{len(set(p))} different sentences in {len(p)} points"
                                    for p in paths])
    header = ["t"] + [esc(ctx.title(n)) + note for n, note in zip(names, notes)]
    return page(table(header, rows, "interpolation") + '<p class="vm-dim">t = 0.00 and t = 1.00 are the reconstructions of the two '
                "sentences (decoded from their posterior means); highlighted: words that changed from the row above; "
                "F1: the share of words a point shares with each input (word-F1, as in bench.quality)</p>")


def analogy(ctx: Context, left: str, right: str, a: str, b: str, c: str, strategy: str = "greedy",
            temperature: float = 1.0, beam_size: int = 5, seed: int = 0) -> str:
    """a : b :: c : ?  decoded from mu(c) + mu(b) - mu(a)."""
    a, b, c = (lines_of(x, f"sentence {n}")[0] for x, n in ((a, "a"), (b, "b"), (c, "c")))
    opts = decode_options(strategy, temperature, beam_size, seed)
    rows, header = [], None
    for name in (left, right):
        def solve(m):
            prepared = m.prepare([a, b, c])
            pa, pb, pc = map(shown_text, prepared)
            return m.analogy(a, b, c, **opts), f"{pa} : {pb} :: {pc} : ?", input_notes(m, prepared, "abc")

        out, err = for_model(ctx, name, solve)
        header = header or (out and out[1])
        rows.append([esc(ctx.title(name)), err or esc(out[0]) + out[2]])
    return page(table(["model", header or "a : b :: c : ?"], rows, "analogy"))


INTRO = ("Both sentences are encoded, and the decoder writes a sentence at each of the evenly spaced points on the "
         "path between their codes. In a model that uses z the sentences change step by step from one end to the other; "
         "in a collapsed model every point decodes to the same sentence, because the decoder ignores z.")


def build(ctx: Context, pair) -> None:
    gr.Markdown(INTRO, elem_classes="vm-intro")
    with gr.Row():
        a = gr.Textbox(label="from", value=START[0], elem_id="int-a")
        b = gr.Textbox(label="to", value=START[1], elem_id="int-b")
    with gr.Row():
        steps = number_box("steps", 10, label="steps (both ends included)", elem_id="int-steps")
        mode = gr.Radio(list(MODES), value="linear", label="path")
        preset = gr.Button("Load the paper's Table 4 pair (SNLI)", size="sm", elem_id="int-preset")
    decoding = decoding_controls()
    go = gr.Button("Interpolate", variant="primary", elem_id="int-go")
    out = gr.HTML(elem_id="int-out")
    preset.click(lambda: TABLE4, None, [a, b], api_name=False)
    models = {"left": pair[0], "right": pair[1]}
    wire(go.click, lambda **x: interpolate(ctx, **x), {**models, "a": a, "b": b, "steps": steps, "mode": mode, **decoding},
         out, "interpolate")
    gr.Markdown("### Analogy: a : b :: c : ?  (decoded from μ(c) + μ(b) − μ(a))")
    with gr.Row():
        xa = gr.Textbox(label="a", value="a man is riding a bike .", elem_id="ana-a")
        xb = gr.Textbox(label="b", value="a woman is riding a bike .", elem_id="ana-b")
        xc = gr.Textbox(label="c", value="a man is playing the guitar .", elem_id="ana-c")
    go2 = gr.Button("Solve analogy", elem_id="ana-go")
    out2 = gr.HTML(elem_id="ana-out")
    wire(go2.click, lambda **x: analogy(ctx, **x), {**models, "a": xa, "b": xb, "c": xc, **decoding}, out2, "analogy")
