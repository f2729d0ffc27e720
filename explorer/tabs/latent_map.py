"""Latent map: UMAP of posterior means, coloured by an active unit or sentence length, beside each
dimension's variance of posterior means (the active-unit statistic, threshold core.AU_THRESHOLD)."""

from __future__ import annotations

import logging
import re
import time

import gradio as gr
import numpy as np
import plotly.graph_objects as go

import core
from core import (
    AU_THRESHOLD,
    INVERSE_K,
    LIMITS,
    OWN_MIN_ALONE,
    WHOLE_SPLIT,
    InputError,
    active_units,
    containing,
    umap_2d,
)

from ..browser import LATENT
from ..context import SPLITS, Context, Unavailable
from ..render import esc, message, page, table
from .common import counting, for_model, input_notes, many_notes, number_box, wire
from .maps import (
    COLOURS,
    colour_values,
    colouring,
    map_arguments,
    own_box,
    own_values,
    pair_overlap,
    rings,
    search_prepared,
    your_lines,
)
from .neighbours import index as training_index

log = logging.getLogger(__name__)


# The fit's time for the progress estimate: this machine's last fit, else the 2-core benchmark's figure.
UMAP_SPEED: list[float] = []  # seconds per point of the last fit (one value, replaced)
UMAP_FIRST_SECONDS = 15.0  # umap-learn's import and numba's first compile (bench/results/explorer-cpu-2core.json)


SMALL_MAP = 5_000  # up to this many points are drawn at size 5, more at size 3
DENSITY_MIN = 500  # the density contours are drawn from this many points on


def _seconds_per_point() -> float:
    return UMAP_SPEED[-1] if UMAP_SPEED else 0.002


WHOLE_N = LIMITS["map_n"].high  # the map's default N: more than any split holds, so all of it


def umap_coords(ctx: Context, model, split: str, n: int | None, progress=None) -> tuple[np.ndarray, np.ndarray, bool]:
    """(2-D coordinates, posterior means, came from the cache) for the first n sentences of split
    (None or more than it holds: all of them)."""
    report = progress or (lambda frac, desc="": None)
    mu = ctx.posterior_means(model, split, n, counting(progress, "encoding sentences", 0, 0.3))

    def fit() -> np.ndarray:
        guess = _seconds_per_point() * len(mu) + (0 if UMAP_SPEED else UMAP_FIRST_SECONDS)
        what = (
            f"UMAP of {len(mu):,} posterior means"
            if len(mu) <= core.LAYOUT_FIT_MAX
            else f"UMAP fitted on {core.LAYOUT_FIT_MAX:,} of {len(mu):,} posterior means, the rest placed"
        )
        report(
            0.4,
            f"{what}: about {guess:.0f} s"
            + ("" if UMAP_SPEED else " (the first one also loads umap-learn and compiles its code)"),
        )
        start = time.perf_counter()
        coords = umap_2d(mu, counting(progress, "placing the rest of the points on the map", 0.5, 0.95))
        UMAP_SPEED[:] = [(time.perf_counter() - start) / len(mu)]
        log.info("UMAP of %d points in %.1f s", len(mu), time.perf_counter() - start)
        return coords

    coords, cached = ctx.cached_array("umap", model, split, n, fit)
    return coords, mu, cached


def ships_default_map(ctx: Context, model) -> bool:
    """Whether the checkpoint's atlas holds the default map's layout (what the warm-ups may build on:
    a UMAP fit would hold the CPU for as long as a user's first answer should take)."""
    return model.latent and model.atlas("umap", WHOLE_SPLIT, None, ctx.split_digest(model, WHOLE_SPLIT)) is not None


def warm(ctx: Context, model) -> None:
    """At start-up: the default map, when the atlas ships it."""
    if ships_default_map(ctx, model):
        umap_coords(ctx, model, WHOLE_SPLIT, None)


def scatter(
    coords: np.ndarray,
    sentences: list[str],
    values: np.ndarray,
    label: str,
    title: str,
    hits: np.ndarray | None = None,
    own: tuple | None = None,
) -> go.Figure:
    """The map: a dot per corpus sentence (hover reads it), drawn by WebGL so a whole split of tens
    of thousands pans and hovers at once; grey contours of the points' density, where the codes'
    mass lies on the map; rings on those the search found; your sentences as stars on the same
    colour scale."""
    colour = dict(
        colorscale="Viridis",
        cmin=float(np.nanmin(values)) if len(values) else None,
        cmax=float(np.nanmax(values)) if len(values) else None,
    )
    fig = go.Figure(
        go.Scattergl(
            x=coords[:, 0],
            y=coords[:, 1],
            mode="markers",
            text=[esc(s) for s in sentences],
            name="corpus",
            hovertemplate="%{text}<extra></extra>",
            showlegend=own is not None or hits is not None,
            marker=dict(
                size=5 if len(coords) <= SMALL_MAP else 3,
                color=values,
                showscale=True,
                colorbar=dict(title=dict(text=label)),
                **colour,
            ),
        )
    )
    if len(coords) >= DENSITY_MIN:
        fig.add_trace(
            go.Histogram2dContour(
                x=coords[:, 0],
                y=coords[:, 1],
                name="density",
                ncontours=8,
                contours=dict(coloring="lines"),
                line=dict(width=1),
                colorscale=[[0, "rgba(40,40,40,0.3)"], [1, "rgba(40,40,40,0.95)"]],
                showscale=False,
                showlegend=False,
                hoverinfo="skip",
            )
        )
    if hits is not None:
        fig.add_trace(rings(coords, hits, gl=True))
    if own is not None:
        xy, lines, own_vals = own
        grey = np.isnan(own_vals)
        fig.add_trace(
            go.Scattergl(
                x=xy[:, 0],
                y=xy[:, 1],
                mode="markers",
                text=[esc(s) for s in lines],
                name=f"your sentences ({len(lines):,})",
                hovertemplate="yours: %{text}<extra></extra>",
                marker=dict(
                    size=13,
                    symbol="star",
                    line=dict(color="#222", width=1),
                    color=np.where(grey, 0, own_vals) if grey.all() else own_vals,
                    **(dict(colorscale=[[0, "#999"], [1, "#999"]]) if grey.all() else colour),
                ),
            )
        )
    fig.update_layout(
        title=dict(text=esc(title)),
        height=460,
        margin=dict(l=10, r=10, t=50, b=10),
        xaxis=dict(showticklabels=False),
        yaxis=dict(showticklabels=False),
        legend=dict(orientation="h", y=-0.02, yanchor="top"),
    )
    return fig


def true_dims(mu: np.ndarray) -> np.ndarray:
    """The two most varying dimensions of the codes: the axes of a collapsed model's map."""
    return np.argsort(-mu.var(0))[:2]


def true_scale(
    mu: np.ndarray,
    sentences: list[str],
    values: np.ndarray,
    label: str,
    title: str,
    hits: np.ndarray | None,
    own: tuple | None,
) -> go.Figure:
    """A collapsed model's codes as they are: their two most varying dimensions, in axes of ±1 (the
    prior's standard deviation), so the whole split shows as the dot it is; `own` holds your
    sentences' codes (not map coordinates)."""
    dims = true_dims(mu)
    fig = scatter(
        mu[:, dims],
        sentences,
        values,
        label,
        f"{title} · collapsed: codes at their true scale",
        hits,
        None if own is None else (np.asarray(own[0])[:, dims], *own[1:]),
    )
    fig.update_layout(
        xaxis=dict(range=[-1, 1], showticklabels=True, title=f"z[{dims[0]}]"),
        yaxis=dict(range=[-1, 1], showticklabels=True, title=f"z[{dims[1]}]"),
    )
    return fig


def variance_bars(mu: np.ndarray, title: str) -> go.Figure:
    count, var = active_units(mu)
    active = var >= AU_THRESHOLD
    fig = go.Figure(
        go.Bar(
            x=np.arange(len(var)),
            y=np.maximum(var, 1e-8),
            marker_color=np.where(active, "#2a7de1", "#bbbbbb"),
            hovertemplate="z[%{x}]: variance %{y:.3g}<extra></extra>",
        )
    )
    fig.add_hline(
        y=AU_THRESHOLD, line_dash="dash", line_color="#d9534f", annotation_text=f"{AU_THRESHOLD} (active unit)"
    )
    # the model's name on a line of its own: one line with the count was cut at half the page's width
    fig.update_layout(
        title=dict(text=f"{esc(title)}<br>{count} of {len(var)} units active", font=dict(size=14)),
        yaxis_type="log",
        yaxis_title="Var_x E[z|x]",
        xaxis_title="dimension",
        height=320,
        margin=dict(l=60, r=10, t=70, b=10),
    )
    return fig


def warm_placement(ctx: Context, model) -> None:
    """After start-up: UMAP's graph around the default map, when the atlas ships it."""
    if ships_default_map(ctx, model):
        placement(ctx, model, WHOLE_SPLIT, None)


def placement(ctx: Context, model, split: str, n: int | None, progress=None) -> core.Placement:
    """The map's layout with UMAP's graph fitted around it, for placing new sentences (memory only:
    a fitted UMAP cannot be saved without pickling it)."""
    n = ctx.whole(model, split, n)  # one placement for a whole split, whatever N asked for it
    coords, mu, _ = umap_coords(ctx, model, split, n, progress)

    def fit():
        if progress:
            progress(
                0.6, desc=f"UMAP's neighbour graph around the map (once per map): about {max(3, 0.004 * len(mu)):.0f} s"
            )
        return core.Placement(mu, coords)

    return ctx.memo(("placement", model.fingerprint, split, n), fit)


def drawn(ctx: Context, model, split: str, n: int | None, progress=None) -> tuple[np.ndarray, np.ndarray, bool]:
    """(the layout the map draws, the posterior means, whether the code is collapsed): a collapsed
    model's codes at their true scale (their two most varying dimensions), else the UMAP layout."""
    coords, mu, _ = umap_coords(ctx, model, split, n, progress)
    if core.code_state(mu).collapsed:
        return mu[:, true_dims(mu)], mu, True
    return coords, mu, False


PLACE = re.compile(r"^\s*(left|right)\s+(?:#(\d+)|([-+0-9.eE]+)[\s,]+([-+0-9.eE]+))\s*$")
PLACE_NEIGHBOURS = 5


def map_place(ctx: Context, left: str, right: str, split: str = WHOLE_SPLIT, n: int = WHOLE_N, place: str = "") -> str:
    """What a place on a drawn map holds, decoded: a click on a point ("left #123") gives that
    sentence, what the decoder writes from its code and its nearest training sentences; a click
    anywhere else ("left 3.2 -1.5", map coordinates) decodes the code the map puts there
    (core.MapInverse) and says whether the place is off the data."""
    n = map_arguments(split, n)
    found = PLACE.match(place or "")
    if not found:
        raise InputError('click a map, or type a place: "left #123" (a point) or "left 3.2 -1.5" (map coordinates)')
    side, point, x, y = found.groups()
    name = left if side == "left" else right

    def panel(model) -> str:
        n_here = ctx.whole(model, split, n)
        coords, mu, collapsed = drawn(ctx, model, split, n_here)
        sentences = ctx.sentences(model, split, n_here)
        if point is not None:
            i = int(point)
            if i >= len(mu):
                raise InputError(f"the map holds points #0 to #{len(mu) - 1}; there is no #{i}")
            code, where = mu[i], f"point #{i}: “{esc(sentences[i])}”"
        else:
            try:
                at = ctx.memo(("inverse", model.fingerprint, split, n_here), lambda: core.MapInverse(coords, mu)).at(
                    float(x), float(y)
                )
            except ValueError:
                raise InputError(f"{x!r}, {y!r} are not map coordinates") from None
            code = at.code
            where = (
                f"the place ({float(x):.3g}, {float(y):.3g}), "
                + (
                    f"off the data ({at.gap:.1f} times the spacing of neighbouring points from the nearest sentence)"
                    if at.off_data
                    else f"among the sentences (nearest: “{esc(sentences[at.nearest])}”)"
                )
                + f": the code there is the distance-weighted mean of the codes of the {INVERSE_K} nearest "
                "points on the map"
            )
        decoded = model.decode(code[None])[0]
        rows = []
        try:
            dist, idx = training_index(ctx, model).query(code[None], PLACE_NEIGHBOURS)
            training = ctx.sentences(model, "train")
            rows = [[str(r + 1), f"{d:.4f}", esc(training[i])] for r, (d, i) in enumerate(zip(dist[0], idx[0]))]
        except Unavailable:
            pass
        caution = message("its code is collapsed: every place decodes to about the same sentence") if collapsed else ""
        return f"<p>{where}</p>{caution}<p><b>the decoder writes</b> (greedy, from this code): “{esc(decoded)}”</p>" + (
            f"<p>its {PLACE_NEIGHBOURS} nearest training sentences (cosine distance of codes):</p>"
            + table(["#", "cosine distance", "sentence"], rows, f"place-{model.path.name}")
            if rows
            else ""
        )

    inner, err = for_model(ctx, name, panel)
    return page(f"<h4>{esc(ctx.title(name))}</h4>" + (err or inner))


def own_points(
    ctx: Context, model, split: str, n: int, lines: list, progress=None
) -> tuple[np.ndarray, np.ndarray, str]:
    """(coordinates on the model's map, posterior means, a note) of your sentences (as text, or as
    the model prepared them)."""
    mu = model.encode(lines)[0]
    start = time.perf_counter()
    placed = placement(ctx, model, split, n, progress)
    built = time.perf_counter() - start
    xy = placed.place(mu)
    first = f" (after building UMAP's graph around this map, once: {built:.0f} s)" if built > 1 else ""
    return xy, mu, f"{len(lines):,} of your sentences placed by UMAP's transform{first}"


def latent_map(
    ctx: Context,
    names,
    split: str = WHOLE_SPLIT,
    n: int = WHOLE_N,
    colour: str = "active unit #1",
    search: str | None = "",
    yours: str | None = "",
    progress=None,
):
    """(figures and a status note) for each model: [scatter, bars] * len(names) + [status html].
    `search` rings the sentences holding its words; `yours` (one sentence a line) are placed on
    each map, or mapped alone when the corpus is missing."""
    n = map_arguments(split, n)
    colouring(colour)  # (an unknown one is refused before any work)
    lines = your_lines(yours)
    figures, notes = [], []
    for side, name in enumerate(names):
        other = names[1 - side] if len(names) == 2 else None

        def draw(model):
            start = time.perf_counter()
            query = search_prepared(model, search)  # tokenised once, for the rings and the note
            words = query[0].tokens if query else []
            title = ctx.title(name)
            notes_here = [input_notes(model, query, ["search"])] if words else []
            yours = model.prepare(lines) if lines else []  # tokenised once, for the notes and the codes
            if lines:
                notes_here.append(many_notes(model, yours, "your sentences"))
            try:
                coords, mu, cached = umap_coords(ctx, model, split, n, progress)
                sentences = ctx.sentences(model, split, n)
            except Unavailable as e:
                if not lines:
                    raise
                return own_alone(model, lines, yours, colour, words, title, e), "".join(notes_here) + (
                    f"{esc(title)}: {esc(ctx.public(str(e)))}; only your {len(lines):,} sentences are mapped"
                )
            values, label = colour_values(
                ctx, model, sentences, mu, colour, words, lambda: pair_overlap(ctx, [name, other], split, n)
            )
            hits = containing(sentences, words) if words else None
            own, own_note, own_mu = None, "", None
            if lines:
                xy, own_mu, own_note = own_points(ctx, model, split, n, yours, progress)
                own = (xy, lines, own_values(model, yours, own_mu, mu, colour, words))
                own_note = "; " + own_note
            found = f"; {int(hits.sum()):,} hold “{esc(' '.join(words))}”" if words else ""
            note = (
                f"{esc(title)}: {len(mu):,} {model.corpus}/{split} sentences"
                f"{' (the whole split)' if len(mu) == len(ctx.sentences(model, split)) else ''}, "
                f"{'from the cache' if cached else 'computed'} in {time.perf_counter() - start:.1f} s{found}{own_note}"
            )
            state = core.code_state(mu)
            if state.collapsed:  # UMAP would stretch noise of 1e-5 into clusters: draw the codes as they are
                fig = true_scale(mu, sentences, values, label, title, hits, own and (own_mu, *own[1:]))
                note = (
                    message(
                        f"{title}: its codes are {state.verdict()}. The map draws them at their true scale "
                        f"(the two most varying dimensions, axes ±1, the prior's spread), not a UMAP layout, "
                        f"which would stretch those differences into clusters that mean nothing."
                    )
                    + note
                )
            else:
                fig = scatter(coords, sentences, values, label, title, hits, own)
                if state.shared >= 0.1:
                    note = message(f"{title}: {state.verdict()}.") + note
            return [fig, variance_bars(mu, title)], "".join(notes_here) + note

        result, err = for_model(ctx, name, draw)
        figures += result[0] if result else [None, None]
        notes.append(result[1] if result else f"{esc(ctx.title(name))}: {err}")
    return [*figures, page("<br>".join(notes))]


def own_alone(model, lines: list[str], prepared: list, colour: str, words: list[str], title: str, why) -> list:
    """Your sentences (their text, and as the model prepared them) mapped alone (the corpus is missing)."""
    if len(lines) < OWN_MIN_ALONE:
        raise InputError(
            f"without the corpus only your sentences can be mapped, and a map needs at least "
            f"{OWN_MIN_ALONE}; got {len(lines)}"
        )
    mu = model.encode(prepared)[0]
    values = own_values(model, prepared, mu, None, colour, words)
    if np.isnan(values).all():
        raise InputError(
            "without the corpus there is no other model's neighbourhood to compare: choose another colouring"
        )
    label = colouring(colour).alone or f"{colour} (of your sentences)"
    return [
        scatter(umap_2d(mu), [f"yours: {s}" for s in lines], values, label, title + " (your sentences only)"),
        variance_bars(mu, title + " (your sentences)"),
    ]


INTRO = (
    "Each dot is one sentence's code (posterior mean), laid out in 2-D by UMAP so that nearby codes stay nearby; "
    "hover to read the sentence. Colour by an active unit to see what it tracks. The bars give, for each latent "
    "dimension, how much its mean varies across these sentences: a dimension above the dashed "
    f"{AU_THRESHOLD:g} line is an "
    "active unit (AU), one the encoder uses. These counts are over the sentences drawn here, so they can differ "
    "from the AU in the Posterior collapse table, which counts over the whole test split."
)


def build(ctx: Context, pair) -> None:
    gr.Markdown(INTRO, elem_classes="vm-intro")
    with gr.Row():
        split = gr.Dropdown(list(SPLITS), value=WHOLE_SPLIT, label="split", elem_id="map-split")
        n = number_box("map_n", WHOLE_N, label="sentences (the first N of the split; more: all)", elem_id="map-n")
        colour = gr.Dropdown(COLOURS, value="active unit #1", label="colour by", elem_id="map-colour")
        search = gr.Textbox(
            "", label="search: ring the sentences holding a word or phrase", elem_id="map-search", max_lines=1
        )
    yours = own_box("map")
    go_ = gr.Button("Draw map", variant="primary", elem_id="map-go")
    status = gr.HTML(elem_id="map-status")
    with gr.Row():
        with gr.Column():
            left_map, left_bars = gr.Plot(elem_id=LATENT["maps"][0]), gr.Plot(elem_id="bars-left")
        with gr.Column():
            right_map, right_bars = gr.Plot(elem_id=LATENT["maps"][1]), gr.Plot(elem_id="bars-right")
    with gr.Row():
        place = gr.Textbox(
            label='a place on a map (click one: a point, or anywhere else; or type "left #123" or "right 3.2 -1.5")',
            elem_id=LATENT["place"],
            max_lines=1,
            scale=4,
        )
        place_go = gr.Button("Decode the place", elem_id=LATENT["go"], scale=1)
    place_out = gr.HTML(elem_id="map-place-out")
    wire(
        ctx,
        [place_go.click, place.submit],
        lambda **a: map_place(ctx, **a),
        {"left": pair[0], "right": pair[1], "split": split, "n": n, "place": place},
        place_out,
        "map_place",
    )
    wire(
        ctx,
        [go_.click, search.submit],
        lambda left, right, split, n, colour, search, yours, progress: latent_map(
            ctx, [left, right], split, n, colour, search, yours, progress
        ),
        {"left": pair[0], "right": pair[1], "split": split, "n": n, "colour": colour, "search": search, "yours": yours},
        [left_map, left_bars, right_map, right_bars, status],
        "latent_map",
        progress=True,
    )
