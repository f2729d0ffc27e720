"""The page's own script, beside Gradio's (static/page.js): it links the compare view's two maps (a
selection or a hover in one shows the same sentences in the other), turns a click on a latent map
into the place to decode (marking it on the map), and reads a visitor's .txt upload
in the browser, into the text box it belongs to, so the file never reaches the server's disk."""

from __future__ import annotations

import json
from pathlib import Path

from core import OWN_MAX_BYTES, OWN_MAX_LINES

from .render import esc


def upload_control(target: str) -> str:
    """HTML of a file picker whose text goes into the text box with elem_id `target`."""
    return (
        f'<div class="vm-upload-row"><label class="vm-upload">upload a .txt file (one sentence a line; at most '
        f'{OWN_MAX_LINES:,} lines, {OWN_MAX_BYTES // 2**20} MB): <input type="file" accept=".txt,text/plain" '
        f'class="vm-upload-input" data-target="{esc(target)}" id="{esc(target)}-file"></label> '
        f'<span class="vm-upload-msg" id="{esc(target)}-file-msg" role="status"></span></div>'
    )


STATIC = Path(__file__).parent / "static"
# The compare view's element ids, which its tab builds and the page's script links (one home for both).
COMPARE = {"map": "cmp-map", "selected": "cmp-ids", "list": "cmp-list"}
# The latent map's two maps and its place box and button: a click on a map fills the box and presses it.
LATENT = {"maps": ["map-left", "map-right"], "place": "map-place", "go": "map-place-go"}


def script(name: str, **values) -> str:
    """The page script static/<name>.js, its leading comment lines dropped and each `/*key*/null`
    filled with the JSON of values[key] (every placeholder must be given, and only those)."""
    lines = (STATIC / f"{name}.js").read_text().splitlines()
    text = "\n".join(line for i, line in enumerate(lines) if not (line.startswith("//") and i < 3))
    for key, value in values.items():
        placeholder = f"/*{key}*/null"
        if placeholder not in text:
            raise ValueError(f"static/{name}.js has no {placeholder}")
        text = text.replace(placeholder, json.dumps(value))
    if "*/null" in text:
        raise ValueError(f"static/{name}.js: a placeholder was left unfilled")
    return text


SCRIPT = script("page", caps={"bytes": OWN_MAX_BYTES, "lines": OWN_MAX_LINES}, compare=COMPARE, latent=LATENT)
