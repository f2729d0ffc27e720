"""A shareable link: the page's state lives in the URL's query (the open tab, the model pair, every input box
with an elem_id, the decoding settings and seeds, and the buttons pressed since the models were chosen), so a
reload or a link sent to someone opens the same view and presses those buttons again, each when its tab is
first shown. The browser keeps the query up to date (client-side handlers only); the server reads it once per
page load and checks every field, so a hand-edited link gets a note, never a broken page."""

from __future__ import annotations

import json
import math
from collections.abc import Collection, Mapping, Sequence

import gradio as gr

from . import browser
from .render import message

SHARED = (gr.Textbox, gr.Number, gr.Radio, gr.Dropdown)
NOT_SHARED = {"share-link", "map-yours", "nb-yours"}  # a visitor's own sentences stay out of links
NOT_RERUN = {
    "lab-go",
    "lab-stop",
    "int-preset",
    "share-button",
}  # the lab trains for a minute: a link must not start it
MAX_TEXT = 5000  # characters of a text box restored from a link
MAX_LINK = 8192  # bytes of a link's query the server reads; a longer one opens the page without it, with a note
TOO_LONG = "link-too-long"  # the query key of that note
MAX_NOTES = 5  # notes listed about a link's bad fields; the rest are counted


def shared_inputs(app: gr.Blocks) -> dict[str, gr.components.Component]:
    """The app's input boxes that have an elem_id, keyed by it (the key a link uses)."""
    return {
        b.elem_id: b for b in app.blocks.values() if isinstance(b, SHARED) and b.elem_id and b.elem_id not in NOT_SHARED
    }


def rerun_buttons(app: gr.Blocks) -> dict[str, gr.Button]:
    """The buttons a link may press again, keyed by elem_id: every one with an elem_id, except the lab's."""
    return {
        b.elem_id: b
        for b in app.blocks.values()
        if isinstance(b, gr.Button) and b.elem_id and b.elem_id not in NOT_RERUN | NOT_SHARED
    }


def _choices(box) -> list[str]:
    return [c[1] if isinstance(c, (tuple, list)) else c for c in (box.choices or [])]


def restore(
    query: Mapping[str, str],
    inputs: Mapping[str, gr.components.Component],
    tabs: Sequence[str],
    buttons: Collection[str],
) -> tuple[str | None, dict[str, object], list[str], list[str]]:
    """(tab to open, {box: value}, buttons to press, notes on the fields left out) from a link's
    query. Numbers out of range are kept (the box shows them and core says what is allowed when the
    button is pressed, as for typed input); what a box cannot hold is left out with a note."""
    tab, values, runs, notes = None, {}, [], []
    for key, raw in query.items():
        if key == TOO_LONG:
            notes.append(f"query was longer than {MAX_LINK:,} bytes and was not restored")
        elif key == "tab":
            if raw in tabs:
                tab = raw
            else:
                notes.append(f"tab {raw[:40]!r} does not exist")
        elif key == "run":
            for button in raw.split(","):
                if button in runs:
                    continue
                if button in buttons:
                    runs.append(button)
                elif button:
                    notes.append(f"button {button[:40]!r} cannot be pressed from a link")
        elif key not in inputs:
            notes.append(f"field {key[:40]!r} is not on this page")
        else:
            box = inputs[key]
            if isinstance(box, gr.Number):
                try:
                    number = float(raw)
                except ValueError:
                    number = math.nan
                if not math.isfinite(number):
                    notes.append(f"{key}: {raw[:40]!r} is not a number")
                    continue
                values[key] = int(number) if number.is_integer() and abs(number) < 2**53 else number
            elif isinstance(box, (gr.Radio, gr.Dropdown)):
                if raw in _choices(box):
                    values[key] = raw
                else:
                    notes.append(f"{key}: {raw[:60]!r} is not one of its choices")
            else:
                if len(raw) > MAX_TEXT:
                    notes.append(f"{key}: only the first {MAX_TEXT:,} characters were kept")
                values[key] = raw[:MAX_TEXT]
    return tab, values, runs, notes


def defaults(inputs: Mapping[str, gr.components.Component], first_tab: str) -> dict[str, object]:
    """What the page shows with no query: fields at these values stay out of the link."""
    return {"tab": first_tab, **{k: b.value for k, b in inputs.items()}}


def wire(
    app: gr.Blocks,
    tabs: gr.Tabs,
    tab_items: Mapping[str, gr.Tab],
    pair,
    link: gr.Textbox,
    link_button: gr.Button,
    note: gr.HTML,
) -> None:
    """Connect the page to its URL: every shared box, tab and button writes the query; loading the
    page reads it (server side, checked) and then presses the recorded buttons."""
    inputs = shared_inputs(app)
    buttons = rerun_buttons(app)
    keys = list(inputs)
    first = next(iter(tab_items))
    runs = gr.Textbox(visible=False)
    for key, box in inputs.items():
        box.change(
            None,
            box,
            None,
            js=f"(v) => window.vmShare && window.vmShare.set({json.dumps(key)}, v)",
            queue=False,
            api_name=False,
        )
    for key, item in tab_items.items():
        item.select(
            None,
            None,
            None,
            js=f"() => window.vmShare && window.vmShare.set('tab', {json.dumps(key)})",
            queue=False,
            api_name=False,
        )
    for key, button in buttons.items():
        button.click(
            None,
            None,
            None,
            js=f"() => window.vmShare && window.vmShare.pressed({json.dumps(key)})",
            queue=False,
            api_name=False,
        )
    for box in pair:  # a user's new model choice clears the results, so the link presses nothing
        box.input(
            None, None, None, js="() => window.vmShare && window.vmShare.modelsChosen()", queue=False, api_name=False
        )
    link_button.click(
        None, None, link, js="() => window.vmShare ? window.vmShare.link() : location.href", queue=False, api_name=False
    )

    def load(request: gr.Request):
        query = dict(request.query_params) if request is not None else {}
        tab, values, pressed, notes = restore(query, inputs, list(tab_items), buttons)
        listed = notes[:MAX_NOTES] + (
            [f"and {len(notes) - MAX_NOTES:,} more fields could not be restored"] if len(notes) > MAX_NOTES else []
        )
        shown = message("This link's " + "; ".join(listed) + ".") if notes else ""
        return (
            gr.Tabs(selected=tab) if tab else gr.skip(),
            *[values.get(k, gr.skip()) for k in keys],
            ",".join(pressed),
            shown,
        )

    script = browser.script("share", defaults=defaults(inputs, first), max_text=MAX_TEXT)  # (static/share.js)
    app.load(None, None, None, js=script, queue=False, api_name=False).then(
        load, None, [tabs, *inputs.values(), runs, note], queue=False, api_name=False
    ).then(None, runs, None, js="(ids) => window.vmShare && window.vmShare.press(ids)", queue=False, api_name=False)
