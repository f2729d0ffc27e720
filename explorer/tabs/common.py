"""Running one computation per chosen model, with each model's failure kept to its own column."""
from __future__ import annotations

import logging
from typing import Callable, Sequence

import numpy as np

from core import VaeMineError

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


def posterior_kl(mu: np.ndarray, logvar: np.ndarray) -> np.ndarray:
    """KL(q(z_d|x) || N(0, 1)) for each sentence and dimension, [N, z_dim], in nats."""
    return 0.5 * (mu**2 + np.exp(logvar) - 1 - logvar)


def lines_of(text: str | None, what: str = "a sentence") -> list[str]:
    """Non-empty lines of a text box; VaeMineError (shown as a message) when there are none."""
    lines = [ln for ln in (text or "").splitlines() if ln.strip()]
    if not lines:
        raise VaeMineError(f"enter {what} first")
    return lines[:MAX_LINES]


def guarded(fn: Callable[..., str]) -> Callable[..., str]:
    """Turn errors about the whole request (empty text, bad numbers) into a message, not a traceback."""
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except VaeMineError as e:
            return page(message(str(e), error=True))
        except Exception as e:
            log.exception("%s failed", fn.__name__)
            return page(message(f"internal error ({type(e).__name__}); see the server log", error=True))
    wrapper.__name__ = fn.__name__
    wrapper.__doc__ = fn.__doc__
    return wrapper
