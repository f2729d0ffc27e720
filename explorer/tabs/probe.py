"""Unit probe (on the Latent map tab): one latent dimension of a sentence's code swept from -3 to +3
standard deviations, each code decoded, to see what the dimension does."""

from __future__ import annotations

import gradio as gr
import numpy as np

from core import AU_THRESHOLD, InputError, active_units, check

from ..context import Context
from ..render import esc, mark_changes, message, page, table
from .common import first_line, input_notes, number_box, per_model, wire

UNITS = [f"most active unit #{r}" for r in range(1, 11)] + ["least active unit"]
PROBE = (
    "### Unit probe: what does one latent dimension do?\n"
    "The sentence is encoded, then one dimension of its code is moved from 3 standard deviations below to 3 above "
    "(the spread of that dimension's posterior means over the training split, or the prior's 1.0 for a dimension "
    "that barely varies) and each code is decoded. An active unit changes something you can name; an inactive "
    "one changes nothing, or only at the extremes the encoder never uses."
)


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
        prepared = model.prepare([sentence])  # tokenised once
        swept = model.sweep_unit(prepared[0], dim, spread, steps)
        rows = [
            [f"{offset:+.1f}", f"{value:+.2f}", mark_changes(swept[k - 1][2] if k else None, text_)]
            for k, (offset, value, text_) in enumerate(swept)
        ]
        note = f"z[{dim}]: variance of its posterior means {var[dim]:.3g} over the training split, " + (
            "an active unit; steps of its standard deviation"
            if active
            else "NOT an active unit; steps of the prior's standard deviation, 1.0"
        )
        state = ctx.code_state(model)
        warning = (
            message(
                f"This model's code is {state.verdict()}. Moving one unit of such a code changes little "
                f"or nothing of what the decoder writes: that is what a collapsed model looks like here."
            )
            if state.collapsed
            else ""
        )
        return (
            warning
            + input_notes(model, prepared)
            + f'<p class="vm-dim">{esc(note)}</p>'
            + table(["sd", f"z[{dim}]", "decoded (greedy; changes highlighted)"], rows, f"unit-probe-{model.path.name}")
        )

    return page(several + per_model(ctx, [left, right], panel))


def build(ctx: Context, pair) -> None:
    gr.Markdown(PROBE)
    with gr.Row():
        probe_text = gr.Textbox(label="sentence", value="a dog runs through the grass .", elem_id="probe-text", scale=3)
        unit = gr.Dropdown(
            UNITS, value=UNITS[0], label="unit (each model's own ranking by variance)", elem_id="probe-unit"
        )
        probe_steps = number_box("steps", 7, label="steps", elem_id="probe-steps")
    probe_go = gr.Button("Sweep the unit", elem_id="probe-go")
    probe_out = gr.HTML(elem_id="probe-out")
    wire(
        ctx,
        [probe_go.click, probe_text.submit],
        lambda **a: unit_probe(ctx, **a),
        {"left": pair[0], "right": pair[1], "text": probe_text, "unit": unit, "steps": probe_steps},
        probe_out,
        "unit_probe",
    )
