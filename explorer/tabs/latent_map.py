"""Latent map: UMAP of posterior means, coloured by an active unit or sentence length, beside each
dimension's variance of posterior means (the active-unit statistic, threshold 0.01)."""
from __future__ import annotations

import logging
import time

import gradio as gr
import numpy as np
import plotly.graph_objects as go

from core import AU_THRESHOLD, MAP_N, MAP_SPLIT, InputError, active_units, check, umap_2d  # the default map: the atlas's

from ..context import SPLITS, Context
from ..render import esc, mark_changes, page, table
from .common import counting, for_model, input_notes, first_line, number_box, per_model, wire

log = logging.getLogger(__name__)
COLOURS = ["sentence length"] + [f"active unit #{r}" for r in range(1, 11)]


# The fit's time for the progress estimate: this machine's last fit, else the 2-core benchmark's figure.
UMAP_SPEED: list[float] = []  # seconds per point of the last fit (one value, replaced)
UMAP_FIRST_SECONDS = 15.0  # umap-learn's import and numba's first compile (bench/results/explorer-cpu-2core.json)


def _seconds_per_point() -> float:
    return UMAP_SPEED[-1] if UMAP_SPEED else 0.002


def umap_coords(ctx: Context, model, split: str, n: int, progress=None) -> tuple[np.ndarray, np.ndarray, bool]:
    """(2-D coordinates, posterior means, came from the cache) for the first n sentences of split."""
    report = progress or (lambda frac, desc="": None)
    mu = ctx.posterior_means(model, split, n, counting(progress, "encoding sentences", 0, 0.3))

    def fit() -> np.ndarray:
        guess = _seconds_per_point() * len(mu) + (0 if UMAP_SPEED else UMAP_FIRST_SECONDS)
        report(0.4, f"UMAP of {len(mu):,} posterior means: about {guess:.0f} s"
               + ("" if UMAP_SPEED else " (the first one also loads umap-learn and compiles its code)"))
        start = time.perf_counter()
        coords = umap_2d(mu)
        UMAP_SPEED[:] = [(time.perf_counter() - start) / len(mu)]
        log.info("UMAP of %d points in %.1f s", len(mu), time.perf_counter() - start)
        return coords

    coords, cached = ctx.cached_array("umap", model, split, n, fit)
    return coords, mu, cached


def warm(ctx: Context, model) -> None:
    """At start-up: the default map, when the checkpoint's atlas holds its layout (a UMAP fit here
    would hold the CPU for as long as a user's first answer should take)."""
    if model.latent and model.atlas("umap", MAP_SPLIT, MAP_N, ctx.split_digest(model, MAP_SPLIT)) is not None:
        umap_coords(ctx, model, MAP_SPLIT, MAP_N)


def colour_values(sentences: list[str], mu: np.ndarray, colour: str) -> tuple[np.ndarray, str]:
    if colour == "sentence length":
        return np.array([len(s.split()) for s in sentences]), "length (words)"
    if colour not in COLOURS:
        raise InputError(f"unknown colouring {colour!r}")
    rank = int(colour.rsplit("#", 1)[1])
    _, var = active_units(mu)
    order = np.argsort(-var)
    if rank > len(order):
        raise InputError(f"the model has only {len(order)} dimensions")
    dim = int(order[rank - 1])
    state = "active" if var[dim] >= AU_THRESHOLD else "NOT active"
    return mu[:, dim], f"z[{dim}] (rank {rank}, variance {var[dim]:.3g}, {state})"


def scatter(coords: np.ndarray, sentences: list[str], values: np.ndarray, label: str, title: str) -> go.Figure:
    fig = go.Figure(go.Scatter(
        x=coords[:, 0], y=coords[:, 1], mode="markers", text=[esc(s) for s in sentences],
        hovertemplate="%{text}<extra></extra>",
        marker=dict(size=5, color=values, colorscale="Viridis", showscale=True, colorbar=dict(title=dict(text=label)))))
    fig.update_layout(title=dict(text=esc(title)), height=460, margin=dict(l=10, r=10, t=50, b=10),
                      xaxis=dict(showticklabels=False), yaxis=dict(showticklabels=False))
    return fig


def variance_bars(mu: np.ndarray, title: str) -> go.Figure:
    count, var = active_units(mu)
    active = var >= AU_THRESHOLD
    fig = go.Figure(go.Bar(x=np.arange(len(var)), y=np.maximum(var, 1e-8),
                           marker_color=np.where(active, "#2a7de1", "#bbbbbb"),
                           hovertemplate="z[%{x}]: variance %{y:.3g}<extra></extra>"))
    fig.add_hline(y=AU_THRESHOLD, line_dash="dash", line_color="#d9534f", annotation_text=f"{AU_THRESHOLD} (active unit)")
    fig.update_layout(title=dict(text=esc(f"{title}: {count} of {len(var)} units active")),
                      yaxis_type="log", yaxis_title="Var_x E[z|x]", xaxis_title="dimension", height=300,
                      margin=dict(l=10, r=10, t=50, b=10))
    return fig


def latent_map(ctx: Context, names, split: str = MAP_SPLIT, n: int = MAP_N, colour: str = "active unit #1", progress=None):
    """(figures and a status note) for each model: [scatter, bars] * len(names) + [status html]."""
    if split not in SPLITS:
        raise InputError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
    n = check("map_n", n)
    figures, notes = [], []
    for name in names:
        def draw(model):
            start = time.perf_counter()
            coords, mu, cached = umap_coords(ctx, model, split, n, progress)
            sentences = ctx.sentences(model, split, n)
            values, label = colour_values(sentences, mu, colour)
            title = ctx.title(name)
            note = (f"{esc(title)}: {len(mu):,} {model.corpus}/{split} sentences, "
                    f"{'from the cache' if cached else 'computed'} in {time.perf_counter() - start:.1f} s")
            return [scatter(coords, sentences, values, label, title), variance_bars(mu, title)], note

        result, err = for_model(ctx, name, draw)
        figures += result[0] if result else [None, None]
        notes.append(result[1] if result else f"{esc(ctx.title(name))}: {err}")
    return [*figures, page("<br>".join(notes))]


INTRO = ("Each dot is one sentence's code (posterior mean), laid out in 2-D by UMAP so that nearby codes stay nearby; "
         "hover to read the sentence. Colour by an active unit to see what it tracks. The bars give, for each latent "
         f"dimension, how much its mean varies across these sentences: a dimension above the dashed {AU_THRESHOLD:g} line is an "
         "active unit (AU), one the encoder uses. These counts are over the sentences drawn here, so they can differ "
         "from the AU in the Posterior collapse table, which counts over the whole test split.")


UNITS = [f"most active unit #{r}" for r in range(1, 11)] + ["least active unit"]
PROBE = ("### Unit probe: what does one latent dimension do?\n"
         "The sentence is encoded, then one dimension of its code is moved from 3 standard deviations below to 3 above "
         "(the spread of that dimension's posterior means over the training split, or the prior's 1.0 for a dimension "
         "that barely varies) and each code is decoded. An active unit changes something you can name; an inactive "
         "one changes nothing, or only at the extremes the encoder never uses.")


def unit_probe(ctx: Context, left: str, right: str, text: str, unit: str = UNITS[0], steps: int = 7) -> str:
    sentence, several = first_line(text)
    steps = check("steps", steps)
    if unit not in UNITS:
        raise InputError(f"unknown unit {unit!r}; choose one of: {', '.join(UNITS)}")

    def panel(model) -> str:
        _, var = active_units(ctx.posterior_means(model, "train"))
        order = np.argsort(-var)
        dim = int(order[-1] if unit == "least active unit" else order[int(unit.rsplit("#", 1)[1]) - 1])
        active = var[dim] >= AU_THRESHOLD
        spread = float(np.sqrt(var[dim])) if active else 1.0
        swept = model.sweep_unit(sentence, dim, spread, steps)
        rows = [[f"{offset:+.1f}", f"{value:+.2f}", mark_changes(swept[k - 1][2] if k else None, text_)]
                for k, (offset, value, text_) in enumerate(swept)]
        note = (f"z[{dim}]: variance of its posterior means {var[dim]:.3g} over the training split, "
                + ("an active unit; steps of its standard deviation" if active else
                   "NOT an active unit; steps of the prior's standard deviation, 1.0"))
        return (input_notes(model, model.prepare([sentence])) + f'<p class="vm-dim">{esc(note)}</p>'
                + table(["sd", f"z[{dim}]", "decoded (greedy; changes highlighted)"], rows,
                              f"unit-probe-{model.path.name}"))

    return page(several + per_model(ctx, [left, right], panel))


def build(ctx: Context, pair) -> None:
    gr.Markdown(INTRO, elem_classes="vm-intro")
    with gr.Row():
        split = gr.Dropdown(list(SPLITS), value=MAP_SPLIT, label="split", elem_id="map-split")
        n = number_box("map_n", MAP_N, label="sentences (the first N of the split)", elem_id="map-n")
        colour = gr.Dropdown(COLOURS, value="active unit #1", label="colour by", elem_id="map-colour")
    go_ = gr.Button("Draw map", variant="primary", elem_id="map-go")
    status = gr.HTML(elem_id="map-status")
    with gr.Row():
        with gr.Column():
            left_map, left_bars = gr.Plot(elem_id="map-left"), gr.Plot(elem_id="bars-left")
        with gr.Column():
            right_map, right_bars = gr.Plot(elem_id="map-right"), gr.Plot(elem_id="bars-right")
    wire(ctx, go_.click, lambda left, right, split, n, colour, progress: latent_map(ctx, [left, right], split, n, colour, progress),
         {"left": pair[0], "right": pair[1], "split": split, "n": n, "colour": colour},
         [left_map, left_bars, right_map, right_bars, status], "latent_map", progress=True)
    gr.Markdown(PROBE)
    with gr.Row():
        probe_text = gr.Textbox(label="sentence", value="a dog runs through the grass .", elem_id="probe-text", scale=3)
        unit = gr.Dropdown(UNITS, value=UNITS[0], label="unit (each model's own ranking by variance)", elem_id="probe-unit")
        probe_steps = number_box("steps", 7, label="steps", elem_id="probe-steps")
    probe_go = gr.Button("Sweep the unit", elem_id="probe-go")
    probe_out = gr.HTML(elem_id="probe-out")
    wire(ctx, [probe_go.click, probe_text.submit], lambda **a: unit_probe(ctx, **a),
         {"left": pair[0], "right": pair[1], "text": probe_text, "unit": unit, "steps": probe_steps}, probe_out,
         "unit_probe")
