"""Interpolate: the decoded path between two sentences per model, in aligned rows, and analogies."""

from __future__ import annotations

import logging
from html import unescape

import gradio as gr
import numpy as np
import plotly.graph_objects as go

from core import DECODING, MAP_N, MAP_SPLIT, MODES, VaeMineError, check, decoding_options, path_plane, word_f1

from ..context import Context
from ..render import changed, esc, mark_changes, message, page, table
from .common import decoding_controls, first_line, for_model, input_notes, number_box, shown_text, wire

# The pair of the paper's Table 4 (SNLI sentences quoted in the paper).
TABLE4 = (
    "this church choir sings to the masses as they sing joyous songs from the book at a church .",
    "a woman with a green headscarf , blue shirt and a very big grin .",
)


log = logging.getLogger(__name__)
CLOUD = 400  # validation means drawn around each path (of the atlas's first MAP_N)
COLOURS = ("#1f77b4", "#ff7f0e")  # left, right


START = ("a dog runs through the grass .", "two children are playing on the beach .")  # in Flickr8k's style


def score(path: list[str], i: int, ends: list[str]) -> str:
    """A step's scores: words new against the step before, and word-F1 with each input (as read)."""
    new = sum(changed(path[i - 1] if i else None, path[i]))
    f1 = " / ".join(f"{word_f1(path[i], unescape(e)):.2f}" for e in ends)
    return f'<br><span class="vm-dim">{new} new word{"" if new == 1 else "s"} · F1 with from / to: {f1}</span>'


def interpolate(
    ctx: Context,
    left: str,
    right: str,
    a: str,
    b: str,
    steps: int = 10,
    mode: str = "linear",
    strategy: str = DECODING.strategy,
    temperature: float = DECODING.temperature,
    beam_size: int = DECODING.beam_size,
    seed: int = DECODING.seed,
) -> tuple[go.Figure | None, str]:
    """The decoded paths in aligned rows, each step scored, and both paths drawn in one chart."""
    (a, note_a), (b, note_b) = first_line(a, "the first sentence"), first_line(b, "the second sentence")
    opts = decoding_options(strategy, temperature, beam_size, seed, fresh_seed=False)
    steps = check("steps", steps)
    names = [left, right]
    paths, notes, ends, planes = [], [], [], []
    for name in names:

        def run(m):  # the path's codes once: decoded for the rows (as m.interpolate does), drawn for the chart
            prepared = m.prepare([a, b])  # tokenised once
            codes = m.interpolation_codes(*prepared, steps, mode)
            return (
                m.decode(codes, **opts),
                input_notes(m, prepared, ["from", "to"]),
                [shown_text(p) for p in prepared],
                path_plane(codes, cloud(ctx, m)),
            )

        result, err = for_model(ctx, name, run)
        paths.append(result and result[0])
        notes.append(err or result[1])
        ends.append(result[2] if result else ["", ""])
        planes.append(result and result[3])
    rows = [["from (as read)"] + [f'<span class="vm-dim">{e[0]}</span>' for e in ends]] if any(paths) else []
    for i in range(max((len(p) for p in paths if p), default=0)):
        cells = [f"{i / (steps - 1):.2f}"]
        cells += [
            "" if p is None else mark_changes(p[i - 1] if i else None, p[i]) + score(p, i, e)
            for p, e in zip(paths, ends)
        ]
        rows.append(cells)
    if any(paths):
        rows.append(["to (as read)"] + [f'<span class="vm-dim">{e[1]}</span>' for e in ends])
        rows.append(
            ["distinct"] + ["" if p is None else f"{len(set(p))} different sentences in {len(p)} points" for p in paths]
        )
    header = ["t"] + [esc(ctx.title(n)) + note for n, note in zip(names, notes)]
    figure = path_figure([ctx.title(n) for n in names], paths, planes) if any(paths) else None
    return figure, page(
        note_a
        + note_b
        + table(header, rows, "interpolation")
        + '<p class="vm-dim">t = 0.00 and t = 1.00 are the reconstructions of the two '
        "sentences (decoded from their posterior means); highlighted: words that changed from the row above; "
        "F1: the share of words a point shares with each input (word-F1, as in bench.quality)</p>"
    )


def cloud(ctx: Context, model) -> np.ndarray:
    """Up to CLOUD posterior means of validation sentences (the atlas's, when the checkpoint ships
    one), to show where the model's data lie around the path; none without the corpus."""
    try:
        return ctx.posterior_means(model, MAP_SPLIT, MAP_N)[:CLOUD]
    except VaeMineError as e:
        log.info("no validation means around the path of %s: %s", model.name, e)
        return np.zeros((0, model.z_dim))


def path_figure(titles: list[str], paths: list, planes: list) -> go.Figure:
    """Both paths in one chart, each drawn exactly in its own model's plane through the origin and
    the path's ends (core.path_plane), so the prior's 1-sd circle is the same for both."""
    fig = go.Figure()
    angle = np.linspace(0, 2 * np.pi, 97)
    fig.add_trace(
        go.Scatter(
            x=np.cos(angle),
            y=np.sin(angle),
            mode="lines",
            name="prior N(0, I): 1 sd",
            line=dict(color="#999", dash="dot"),
            hoverinfo="skip",
        )
    )
    for title, path, plane, colour in zip(titles, paths, planes, COLOURS):
        if not path:
            continue
        xy, around = plane
        if len(around):
            fig.add_trace(
                go.Scatter(
                    x=around[:, 0],
                    y=around[:, 1],
                    mode="markers",
                    name=f"{title}: validation means",
                    marker=dict(size=4, color=colour, opacity=0.18),
                    hoverinfo="skip",
                )
            )
        new = [i == 0 or path[i] != path[i - 1] for i in range(len(path))]
        t = np.linspace(0, 1, len(path))
        fig.add_trace(
            go.Scatter(
                x=xy[:, 0],
                y=xy[:, 1],
                mode="lines+markers",
                name=f"{title}: path",
                line=dict(color=colour),
                marker=dict(
                    size=[11 if n else 5 for n in new],
                    color=colour,
                    symbol=["circle" if n else "circle-open" for n in new],
                ),
                text=[esc(p) for p in path],
                customdata=t,
                hovertemplate="t = %{customdata:.2f}<br>%{text}<extra></extra>",
            )
        )
        fig.add_trace(
            go.Scatter(
                x=xy[[0, -1], 0],
                y=xy[[0, -1], 1],
                mode="text",
                text=["from", "to"],
                showlegend=False,
                textposition="top center",
                textfont=dict(color=colour),
                hoverinfo="skip",
            )
        )
    fig.update_layout(
        title=dict(
            text="Both paths in latent units: large dots are points whose sentence differs from the point before"
        ),
        height=460,
        margin=dict(l=10, r=10, t=50, b=10),
        legend=dict(orientation="h", y=-0.12),
        # constrain="domain": equal scales narrow the plot rather than widen the x range past the paths
        xaxis=dict(title=dict(text="along the path (from → to)"), zeroline=True, constrain="domain"),
        yaxis=dict(
            title=dict(text="across (towards the start's offset from the origin)"),
            scaleanchor="x",
            scaleratio=1,
            zeroline=True,
            constrain="domain",
        ),
    )
    return fig


def analogy(
    ctx: Context,
    left: str,
    right: str,
    a: str,
    b: str,
    c: str,
    strategy: str = DECODING.strategy,
    temperature: float = DECODING.temperature,
    beam_size: int = DECODING.beam_size,
    seed: int = DECODING.seed,
) -> str:
    """a : b :: c : ?  decoded from mu(c) + mu(b) - mu(a)."""
    (a, na), (b, nb), (c, nc) = (first_line(x, f"sentence {n}") for x, n in ((a, "a"), (b, "b"), (c, "c")))
    opts = decoding_options(strategy, temperature, beam_size, seed, fresh_seed=False)
    rows, header = [], None
    for name in (left, right):

        def solve(m):
            prepared = m.prepare([a, b, c])
            pa, pb, pc = map(shown_text, prepared)
            return m.analogy(*prepared, **opts), f"{pa} : {pb} :: {pc} : ?", input_notes(m, prepared, "abc")

        out, err = for_model(ctx, name, solve)
        header = header or (out and out[1])
        rows.append([esc(ctx.title(name)), err or esc(out[0]) + out[2]])
    return page(na + nb + nc + table(["model", header or "a : b :: c : ?"], rows, "analogy"))


def table4_preset(ctx: Context, left, right) -> tuple[str, str, str]:
    """The paper's Table 4 pair for the boxes, and before it runs, a note saying how many of its words
    each chosen model reads as <unk> (it is an SNLI pair; the shipped models read Flickr8k)."""
    notes = []
    for name in (left, right) if left != right else (left,):
        try:
            model = ctx.model(ctx.check_model("model", name))
        except VaeMineError:
            continue
        prepared = model.prepare(list(TABLE4))
        unknown = [w for p in prepared for w in p.unknown]
        words = sum(len(p.tokens) for p in prepared)
        notes.append(
            f"{ctx.title(name)} ({model.corpus}) reads {len(unknown)} of their {words} words as <unk>"
            + (f": {', '.join(unknown)}" if unknown else "")
        )
    if not notes:
        return *TABLE4, ""
    return *TABLE4, page(
        message(
            "The paper's Table 4 pair is two SNLI sentences. " + "; ".join(notes) + ". A word read "
            "as <unk> carries nothing of its meaning into the code, so the path runs between what "
            "the model read, not the sentences as written."
        )
    )


INTRO = (
    "Both sentences are encoded, and the decoder writes a sentence at each of the evenly spaced points on the "
    "path between their codes. In a model that uses z the sentences change step by step from one end to the other; "
    "in a collapsed model every point decodes to the same sentence, because the decoder ignores z."
)


def build(ctx: Context, pair) -> None:
    gr.Markdown(INTRO, elem_classes="vm-intro")
    with gr.Row():
        a = gr.Textbox(label="from", value=START[0], elem_id="int-a")
        b = gr.Textbox(label="to", value=START[1], elem_id="int-b")
    with gr.Row():
        steps = number_box("steps", 10, label="steps (both ends included)", elem_id="int-steps")
        mode = gr.Radio(list(MODES), value="linear", label="path", elem_id="int-mode")
        preset = gr.Button("Load the paper's Table 4 pair (SNLI)", size="sm", elem_id="int-preset")
    decoding = decoding_controls("int")
    go = gr.Button("Interpolate", variant="primary", elem_id="int-go")
    out = gr.HTML(elem_id="int-out")
    plot = gr.Plot(elem_id="int-plot")
    gr.Markdown(
        "The chart draws each model's path in the plane through the origin (the prior's mean) and the path's "
        "two ends, so it is drawn without distortion and its length is a distance in the latent space; the "
        "dotted circle is one standard deviation of the prior, the faint dots are posterior means of "
        f"validation sentences (the first {CLOUD}). A collapsed model's path is a dot at the origin.",
        elem_classes="vm-dim",
    )
    # private (no API name) and fed the page's own dropdowns: preprocess off, the names checked in table4_preset
    preset.click(
        lambda left, right: table4_preset(ctx, left, right), list(pair), [a, b, out], api_name=False, preprocess=False
    )
    models = {"left": pair[0], "right": pair[1]}
    wire(
        ctx,
        go.click,
        lambda **x: interpolate(ctx, **x),
        {**models, "a": a, "b": b, "steps": steps, "mode": mode, **decoding},
        [plot, out],
        "interpolate",
    )
    gr.Markdown("### Analogy: a : b :: c : ?  (decoded from μ(c) + μ(b) − μ(a))")
    with gr.Row():
        xa = gr.Textbox(label="a", value="a man is riding a bike .", elem_id="ana-a")
        xb = gr.Textbox(label="b", value="a woman is riding a bike .", elem_id="ana-b")
        xc = gr.Textbox(label="c", value="a man is playing the guitar .", elem_id="ana-c")
    go2 = gr.Button("Solve analogy", elem_id="ana-go")
    out2 = gr.HTML(elem_id="ana-out")
    wire(
        ctx,
        go2.click,
        lambda **x: analogy(ctx, **x),
        {**models, "a": xa, "b": xb, "c": xc, **decoding},
        out2,
        "analogy",
    )
