"""What every tab shares: one helper that wires a button to its function behind the error
boundary, the per-model columns, the decoding controls, and reading a text box."""
from __future__ import annotations

import inspect
import logging
from typing import Callable, Sequence

import gradio as gr

from core import STRATEGIES, VaeMineError

from ..context import Context
from ..render import message, page, side_by_side

log = logging.getLogger(__name__)
MAX_LINES = 20


def for_model(ctx: Context, name: str | None, fn: Callable) -> tuple[object, str | None]:
    """(fn(model), None), or (None, message html) when the model or fn fails: one model's failure
    stays in its own column."""
    try:
        return fn(ctx.model(name)), None
    except VaeMineError as e:
        return None, message(str(e), error=True)
    except Exception as e:  # a bug: say so in the page, keep the traceback in the server log
        log.exception("%s failed for %s", getattr(fn, "__name__", "panel"), name)
        return None, message(f"internal error ({type(e).__name__}); see the server log", error=True)


def per_model(ctx: Context, names: Sequence[str | None], panel: Callable) -> str:
    """side-by-side HTML of panel(model) for each chosen checkpoint name."""
    panels = []
    for name in names:
        inner, err = for_model(ctx, name, panel)
        panels.append((ctx.title(name), err or inner))
    return side_by_side(panels)


def lines_of(text: str | None, what: str = "a sentence") -> list[str]:
    """Non-empty lines of a text box; VaeMineError (shown as a message) when there are none."""
    lines = [ln for ln in (text or "").splitlines() if ln.strip()]
    if not lines:
        raise VaeMineError(f"enter {what} first")
    return lines[:MAX_LINES]


def guarded(fn: Callable, n_outputs: int = 1) -> Callable:
    """fn behind the error boundary: errors about the whole request (empty text, bad numbers) and
    bugs become a message in the last output (the status HTML), the others empty; never a
    traceback in the page. Works for generator functions (streamed outputs) too."""
    def failure(e: Exception):
        if isinstance(e, VaeMineError):
            html = page(message(str(e), error=True))
        else:
            log.exception("%s failed", fn.__name__)
            html = page(message(f"internal error ({type(e).__name__}); see the server log", error=True))
        return html if n_outputs == 1 else (*[None] * (n_outputs - 1), html)

    if inspect.isgeneratorfunction(fn):
        def wrapper(*args, **kwargs):
            try:
                yield from fn(*args, **kwargs)
            except Exception as e:
                yield failure(e)
    else:
        def wrapper(*args, **kwargs):
            try:
                return fn(*args, **kwargs)
            except Exception as e:
                return failure(e)
    wrapper.__name__, wrapper.__doc__ = fn.__name__, fn.__doc__
    return wrapper


def wire(triggers, fn: Callable, inputs: dict[str, gr.components.Component], outputs, api_name: str | bool,
         progress: bool = False) -> None:
    """Run fn(**{name: value}) behind the error boundary when any trigger fires. The API endpoint
    takes the inputs by these names; with progress, fn also gets `progress(fraction, desc)`."""
    outputs = outputs if isinstance(outputs, list) else [outputs]
    safe = guarded(fn, len(outputs))
    names = list(inputs)

    def handler(*values, progress_bar=None):
        kwargs = dict(zip(names, values))
        return safe(**kwargs, progress=progress_bar) if progress else safe(**kwargs)

    params = [inspect.Parameter(n, inspect.Parameter.POSITIONAL_OR_KEYWORD) for n in names]
    if progress:
        params.append(inspect.Parameter("progress_bar", inspect.Parameter.POSITIONAL_OR_KEYWORD, default=gr.Progress()))
    if inspect.isgeneratorfunction(fn):
        def stream(*values):
            yield from safe(**dict(zip(names, values)))
        stream.__signature__ = inspect.Signature(params)
        target = stream
    else:
        handler.__signature__ = inspect.Signature(params)
        target = handler
    first = True
    for trigger in triggers if isinstance(triggers, (list, tuple)) else [triggers]:
        trigger(target, list(inputs.values()), outputs, api_name=api_name if first else False)
        first = False


def decoding_controls() -> dict[str, gr.components.Component]:
    """The decoding settings every decoding tab offers, keyed by the tab functions' parameter names."""
    with gr.Row():
        strategy = gr.Radio(list(STRATEGIES), value="greedy", label="decoding")
        temperature = gr.Slider(0.1, 2.0, value=1.0, step=0.1, label="temperature (sampling)")
        beam = gr.Slider(1, 10, value=5, step=1, label="beam size")
        seed = gr.Number(value=0, precision=0, label="seed")
    return {"strategy": strategy, "temperature": temperature, "beam_size": beam, "seed": seed}


def decode_options(strategy: str, temperature: float, beam_size: int, seed: int) -> dict:
    """The decoding controls' values as core's decode arguments (core checks them)."""
    if temperature is None or beam_size is None:
        raise VaeMineError("temperature and beam size need a value")
    return {"strategy": strategy, "temperature": float(temperature), "beam_size": int(beam_size), "seed": int(seed or 0)}
