"""Compare (on the Latent map tab): both models' codes of the same sentences in aligned maps
(umap-learn's AlignedUMAP), a selection in one map highlighted in the other and listed with both
models' reconstructions, and where the two models' neighbourhoods disagree."""

from __future__ import annotations

import re
import time

import gradio as gr
import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from core import MAP_N, MAP_SPLIT, InputError, aligned_2d, aligned_kind, containing

from ..browser import COMPARE
from ..context import SPLITS, Context, Unavailable
from ..render import esc, message, page, table
from .common import counting, number_box, wire
from .maps import COLOURS, colour_values, colouring, map_arguments, pair_overlap, rings, searched

CMP_COLOURS = [COLOURS[-1], *COLOURS[:-1]]  # the overlap first: what this view is for
LIST_MAX = 500  # selected sentences listed (and exported) with both models' reconstructions
EXTREMES = 20  # sentences in each of the two disagreement tables
ALIGNED_SPEED: list[float] = []  # seconds per point of the last aligned fit here
ALIGNED_FIRST = 0.02  # seconds per point with numba's first compile (bench/results/explorer-cpu-2core.json)


def _pair(ctx: Context, left: str, right: str):
    if not left or not right:
        raise InputError("the compare view needs two models: choose one on each side")
    return ctx.model(left), ctx.model(right)


def shipped_layout(ctx: Context, left, right, split: str, n: int) -> tuple[np.ndarray, np.ndarray] | None:
    """The pair's aligned maps of the first n sentences of split when both atlases ship them, else None."""
    digest = ctx.split_digest(left, split)
    shipped = [m.atlas(aligned_kind(o.fingerprint), split, n, digest) for m, o in ((left, right), (right, left))]
    return None if any(s is None for s in shipped) else (shipped[0], shipped[1])


def aligned(ctx: Context, left, right, split: str, n: int, progress=None) -> tuple[np.ndarray, np.ndarray, str]:
    """(left coords, right coords, where they came from) of the pair's aligned maps of the first n
    sentences of split: the atlases when both ship this pair's layout, else memory, disk or a fit."""
    shipped = shipped_layout(ctx, left, right, split, n)
    if shipped is not None:
        return *shipped, "shipped in the checkpoints' atlases"
    report = progress or (lambda frac, desc="": None)
    mu_l = ctx.posterior_means(left, split, n, counting(progress, "encoding (left)", 0, 0.15))
    mu_r = ctx.posterior_means(right, split, n, counting(progress, "encoding (right)", 0.15, 0.15))

    def fit() -> np.ndarray:
        guess = (ALIGNED_SPEED[-1] if ALIGNED_SPEED else ALIGNED_FIRST) * n
        report(
            0.35,
            f"aligned UMAP of {n:,} sentences under both models: about {guess:.0f} s"
            + ("" if ALIGNED_SPEED else " (the first fit also compiles umap-learn's code)"),
        )
        start = time.perf_counter()
        a, b = aligned_2d(mu_l, mu_r)
        ALIGNED_SPEED[:] = [(time.perf_counter() - start) / n]
        return np.hstack([a, b])

    both, cached = ctx.cached_array(f"aligned-pair-{right.fingerprint[:16]}", left, split, n, fit)
    return both[:, :2], both[:, 2:], "from the cache" if cached else "computed"


def figure(coords, sentences, values, label, titles, hits) -> go.Figure:
    """Both maps in one figure: trace 0 the left model's, trace 1 the right's, point i sentence i
    in each (the page's script links their selection and hover by that index)."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=[esc(t) for t in titles], horizontal_spacing=0.04)
    text = [esc(s) for s in sentences]
    low = float(np.nanmin([np.nanmin(v) for v in values]))
    high = float(np.nanmax([np.nanmax(v) for v in values]))
    for col, (xy, vals) in enumerate(zip(coords, values)):
        fig.add_trace(
            go.Scatter(
                x=xy[:, 0],
                y=xy[:, 1],
                mode="markers",
                text=text,
                customdata=np.arange(len(xy)),
                name=f"{'left' if col == 0 else 'right'} model",
                showlegend=False,
                hovertemplate="#%{customdata}: %{text}<extra></extra>",
                selected=dict(marker=dict(color="#e8432e", size=8)),
                unselected=dict(marker=dict(opacity=0.25)),
                marker=dict(
                    size=5,
                    color=vals,
                    colorscale="Viridis",
                    cmin=low,
                    cmax=high,
                    showscale=col == 1,
                    colorbar=dict(title=dict(text=label)),
                ),
            ),
            row=1,
            col=col + 1,
        )
    if hits is not None:
        for col, xy in enumerate(coords):
            fig.add_trace(rings(xy, hits, legend=col == 0), row=1, col=col + 1)
    fig.update_layout(
        height=520,
        margin=dict(l=10, r=10, t=60, b=10),
        dragmode="select",
        hovermode="closest",
        legend=dict(orientation="h", y=-0.02, yanchor="top"),
        uirevision="compare",
    )
    fig.update_xaxes(showticklabels=False)
    fig.update_yaxes(showticklabels=False)
    return fig


def compare_maps(
    ctx: Context,
    left: str,
    right: str,
    split: str = MAP_SPLIT,
    n: int = MAP_N,
    colour: str = CMP_COLOURS[0],
    search: str | None = "",
    progress=None,
):
    """[figure, status html]: the two aligned maps, coloured alike, the searched sentences ringed."""
    n = map_arguments(split, n, "compare_n")
    colouring(colour, CMP_COLOURS)  # (an unknown one is refused before any work)
    start = time.perf_counter()
    ml, mr = _pair(ctx, left, right)
    if ml.corpus != mr.corpus:
        raise InputError(
            f"the two models read different corpora ({ml.corpus}, {mr.corpus}): their maps share no sentences"
        )
    try:
        sentences = ctx.sentences(ml, split, n)
    except Unavailable as e:
        raise InputError(f"{e}: the compare view maps corpus sentences") from None
    xy_l, xy_r, source = aligned(ctx, ml, mr, split, len(sentences), progress)
    words = searched(ml, search)
    overlap = lambda: pair_overlap(ctx, [left, right], split, len(sentences))  # noqa: E731
    values, labels = zip(
        *(
            colour_values(ctx, m, sentences, ctx.posterior_means(m, split, len(sentences)), colour, words, overlap)
            for m in (ml, mr)
        )
    )
    label = labels[0] if labels[0] == labels[1] else f"{colour} (each model its own)"
    hits = containing(sentences, words) if words else None
    fig = figure((xy_l, xy_r), sentences, values, label, (ctx.title(left), ctx.title(right)), hits)
    found = f"; {int(hits.sum()):,} hold “{esc(' '.join(words))}” (ringed)" if words else ""
    status = (
        f"{len(sentences):,} {ml.corpus}/{split} sentences under both models, aligned layout {source}, "
        f"{time.perf_counter() - start:.1f} s{found}. Select with the box or lasso (toolbar above the maps) "
        "in either map: the same sentences light up in the other and are listed below."
    )
    return [fig, page(code_notes(ctx, (ml, mr), (left, right)) + f'<p class="vm-dim">{status}</p>')]


def code_notes(ctx: Context, models, names) -> str:
    """A warning for each model of the pair whose codes are collapsed or shared (core.code_state over
    its training split): UMAP draws clusters out of noise, and the alignment follows the other map."""
    notes = []
    for model, name in zip(models, names):
        state = ctx.code_state(model)
        if state.collapsed:
            notes.append(
                message(
                    f"{ctx.title(name)}: its codes are {state.verdict()}. Its map here is UMAP's "
                    f"layout of that noise, pulled toward the other model's map by the alignment: its "
                    f"clusters mean nothing (the Latent map tab draws it at its true scale)."
                )
            )
        elif state.shared >= 0.1:
            notes.append(message(f"{ctx.title(name)}: {state.verdict()}; such sentences sit on one spot of its map."))
    return "".join(notes)


def _neighbour_list(sentences, idx) -> str:
    return "<ol>" + "".join(f"<li>{esc(sentences[j])}</li>" for j in idx) + "</ol>"


def disagreement(ctx: Context, left: str, right: str, split: str = MAP_SPLIT, n: int = MAP_N) -> str:
    """The mean neighbour overlap against chance, and the sentences whose neighbourhoods the two
    models agree on least and most, each with both models' neighbours on a click."""
    n = map_arguments(split, n, "compare_n")
    ml, mr = _pair(ctx, left, right)
    try:
        sentences = ctx.sentences(ml, split, n)
    except Unavailable as e:
        raise InputError(f"{e}: the overlap compares corpus sentences") from None
    found = pair_overlap(ctx, [left, right], split, len(sentences))
    k = found.k
    order = np.argsort(found.shared, kind="stable")

    def rows(picked):
        return [
            [
                str(int(i)),
                f"{found.shared[i] * k:.0f} of {k}",
                esc(sentences[i]),
                f"<details><summary>both models' {k} neighbours</summary><div class='vm-grid'>"
                f"<div><b>{esc(ctx.title(left))}</b>{_neighbour_list(sentences, found.left[i])}</div>"
                f"<div><b>{esc(ctx.title(right))}</b>"
                f"{_neighbour_list(sentences, found.right[i])}</div></div></details>",
            ]
            for i in picked
        ]

    header = ["#", "shared neighbours", "sentence", "neighbours"]
    summary = (
        f'<p class="vm-figure" id="cmp-overlap-figure"><b>Mean overlap of the {k} nearest neighbours: '
        f"{found.mean * k:.2f} of {k} ({found.mean:.1%})</b>. Chance, two lists of {k} drawn at random from the "
        f"other {len(sentences) - 1:,} sentences: {found.chance * k:.2f} of {k} ({found.chance:.2%}); "
        f"{k} of {k} means the same neighbours. Neighbours by cosine distance of posterior means, among these "
        f"{len(sentences):,} {ml.corpus}/{split} sentences. A collapsed model's codes carry almost nothing of "
        "their sentence, so its overlap with any other model falls toward chance.</p>"
    )
    return page(
        summary
        + f"<h4>The {EXTREMES} sentences whose neighbourhoods differ most</h4>"
        + table(header, rows(order[:EXTREMES]), "neighbourhoods-differ")
        + f"<h4>The {EXTREMES} that agree most</h4>"
        + table(header, rows(order[::-1][:EXTREMES]), "neighbourhoods-agree")
    )


def parse_ids(ids, n: int) -> list[int]:
    """Sentence numbers from the selection box ("3 17 250", commas allowed), each in 0..n-1."""
    if ids is not None and not isinstance(ids, str):
        raise InputError("the selection must be text: sentence numbers separated by spaces")
    parts = [p for p in re.split(r"[\s,]+", ids or "") if p]
    if not parts:
        raise InputError("nothing selected: select points in a map (box or lasso), or type sentence numbers")
    # ASCII digits only, at most 9 of them: str.isdigit takes "²", and int() of 5,000 digits is refused
    bad = [p for p in parts if not re.fullmatch(r"[0-9]{1,9}", p) or int(p) >= n]
    if bad:
        raise InputError(
            f"the selection holds {len(bad):,} entries that are not sentence numbers from 0 to {n - 1:,} "
            f"(first: {bad[0][:20]!r})"
        )
    return list(dict.fromkeys(int(p) for p in parts))


def compare_selection(
    ctx: Context, left: str, right: str, split: str = MAP_SPLIT, n: int = MAP_N, ids: str = "", progress=None
) -> str:
    """The selected sentences with both maps' coordinates, both models' greedy reconstructions
    (from the posterior mean) and KL: a table with a CSV link."""
    n = map_arguments(split, n, "compare_n")
    ml, mr = _pair(ctx, left, right)
    sentences = ctx.sentences(ml, split, n)
    picked = parse_ids(ids, len(sentences))
    shown = picked[:LIST_MAX]
    chosen = [sentences[i] for i in shown]
    xy_l, xy_r, _ = aligned(ctx, ml, mr, split, len(sentences), progress)
    if progress:
        progress(0.5, desc=f"reconstructing {len(chosen):,} sentences with both models")
    recs = [m.reconstruct(chosen) for m in (ml, mr)]
    kls = [m.kl(chosen) for m in (ml, mr)]
    short = [x or "no model" for x in (left, right)]  # the checkpoint: two VAE-MINEs share a display name
    # the narrow columns say left / right (a checkpoint's name wrapped a few letters a line there)
    header = [
        "#",
        "sentence",
        "x, y (left)",
        "x, y (right)",
        f"reconstruction (left: {esc(short[0])})",
        f"reconstruction (right: {esc(short[1])})",
        "KL (left)",
        "KL (right)",
    ]
    rows = [
        [
            str(i),
            esc(s),
            f"{xy_l[i, 0]:.2f}, {xy_l[i, 1]:.2f}",
            f"{xy_r[i, 0]:.2f}, {xy_r[i, 1]:.2f}",
            esc(recs[0][j]),
            esc(recs[1][j]),
            f"{kls[0][j]:.2f}",
            f"{kls[1][j]:.2f}",
        ]
        for j, (i, s) in enumerate(zip(shown, chosen))
    ]
    more = (
        message(f"{len(picked):,} sentences selected; the first {LIST_MAX} are listed and exported")
        if len(picked) > LIST_MAX
        else ""
    )
    return page(
        f'<p class="vm-dim">{len(picked):,} selected sentences (greedy reconstructions from the posterior mean); '
        f"left: {esc(short[0])}, right: {esc(short[1])}</p>" + more + table(header, rows, "compare-selection")
    )


def warm_pair(ctx: Context, left, right) -> None:
    """At start-up: the default pair's aligned maps and overlap, when the atlases ship the layout."""
    if shipped_layout(ctx, left, right, MAP_SPLIT, MAP_N) is not None:
        pair_overlap(ctx, [left.path.name, right.path.name], MAP_SPLIT, MAP_N)


INTRO = (
    "### Compare the two models' maps\n"
    "The same sentences under both models, laid out together (umap-learn's AlignedUMAP): each map keeps its own "
    "model's neighbourhoods, while a sentence sits at about the same place in both unless the models disagree "
    "about it. Select points with the box or lasso in either map: the same sentences light up in the other, and "
    "the list below gives both models' reconstructions. Colour by the **neighbour overlap** to see where the models "
    "disagree: how many of a sentence's 10 nearest neighbours (cosine, posterior means) both models name."
)


def build(ctx: Context, pair) -> None:
    gr.Markdown(INTRO, elem_classes="vm-intro")
    with gr.Row():
        split = gr.Dropdown(list(SPLITS), value=MAP_SPLIT, label="split", elem_id="cmp-split")
        n = number_box("compare_n", MAP_N, label="sentences (the first N of the split)", elem_id="cmp-n")
        colour = gr.Dropdown(CMP_COLOURS, value=CMP_COLOURS[0], label="colour by", elem_id="cmp-colour")
        search = gr.Textbox(
            "", label="search: ring the sentences holding a word or phrase", elem_id="cmp-search", max_lines=1
        )
    go_ = gr.Button("Draw aligned maps", variant="primary", elem_id="cmp-go")
    status = gr.HTML(elem_id="cmp-status")
    plot = gr.Plot(elem_id=COMPARE["map"])
    with gr.Row():
        ids = gr.Textbox(
            label="selected sentences (numbers on the map; set by a selection, or type them)",
            elem_id=COMPARE["selected"],
            max_lines=2,
            scale=4,
        )
        list_go = gr.Button("List the selection", elem_id=COMPARE["list"], scale=1)
    selection = gr.HTML(elem_id="cmp-selection")
    overlap = gr.HTML(elem_id="cmp-overlap")
    wire(
        ctx,
        [go_.click, search.submit],
        lambda **a: compare_maps(ctx, **a),
        {"left": pair[0], "right": pair[1], "split": split, "n": n, "colour": colour, "search": search},
        [plot, status],
        "compare_maps",
        progress=True,
    )
    wire(
        ctx,
        go_.click,
        lambda **a: disagreement(ctx, **a),
        {"left": pair[0], "right": pair[1], "split": split, "n": n},
        overlap,
        "disagreement",
    )
    wire(
        ctx,
        [list_go.click, ids.submit],
        lambda **a: compare_selection(ctx, **a),
        {"left": pair[0], "right": pair[1], "split": split, "n": n, "ids": ids},
        selection,
        "compare_selection",
        progress=True,
    )
