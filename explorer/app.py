"""The explorer's Blocks app: a model pair chosen once at the top, shared by every tab."""

from __future__ import annotations

import inspect
import logging
import threading
import time
from pathlib import Path

import gradio as gr
import numpy as np

import core
from core import VaeMineError, departure_text

from . import browser, share
from .context import Context
from .render import esc
from .tabs import collapse, compare, interpolate, latent_map, neighbours, probe, reconstruct, sample

log = logging.getLogger(__name__)
# the machine's own sans-serif: Gradio's default web font drew the "A" of "VAE" in headings small
THEME = gr.themes.Default(font=["ui-sans-serif", "system-ui", "sans-serif"], font_mono=["ui-monospace", "monospace"])
# a dropdown's long choice ends in "…" clear of its arrow, not under it
CSS = ".wrap-inner input {text-overflow: ellipsis; padding-right: 28px;}"
TABS = [
    ("Reconstruct", (reconstruct,)),
    ("Interpolate", (interpolate,)),
    ("Sample", (sample,)),
    ("Neighbours", (neighbours,)),
    ("Latent map", (latent_map, compare, probe)),
    ("Posterior collapse", (collapse,)),
]


def model_facts(ctx: Context, left, right) -> str:
    """Under the model pair: how each chosen model was trained (epochs, whether its schedule ended or a
    budget stopped it, time, seed), so a reader knows whether the pair was trained on equal terms."""
    lines = []
    for side, name in (("left", left), ("right", right)):
        try:
            model = ctx.model(ctx.check_model(side, name))
        except VaeMineError:
            continue
        lines.append(f"<b>{esc(side)}</b> {esc(name)}: {esc(model.training_facts())}")
    return f'<p class="vm-dim" id="model-facts-text">{"<br>".join(lines)}</p>' if lines else ""


def status_line(ctx: Context) -> str:
    """Checkpoints found, corpora found, and each checkpoint whose corpus is missing or differs."""
    names = ctx.names()
    found = (
        f"{len(names)} checkpoint(s)"
        if names
        else "**No checkpoints found**: start the app with `--checkpoints DIR` (folders made by `core.train`)."
    )
    corpora = f"corpora found: {', '.join(ctx.corpora()) or 'none'}"
    problems = ctx.corpus_problems()
    missing = sorted({ctx.info(n).corpus for n, (kind, _) in problems.items() if kind == "missing"})
    notes = []
    if missing:
        notes.append(
            f"corpus data missing for {', '.join(missing)} (set `--data-dir` or `$VAE_MINE_DATA`, or fetch "
            "public corpora with `python -m core.data get ptb`): Neighbours, Latent map and per-dimension KL "
            "need it, the other tabs work without it"
        )
    notes += [f"**{name}**: {text}" for name, (kind, text) in sorted(problems.items()) if kind == "differs"]
    infos = {n: ctx.info(n) for n in names}
    beyond = [f"**{n}** ({departure_text(i.departures)})" for n, i in infos.items() if i is not None and i.departures]
    if beyond:
        notes.append(
            "beyond the papers (named settings they do not print: `docs/mine-variants.md`, "
            "`docs/lagging-reference.md`): " + "; ".join(beyond)
        )
    return " · ".join([found, corpora, *notes])


def warm_up(ctx: Context) -> None:
    """Build what each tab's first answer needs (models loaded, corpus splits read, neighbour index,
    default map; from the checkpoints' atlases where they ship one), the default pair first, then
    the rest; then load umap-learn for maps the atlas lacks. A failure is logged, never raised: the
    tab that needs the piece reports it when asked."""
    start = time.perf_counter()
    left, right = ctx.default_pair()
    names = [n for n in dict.fromkeys([left, right, *ctx.names()]) if n]
    for name in names:
        for title, modules in TABS:
            for module in (m for m in modules if hasattr(m, "warm")):
                try:
                    module.warm(ctx, ctx.model(name))
                except Exception as e:  # noqa: BLE001 (any failure here is reported later by the tab itself)
                    log.info("warm-up of %s for %s skipped: %s", title, name, e)
        log.info("warm-up: %s ready (%.1f s)", name, time.perf_counter() - start)
    if left and right and left != right:
        try:
            compare.warm_pair(ctx, ctx.model(left), ctx.model(right))
        except Exception as e:  # noqa: BLE001
            log.info("warm-up of the compare view skipped: %s", e)
    try:
        import umap  # noqa: F401 (numba's import, paid here rather than by the first new map)
    except ImportError as e:
        log.info("warm-up: umap-learn not loaded: %s", e)
    log.info("warm-up: every tab's first answer ready in %.1f s", time.perf_counter() - start)
    for name in dict.fromkeys([left, right]):  # then UMAP's graph around the default maps, so a visitor's
        try:  # first "your sentences" on them is placed at once (20-35 s otherwise)
            latent_map.warm_placement(ctx, ctx.model(name))
        except Exception as e:  # noqa: BLE001
            log.info("warm-up of the placement for %s skipped: %s", name, e)
    try:  # numba compiles AlignedUMAP's code on a toy pair here, not during a visitor's first unshipped compare
        toy = np.random.default_rng(0).normal(size=(2, 64, 8)).astype(np.float32)
        core.aligned_2d(toy[0], toy[1])
    except Exception as e:  # noqa: BLE001
        log.info("warm-up of the aligned layout skipped: %s", e)
    log.info("warm-up done in %.1f s (placements and the aligned layout's code included)", time.perf_counter() - start)


def start_warm_up(app: gr.Blocks) -> threading.Thread:
    thread = threading.Thread(target=warm_up, args=(app.explorer_context,), name="warm-up", daemon=True)
    thread.start()
    return thread


class Explorer(gr.Blocks):
    """gr.Blocks whose API answers a call that sent too few or too many inputs with a message naming
    them, where Gradio would log a traceback and answer {"error": null} (too few) or drop the extra
    ones silently (too many)."""

    def validate_inputs(self, block_fn, inputs: list) -> None:
        wanted = len(block_fn.inputs)
        if len(inputs) != wanted:
            names = [n for n in inspect.signature(block_fn.fn).parameters if n not in ("progress_bar", "request")]
            what = f"/{block_fn.api_name}" if block_fn.api_name else "this event"
            raise gr.Error(
                f"{what} takes {wanted} inputs ({', '.join(names[:wanted]) or 'none'}); this call sent {len(inputs)}",
                print_exception=False,
            )
        super().validate_inputs(block_fn, inputs)


def build_app(
    checkpoints: str | Path = "checkpoints",
    data_dir: str | None = None,
    cache_dir: str | Path | None = None,
    own_corpora: tuple = (),
) -> gr.Blocks:
    ctx = Context(
        Path(checkpoints),
        data_dir,
        **({"cache_dir": Path(cache_dir)} if cache_dir else {}),
        own_corpora=tuple(own_corpora),
    )
    left0, right0 = ctx.default_pair()
    # Gradio's temporary files (plots and CSVs it serves) older than an hour are deleted every 10 minutes
    with Explorer(title="VAE-MINE latent-space explorer", delete_cache=(600, 3600)) as app:
        gr.Markdown(
            "# Text VAE latent-space explorer\nVAE-MINE (Qian & Cheung, 2019) and its baselines. " + status_line(ctx)
        )
        with gr.Row(equal_height=True):
            left = gr.Dropdown(ctx.choices(), value=left0, label="left model", elem_id="left-model", scale=3)
            right = gr.Dropdown(ctx.choices(), value=right0, label="right model", elem_id="right-model", scale=3)
            with gr.Column(scale=2, min_width=220):
                link_button = gr.Button("Link to this view", size="sm", elem_id="share-button")
                link = gr.Textbox(
                    label="link (copied; the address bar holds it too)",
                    elem_id="share-link",
                    interactive=False,
                    max_lines=1,
                    buttons=["copy"],
                )
        facts = gr.HTML(model_facts(ctx, left0, right0), elem_id="model-facts")
        # private, fed the page's own dropdowns: preprocess off, the names checked in model_facts
        gr.on(
            [left.change, right.change],
            lambda a, b: model_facts(ctx, a, b),
            [left, right],
            facts,
            api_name=False,
            queue=False,
            preprocess=False,
        )
        note = gr.HTML(elem_id="share-note")
        items = {}
        with gr.Tabs() as tabs:
            for title, modules in TABS:
                key = title.split()[0].lower()
                with gr.Tab(title, id=key, elem_id=f"tab-{key}") as items[key]:
                    for module in modules:
                        module.build(ctx, (left, right))
        share.wire(app, tabs, items, (left, right), link, link_button, note)
        app.load(None, None, None, js=browser.SCRIPT, queue=False, api_name=False)
    app.explorer_context = ctx
    return app
