"""Posterior collapse, for a classroom: each checkpoint's figures, its training curves, per-dimension
KL, and a live lab that trains a plain VAE and a VAE-MINE side by side on the CPU."""

from __future__ import annotations

import logging
import threading
import time

import gradio as gr
import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from core import AU_THRESHOLD, EXAMPLE, InputError, VaeMineError, check, departure_text
from core.library import catalogue
from core.serving.lab import LabConfig, live_training

from ..context import Context, Unavailable
from ..render import esc, message, page, table
from .common import first_line, for_model, input_notes, number_box, per_model, wire

log = logging.getLogger(__name__)
CURVES = [
    ("val_nll", "validation NLL (−ELBO)"),
    ("val_kl", "validation KL"),
    ("val_mi", "validation MI"),
    ("val_au", "active units"),
]
KL_SENTENCES = 1000
DOT = 0.05  # the training replay: codes within this of the centre draw as one dot at the prior's scale


EXPLAINED = f"""**Posterior collapse** is when a VAE's decoder learns to write good sentences without looking
at z: the encoder
then gives every sentence the same code (the prior), and z carries nothing. It happens because an LSTM decoder is
strong enough on its own, and the training objective charges for every nat of information put into z. The figures
in the table (on each checkpoint's test split) tell a collapsed model from a live one:

- **NLL**: how many nats a model needs per sentence (lower is better); **PPL**, perplexity, is the same per word,
  e^(NLL / words): the number of equally likely words the model is choosing between at each step.
- **KL**: how far, on average, a sentence's code sits from the prior, in nats. Near 0: the codes carry almost
  nothing.
- **MI**: mutual information between a sentence and its code, in nats: how much knowing z tells you about which
  sentence it came from. Near 0 means collapse; at most about log(number of sentences).
- **AU**, active units: how many of the latent dimensions change with the sentence (variance of their mean over
  the split above {AU_THRESHOLD:g}). 0 means collapse. AU counts what the encoder does, not whether the decoder
  listens: read it with the next column.
- **use of z**: does the decoder read the code? The mean, over the words of "{EXAMPLE}" and 20 draws, of how far
  (KL, nats) the next-word prediction moves when the sentence's own code is swapped for a draw from the prior (as in
  "Does the decoder use z?" below). Near 0: the decoder ignores z, whatever AU says.

A collapsed model's interpolations are flat (every point decodes to the same sentence, see Interpolate), its prior
samples repeat, and its neighbours say nothing about what the decoder uses. "over seeds" gives NLL, KL, MI and AU
as mean ± sd over the runs of the model's setting that differ only in their seed, where there are several (the model
shown is the run with the median validation NLL). "train min" is the training time in minutes; the curves below
are per epoch, from each checkpoint's training log. "KL per dimension" splits the KL over the latent dimensions on
the first {KL_SENTENCES:,} validation sentences: a different statistic from AU, so its count of dimensions
above {AU_THRESHOLD:g} nats
can differ from AU.
"""


def spread(seeds) -> str | None:
    """The NLL, KL, MI and AU of a bundle's setting over its seeds (metrics.json's "seeds", written by
    bench.seeds), in a line; None when the bundle has one run of its setting."""
    if not isinstance(seeds, dict) or not isinstance(seeds.get("runs"), int) or seeds["runs"] < 2:
        return None
    parts = []
    for key, label, digits in (("nll", "NLL", 2), ("kl", "KL", 2), ("mi", "MI", 2), ("au", "AU", 1)):
        mean, sd = seeds.get(f"{key}_mean"), seeds.get(f"{key}_sd")
        if isinstance(mean, (int, float)) and isinstance(sd, (int, float)):
            parts.append(f"{label} {mean:.{digits}f} ± {sd:.{digits}f}")
    return f"{' · '.join(parts)} ({seeds['runs']} seeds)" if parts else None


def figures_table(ctx: Context) -> pd.DataFrame:
    """NLL, KL, MI, AU (test split, as shipped when known) of every checkpoint found."""
    rows = []
    for name in ctx.names():
        row = {"checkpoint": ctx.label(name)}
        try:
            m = ctx.model(name).metrics
            test = m.get("shipped_test") or m.get("test") or {}
            row.update({f.short: test.get(f.key) for f in catalogue.metrics(catalogue.COLLAPSE)})
            row["use of z"] = ctx.memo(("use of z", ctx.model(name).fingerprint), lambda: ctx.model(name).use_of_z())
            row["over seeds (mean ± sd)"] = spread(m.get("seeds"))
            row.update(
                {
                    "epochs": m.get("epochs"),
                    "train min": round(m["train_seconds"] / 60, 1) if "train_seconds" in m else None,
                }
            )
        except VaeMineError as e:
            row["NLL"] = None
            row["note"] = ctx.public(str(e))
        rows.append(row)
    df = pd.DataFrame(rows)
    return df.round(2) if len(df) else pd.DataFrame({"checkpoint": ["no checkpoints found"]})


AXES = {"epoch": "epoch", "elapsed": "seconds since the lab started"}


def verdict(lines: list[dict]) -> str:
    """A model's state at its last lab epoch, in words: collapsed or using z."""
    last = lines[-1]
    figures = f"KL {last['val_kl']:.2f}, MI {last['val_mi']:.2f}, AU {last['val_au']}"
    if last["val_mi"] < 0.05 and last["val_au"] == 0:
        return f"collapsed ({figures}): its codes say nothing about the sentence"
    return f"uses z ({figures})"


def curves(logs: dict[str, list[dict]], x: str = "epoch", title: str = "") -> go.Figure:
    fig = make_subplots(rows=2, cols=2, subplot_titles=[t for _, t in CURVES])
    palette = ["#2a7de1", "#e1552a", "#2aa876", "#8e44ad", "#f1c40f", "#7f8c8d"]
    for i, (label, lines) in enumerate(logs.items()):
        for j, (key, _) in enumerate(CURVES):
            pts = [(ln[x], ln[key]) for ln in lines if key in ln and x in ln]
            if not pts:
                continue
            xs, ys = zip(*pts)
            fig.add_trace(
                go.Scatter(
                    x=xs,
                    y=ys,
                    mode="lines+markers",
                    name=esc(label),
                    legendgroup=label,
                    showlegend=j == 0,
                    line=dict(color=palette[i % len(palette)]),
                ),
                row=j // 2 + 1,
                col=j % 2 + 1,
            )
    fig.update_layout(height=520, title=dict(text=esc(title)), margin=dict(l=10, r=10, t=70, b=10))
    fig.update_xaxes(title_text=AXES.get(x, x))
    return fig


def training_curves(ctx: Context) -> go.Figure:
    logs = {}
    for name in ctx.names():
        try:
            logs[ctx.label(name)] = ctx.model(name).train_log()
        except VaeMineError:
            continue
    return curves(logs, title="training curves of every checkpoint (train_log.jsonl)")


def kl_per_dimension(ctx: Context, names) -> tuple[go.Figure | None, str]:
    """Mean KL(q(z_d|x) || N(0,1)) of each dimension over validation sentences, per model."""
    fig = go.Figure()
    notes = []
    for name in names:

        def mean_kl(model):
            sentences = ctx.sentences(model, "valid", KL_SENTENCES)  # the same for every visitor: computed once
            return ctx.memo(
                ("kl per dimension", model.fingerprint, len(sentences)),
                lambda: model.kl(sentences, per_dimension=True).mean(0),
            ), len(sentences)

        result, err = for_model(ctx, name, mean_kl)
        if err:
            notes.append(f"{esc(ctx.title(name))}: {err}")
            continue
        kl, n = result
        fig.add_trace(go.Bar(x=np.arange(len(kl)), y=kl, name=esc(ctx.title(name))))
        notes.append(
            f"{esc(ctx.title(name))}: total KL {kl.sum():.2f} nats over {n} validation "
            f"sentences; {int((kl > AU_THRESHOLD).sum())} dimensions above {AU_THRESHOLD} nats"
        )
    if not fig.data:
        return None, page("<br>".join(notes))
    fig.update_layout(
        barmode="group",
        height=320,
        title="KL per latent dimension",
        xaxis_title="dimension",
        yaxis_title="nats",
        margin=dict(l=10, r=10, t=50, b=10),
    )
    return fig, page("<br>".join(notes))


DECODER_USE = (
    "### Does the decoder use z?\n"
    "The decoder reads your sentence word by word, once with the sentence's own code and once with "
    "another: a draw from the prior, and the zero vector (the prior's mean). Each number is how much the "
    "next-word prediction changes, in nats (KL divergence). Near 0 at every word: the decoder ignores z, "
    "which is posterior collapse seen from the decoder's side."
)


def decoder_use(ctx: Context, left: str, right: str, text: str) -> str:
    sentence, several = first_line(text)

    def panel(model) -> str:
        prepared = model.prepare([sentence])  # tokenised once
        r = model.decoder_use_of_z(prepared[0], seed=0)
        use_verdict = (
            "the decoder ignores z"
            if r["mean_prior"] < 0.05
            else "the decoder reads z a little"
            if r["mean_prior"] < 0.5
            else "the decoder uses z"
        )
        rows = [[esc(w), f"{p:.3f}", f"{z:.3f}"] for w, p, z in zip(r["words"], r["prior"], r["zero"])]
        return (
            input_notes(model, prepared)
            + message(
                f"mean per word: {r['mean_prior']:.3f} nats against a prior draw, {r['mean_zero']:.3f} "
                f"against z = 0: {use_verdict}"
            )
            + table(
                ["next word", "KL, own z vs a prior draw (seed 0)", "KL, own z vs z = 0"],
                rows,
                f"decoder-use-{model.path.name}",
            )
        )

    return page(several + per_model(ctx, [left, right], panel))


REPLAY = (
    "### Training replay\n"
    "The codes (posterior means) of the probe sentences (the first validation sentences, as many as the run's "
    "probe_sentences setting), saved after training epochs, drawn in one "
    "fixed 2-D projection (PCA fitted on the last saved epoch; axes at least ±1, the prior's standard "
    "deviation). Move a model's epoch slider and its points are redrawn as they stood after that epoch: a "
    "model that uses z spreads its sentences out; a collapsing one shrinks them onto the centre, the prior's mean."
)


def replay_figure(coords: np.ndarray, reach: float, sentences: list[str] | None, title: str) -> go.Figure:
    """The probe set's codes after one epoch, in axes fixed over the whole replay (±reach)."""
    text = [esc(s) for s in sentences] if sentences else None
    fig = go.Figure(
        go.Scatter(
            x=coords[:, 0],
            y=coords[:, 1],
            mode="markers",
            text=text,
            marker=dict(size=5, color="#2a7de1"),
            hovertemplate="%{text}<extra></extra>" if text else "(%{x:.2f}, %{y:.2f})<extra></extra>",
        )
    )
    fig.update_layout(
        title=dict(text=esc(title)),
        height=440,
        margin=dict(l=10, r=10, t=50, b=10),
        xaxis=dict(range=[-reach, reach], title="PC 1"),
        yaxis=dict(range=[-reach, reach], title="PC 2"),
    )
    return fig


def saved_epoch(epochs: np.ndarray, epoch) -> int:
    """The index of the saved epoch to draw: the last for None, else the latest saved at or before
    `epoch` (a whole number within the saved range; InputError otherwise)."""
    if epoch is None:
        return len(epochs) - 1
    first, last = int(epochs[0]), int(epochs[-1])
    try:
        number = float(epoch)
    except (TypeError, ValueError):
        number = float("nan")
    if not (first <= number <= last) or number != int(number):
        raise InputError(f"epoch must be a whole number between {first} and {last}; got {str(epoch)[:40]!r}")
    return int(np.searchsorted(epochs, int(number), side="right")) - 1


def training_replay(ctx: Context, left: str, right: str, left_epoch=None, right_epoch=None):
    """[left figure, right figure, left slider, right slider, status html]: each model's probe codes
    after the chosen epoch (default: the last saved), its slider spanning the saved epochs."""
    figures, notes, sliders = [], [], []
    for name, epoch in ((left, left_epoch), (right, right_epoch)):

        def replay(model):
            found = model.training_replay()
            if found is None:
                return None, "this bundle saved no posterior means during training (it predates the probe set)", None
            epochs, coords = found
            i = saved_epoch(epochs, epoch)
            try:
                sentences, unread = ctx.sentences(model, "valid", coords.shape[1]), ""
            except Unavailable as e:  # the points are drawn without their sentences, and the page says why
                sentences, unread = None, f"; no sentences on hover: {ctx.public(str(e))}"
            reach = max(1.0, float(np.abs(coords).max()) * 1.05)
            spread = [float(np.abs(c).max()) for c in coords]
            slider = gr.update(
                minimum=int(epochs[0]),
                maximum=int(epochs[-1]),
                value=int(epochs[i]),
                step=1,
                visible=True,
                interactive=len(epochs) > 1,
                label=f"epoch ({ctx.title(name)})",
            )
            return (
                replay_figure(coords[i], reach, sentences, f"{ctx.title(name)} · after epoch {int(epochs[i])}"),
                f"{len(epochs)} saved epoch{'s' * (len(epochs) != 1)} ({int(epochs[0])} to "
                f"{int(epochs[-1])}); the codes reach "
                f"{spread[i]:.2f} from the centre after epoch {int(epochs[i])} (first saved {spread[0]:.2f}, "
                f"last {spread[-1]:.2f})"
                + (
                    f"; collapsed before its first saved epoch: after epoch {int(epochs[0])} its codes were "
                    f"already within {spread[0]:.2f} of the centre, a dot at the prior's scale"
                    if spread[0] < DOT
                    else ""
                )
                + unread,
                slider,
            )

        result, err = for_model(ctx, name, replay)
        figures.append(result[0] if result else None)
        notes.append(f"{esc(ctx.title(name))}: {err or esc(result[1])}")
        sliders.append(result[2] if result and result[2] is not None else gr.update(visible=False))
    return [*figures, *sliders, page("<br>".join(notes))]


class Lab:
    """One live lab at a time for the whole server (it takes the CPU). Only the browser session
    that started it can stop it; the others are told that one is running and for how long. After a
    lab ends, the address that ran it waits as long as the lab took before starting another, so
    no visitor (however many sessions it opens) holds the CPU more than half the time."""

    def __init__(self, ctx: Context):
        self.ctx, self.lock, self.stop = ctx, threading.Lock(), threading.Event()
        self.owner: str | None = None
        self.started, self.seconds = 0.0, 0.0
        self.free_at: dict[str, float] = {}  # visitor address -> when it may start its next lab

    def running(self) -> str:
        return (
            f"a lab started by another browser has been running for {time.monotonic() - self.started:.0f} s "
            f"(of at most {self.seconds:.0f} s)"
        )

    def run(self, corpus: str, seconds: float, sentences: int, session: str | None = None, visitor: str | None = None):
        """Stream (curves, status) after each epoch of the lab."""
        seconds, sentences = check("lab_seconds", seconds), check("lab_sentences", sentences)
        wait = self.free_at.get(visitor or "", 0.0) - time.monotonic()
        if wait > 0:
            yield (
                None,
                page(
                    message(
                        f"your last lab ended just now: you can start another in {wait:.0f} s "
                        "(each visitor waits as long as its last lab ran, so others get their turn)"
                    )
                ),
            )
            return
        if not self.lock.acquire(blocking=False):
            mine = session is not None and session == self.owner
            yield (
                None,
                page(
                    message(
                        "your lab is still running: wait for it or press Stop"
                        if mine
                        else self.running() + "; one lab runs at a time, try again when it ends"
                    )
                ),
            )
            return
        self.stop.clear()
        self.owner, self.started, self.seconds = session, time.monotonic(), seconds
        logs: dict[str, list[dict]] = {}
        try:
            lab = LabConfig(corpus=corpus, seconds=seconds, max_train=sentences)
            yield None, page(message(f"reading {corpus} and building the models ..."))
            for line in live_training(lab, self.ctx.data_dir, self.stop):
                logs.setdefault(line["model"], []).append(line)
                done = ", ".join(
                    f"{m}: epoch {v[-1]['epoch']}, KL {v[-1]['val_kl']:.2f}, MI {v[-1]['val_mi']:.2f}"
                    for m, v in logs.items()
                )
                yield (
                    curves(logs, "elapsed", f"tiny models on {sentences} {corpus} sentences"),
                    page(message(f"training ({line['elapsed']:.0f} / {seconds:.0f} s) · {done}")),
                )
            if self.stop.is_set():
                why = "stopped"
            elif logs and all(v[-1]["done"] for v in logs.values()):
                why = "every learning-rate schedule ran out"
            else:
                why = "time is up"
            yield (
                curves(logs, "elapsed", f"tiny models on {sentences} {corpus} sentences") if logs else None,
                page(
                    message(
                        f"finished ({why}) after {time.monotonic() - self.started:.0f} s · "
                        + " · ".join(f"{m}, {len(v)} epoch{'s' * (len(v) != 1)}: {verdict(v)}" for m, v in logs.items())
                    )
                ),
            )
        except VaeMineError as e:
            yield None, page(message(self.ctx.public(str(e)), error=True))
        finally:
            now = time.monotonic()
            self.free_at = {v: t for v, t in self.free_at.items() if t > now}
            self.free_at[visitor or ""] = now + (now - self.started)
            self.owner = None
            self.lock.release()

    def request_stop(self, session: str | None = None, visitor: str | None = None) -> str:
        if not self.lock.locked():
            return page(message("no lab is running"))
        if session != self.owner:
            return page(message(self.running() + "; only the browser that started it can stop it", error=True))
        self.stop.set()
        return page(message("stopping after the epoch in progress ..."))


def build(ctx: Context, pair) -> None:
    gr.Markdown(EXPLAINED, elem_classes="vm-intro")
    gr.Dataframe(
        value=figures_table(ctx),
        label="test figures per checkpoint (NLL, KL in nats per sentence)",
        interactive=False,
        elem_id="col-table",
    )
    gr.Plot(value=training_curves(ctx), elem_id="col-curves")
    kl_go = gr.Button("Show KL per dimension (left and right models)", variant="secondary", elem_id="kl-go")
    kl_status = gr.HTML()
    kl_plot = gr.Plot(elem_id="kl-plot")
    wire(
        ctx,
        kl_go.click,
        lambda left, right: kl_per_dimension(ctx, [left, right]),
        {"left": pair[0], "right": pair[1]},
        [kl_plot, kl_status],
        "kl_per_dimension",
    )

    gr.Markdown(DECODER_USE)
    use_text = gr.Textbox(label="sentence", value="a dog runs through the grass .", elem_id="use-text")
    use_go = gr.Button("Compare the decoder's predictions", elem_id="use-go")
    use_out = gr.HTML(elem_id="use-out")
    wire(
        ctx,
        [use_go.click, use_text.submit],
        lambda **a: decoder_use(ctx, **a),
        {"left": pair[0], "right": pair[1], "text": use_text},
        use_out,
        "decoder_use",
    )

    gr.Markdown(REPLAY)
    replay_go = gr.Button("Replay training (left and right models)", elem_id="replay-go")
    replay_status = gr.HTML(elem_id="replay-status")
    with gr.Row():
        with gr.Column():
            left_epoch = gr.Slider(
                1, 2, value=2, step=1, label="epoch (left)", visible=False, elem_id="replay-left-epoch"
            )
            replay_left = gr.Plot(elem_id="replay-left")
        with gr.Column():
            right_epoch = gr.Slider(
                1, 2, value=2, step=1, label="epoch (right)", visible=False, elem_id="replay-right-epoch"
            )
            replay_right = gr.Plot(elem_id="replay-right")
    replay_inputs = {"left": pair[0], "right": pair[1], "left_epoch": left_epoch, "right_epoch": right_epoch}
    replay_outputs = [replay_left, replay_right, left_epoch, right_epoch, replay_status]  # the status last (wire)
    wire(
        ctx,
        replay_go.click,
        lambda left, right, **_: training_replay(ctx, left, right),
        replay_inputs,
        replay_outputs,
        "training_replay",
    )
    wire(
        ctx,
        [left_epoch.release, right_epoch.release],
        lambda **a: training_replay(ctx, **a),
        replay_inputs,
        replay_outputs,
        "training_replay_epoch",
    )

    gr.Markdown(
        f"### Live lab: a tiny plain VAE and a tiny VAE-MINE (alpha {LabConfig.alpha:g}), trained side by side on "
        f"this CPU\nThe two differ only in VAE-MINE's MI term (estimated as the shipped right-hand model does, beyond "
        f"the paper: {departure_text(dict(LabConfig.mine_settings))}). Within a minute the plain VAE's KL, MI and "
        "active units fall to 0 (collapse) while VAE-MINE keeps its codes informative. One lab runs at a "
        "time for everyone; after yours ends, you can start the next one after as long again."
    )
    lab = Lab(ctx)
    with gr.Row():
        trainable = ctx.lab_corpora()
        corpus = gr.Dropdown(
            trainable,
            value=LabConfig.corpus if LabConfig.corpus in trainable else next(iter(trainable), None),
            label="corpus",
            elem_id="lab-corpus",
            info="the data folder's corpora with a training split"
            if trainable
            else "none here: the data folder holds no corpus with a training split (python -m core.data get ptb)",
        )
        seconds = number_box("lab_seconds", LabConfig.seconds, label="seconds", elem_id="lab-seconds")
        sentences = number_box(
            "lab_sentences", LabConfig.max_train, label="training sentences", elem_id="lab-sentences"
        )
    with gr.Row():
        start = gr.Button("Start lab", variant="primary", elem_id="lab-go")
        stop = gr.Button("Stop", variant="stop", elem_id="lab-stop")
    lab_status = gr.HTML(elem_id="lab-status")
    lab_plot = gr.Plot(elem_id="lab-plot")
    wire(
        ctx,
        start.click,
        lab.run,
        {"corpus": corpus, "seconds": seconds, "sentences": sentences},
        [lab_plot, lab_status],
        "lab",
        session=True,
        concurrency_id="lab",
    )
    wire(ctx, stop.click, lab.request_stop, {}, lab_status, "lab_stop", session=True, concurrency_id="lab-stop")
