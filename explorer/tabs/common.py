"""What every tab shares: one helper that wires a button to its function behind the error
boundary, the per-model columns, number boxes and decoding controls with core's ranges, and
reading a text box and reporting what the model made of it."""

from __future__ import annotations

import ctypes
import inspect
import logging
import time
from collections.abc import Callable, Sequence

import gradio as gr

from core import DECODING, LIMITS, STRATEGIES, InputError, VaeMineError

from ..context import Context
from ..render import esc, message, page, side_by_side

log = logging.getLogger(__name__)
MAX_LINES = 20


def for_model(ctx: Context, name: str | None, fn: Callable) -> tuple[object, str | None]:
    """(fn(model), None), or (None, message html) when the model or fn fails: one model's failure
    stays in its own column."""
    try:
        return fn(ctx.model(name)), None
    except VaeMineError as e:
        return None, message(ctx.public(str(e)), error=True)
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


def _all_lines(text: str | None, what: str) -> list[str]:
    if text is not None and not isinstance(text, str):
        raise InputError(f"{what} must be text")
    lines = [ln for ln in (text or "").splitlines() if ln.strip()]
    if not lines:
        raise InputError(f"enter {what} first")
    return lines


def lines_of(text: str | None, what: str = "a sentence") -> list[str]:
    """Non-empty lines of a text box; InputError (shown as a message) when there are none."""
    return _all_lines(text, what)[:MAX_LINES]


def first_line(text: str | None, what: str = "a sentence") -> tuple[str, str]:
    """(the first non-empty line of a single-sentence box, a note saying so when it held more; "" if not)."""
    lines = _all_lines(text, what)
    note = (
        f'<p class="vm-dim vm-note">{esc(what)}: the box holds {len(lines):,} lines; only the first was used</p>'
        if len(lines) > 1
        else ""
    )
    return lines[0], note


def counting(progress, what: str, start: float = 0.0, share: float = 1.0):
    """A `(done, total)` callback for a long loop that moves `progress` from `start` by `share` and
    says what it does with the time left at the rate so far ("about 12 s left")."""
    began = time.monotonic()

    def report(done: int, total: int) -> None:
        if progress is None:
            return
        spent = time.monotonic() - began
        left = f", about {spent * (total - done) / done:.0f} s left" if done and done < total else ""
        progress(start + share * done / total, desc=f"{what} ({done:,}/{total:,}{left})")

    return report


def shown_text(p) -> str:
    """A prepared sentence as the model read it (cut input ends in "…"), escaped: never the raw
    input, which may be 10,000 characters."""
    return esc(" ".join(p.tokens)) + (" …" if p.truncated else "")


def input_notes(model, prepared: Sequence, labels: Sequence[str] | None = None) -> str:
    """What the model made of each text box's sentence (`model.prepare`'s result, which the caller
    has anyway): the words read as <unk> and the words cut beyond its maximum length. Every tab
    reports its input this one way."""
    notes = []
    for i, p in enumerate(prepared):
        where = f"{labels[i]}: " if labels else ""
        if p.unknown:
            notes.append(f"{esc(where)}read as &lt;unk&gt;: {esc(', '.join(p.unknown))}")
        if p.truncated:
            notes.append(f"{esc(where)}{p.truncated:,} words beyond the model's {model.max_len} were cut")
    return "".join(f'<p class="vm-dim vm-note">{n}</p>' for n in notes)


def many_notes(model, prepared: Sequence, what: str) -> str:
    """input_notes for a list of many sentences (yours, up to 10,000): one line each for the words
    read as <unk> (the first 20) and the sentences cut, not a line per sentence."""
    unknown = sorted({w for p in prepared for w in p.unknown})
    cut = sum(1 for p in prepared if p.truncated)
    notes = (
        [
            f"{esc(what)}: {len(unknown):,} distinct word{'s' * (len(unknown) != 1)} read as "
            f"&lt;unk&gt;: {esc(', '.join(unknown[:20]))}" + (" …" if len(unknown) > 20 else "")
        ]
        if unknown
        else []
    )
    notes += [f"{esc(what)}: {cut:,} sentences longer than the model's {model.max_len} words were cut"] if cut else []
    return "".join(f'<p class="vm-dim vm-note">{n}</p>' for n in notes)


def guarded(
    fn: Callable, n_outputs: int = 1, redact: Callable[[str], str] = str, vet: Callable[[dict], dict] | None = None
) -> Callable:
    """fn behind the error boundary: errors about the whole request (empty text, bad numbers) and
    bugs become a message in the last output (the status HTML), the others empty; never a
    traceback in the page. `vet` rewrites or refuses the keyword arguments first
    (Context.vet_arguments), `redact` a message before it is shown (Context.public).
    Works for generator functions (streamed outputs) too."""

    def call(args: tuple, kwargs: dict):
        return fn(*args, **(vet(kwargs) if vet else kwargs))

    def failure(e: Exception):
        if isinstance(e, VaeMineError):
            html = page(message(redact(str(e)), error=True))
        else:
            log.exception("%s failed", fn.__name__)
            html = page(message(f"internal error ({type(e).__name__}); see the server log", error=True))
        return html if n_outputs == 1 else (*[None] * (n_outputs - 1), html)

    if inspect.isgeneratorfunction(fn):

        def wrapper(*args, **kwargs):
            try:
                yield from call(args, kwargs)
            except Exception as e:
                yield failure(e)
    else:

        def wrapper(*args, **kwargs):
            try:
                return call(args, kwargs)
            except Exception as e:
                return failure(e)

    wrapper.__name__, wrapper.__doc__ = fn.__name__, fn.__doc__
    return wrapper


def wire(
    ctx: Context,
    triggers,
    fn: Callable,
    inputs: dict[str, gr.components.Component],
    outputs,
    api_name: str | bool,
    progress: bool = False,
    session: bool = False,
    concurrency_id: str = "explorer",
) -> None:
    """Run fn(**{name: value}) behind the error boundary when any trigger fires. The API endpoint
    takes the inputs by these names. Values reach fn as sent, unchecked by Gradio (which would snap
    or round numbers silently): arguments that name a checkpoint, corpus or split are checked here
    (Context.vet_arguments, before anything is opened), the rest by core, which says what is
    allowed; an input a call left out arrives as None. With progress, fn also
    gets `progress(fraction, desc)`; with session, `session`, the id of the browser (or client) that called,
    and `visitor`, its network address. When the inputs hold the model pair, switching a model clears the
    outputs."""
    outputs = outputs if isinstance(outputs, list) else [outputs]
    safe = guarded(fn, len(outputs), ctx.public, ctx.vet_arguments)
    names = list(inputs)

    params = [inspect.Parameter(n, inspect.Parameter.POSITIONAL_OR_KEYWORD) for n in names]
    if progress:  # Gradio passes these special arguments by position, after the inputs
        params.append(inspect.Parameter("progress_bar", inspect.Parameter.POSITIONAL_OR_KEYWORD, default=gr.Progress()))
    if session:
        params.append(inspect.Parameter("request", inspect.Parameter.POSITIONAL_OR_KEYWORD, default=None))

    def arguments(args) -> dict:
        kwargs, extra = {n: None for n in names} | dict(zip(names, args)), list(args[len(names) :])
        if progress:
            kwargs["progress"] = extra.pop(0) if extra else None
        if session:
            request = extra.pop(0) if extra else None
            kwargs["session"] = getattr(request, "session_hash", None)
            kwargs["visitor"] = getattr(getattr(request, "client", None), "host", None)
        return kwargs

    if inspect.isgeneratorfunction(fn):

        def target(*args):
            try:
                yield from safe(**arguments(args))
            finally:
                release_memory()
    else:

        def target(*args):
            try:
                return safe(**arguments(args))
            finally:
                release_memory()

    target.__signature__ = inspect.Signature(params)
    target.__annotations__ = {"request": gr.Request} if session else {}
    first = True
    for trigger in triggers if isinstance(triggers, (list, tuple)) else [triggers]:
        # one queue for every tab's work (`concurrency_id`, its limit app.py's default_concurrency_limit):
        # answers run 4 at a time on the whole server, not that many per endpoint, so memory and the
        # cores are shared rather than oversubscribed (the lab and its Stop have queues of their own)
        trigger(
            target,
            list(inputs.values()),
            outputs,
            api_name=api_name if first else False,
            preprocess=False,
            concurrency_id=concurrency_id,
        )
        first = False
    pair = [inputs[n] for n in ("left", "right") if n in inputs]
    if pair:
        stale = page(message("the models changed: press the button again for their results"))
        gr.on(
            [c.input for c in pair],
            lambda: (*[None] * (len(outputs) - 1), stale),
            None,
            outputs,
            api_name=False,
            queue=False,
        )


def _libc_trim():
    try:
        return ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):  # not glibc: nothing to give back this way
        return None


_TRIM = _libc_trim()


def release_memory() -> None:
    """Give the C heap's free pages back to the system after a request (glibc's malloc_trim). The
    requests' threads leave freed memory in glibc's per-thread arenas: without this the server's
    resident size grew by about 70 MiB a visit, none of it live (docs/explorer-memory.md)."""
    if _TRIM is not None:
        _TRIM(0)


def number_box(name: str, value, label: str | None = None, **kwargs) -> gr.Number:
    """A number box for the argument LIMITS[name], its allowed range in the label. A box, not a
    slider: Gradio's slider snaps out-of-range input to its ends, where core should refuse it."""
    limit = LIMITS[name]
    low, high = limit.ends
    return gr.Number(
        value=value,
        minimum=limit.low,
        maximum=limit.high,
        step=1 if limit.whole else 0.1,
        label=f"{label or limit.label} ({low}–{high})",
        **kwargs,
    )


def decoding_controls(prefix: str) -> dict[str, gr.components.Component]:
    """The decoding settings every decoding tab offers, keyed by the tab functions' parameter names
    (element ids `{prefix}-strategy` etc., the keys of a shared link); temperature shows only for
    sampling and beam size only for beam search."""
    with gr.Row():
        strategy = gr.Radio(
            list(STRATEGIES),
            value=DECODING.strategy,
            label="decoding",
            elem_classes="vm-strategy",
            elem_id=f"{prefix}-strategy",
        )
        temperature = number_box(
            "temperature",
            DECODING.temperature,
            visible=False,
            elem_classes="vm-temperature",
            elem_id=f"{prefix}-temperature",
        )
        beam = number_box(
            "beam_size", DECODING.beam_size, visible=False, elem_classes="vm-beam", elem_id=f"{prefix}-beam"
        )
        seed = number_box("seed", DECODING.seed, elem_classes="vm-seed", elem_id=f"{prefix}-seed")
    # preprocess off: Gradio's check of a radio value would log a traceback for a bad one sent to this
    # handler's fn_index; any value just hides both boxes
    strategy.change(
        lambda s: (gr.update(visible=s == "sample"), gr.update(visible=s == "beam")),
        strategy,
        [temperature, beam],
        api_name=False,
        queue=False,
        preprocess=False,
    )
    return {"strategy": strategy, "temperature": temperature, "beam_size": beam, "seed": seed}
