"""ASGI middleware in front of Gradio's routes: what the server refuses before Gradio sees it."""
from __future__ import annotations

import time
from collections import defaultdict, deque

from .share import MAX_LINK, TOO_LONG

UPLOADS_PER_MINUTE = 30  # uploads one address may send a minute (Gradio's upload route takes them from anyone)


async def _answer(send, status: int, text: str, headers: list | None = None) -> None:
    body = text.encode()
    await send({"type": "http.response.start", "status": status,
                "headers": (headers or []) + [(b"content-type", b"text/plain; charset=utf-8"),
                                              (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


class LinkGuard:
    """A page request whose query is over MAX_LINK bytes is redirected to the page with a short
    query saying so (Gradio's page code fails on very long URLs with an HTTP 500). Only the page:
    Gradio's own calls carry the page's query too, and the page keeps it short (share.SCRIPT)."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if (scope["type"] == "http" and scope.get("method") == "GET" and scope.get("path", "/") in ("/", "")
                and len(scope.get("query_string", b"")) > MAX_LINK):
            await _answer(send, 303, "", [(b"location", f"/?{TOO_LONG}=1".encode())])
            return
        await self.app(scope, receive, send)


class UploadGuard:
    """At most UPLOADS_PER_MINUTE uploads a minute from one address (429 beyond); their size is
    capped by Gradio's max_file_size (app.py)."""

    def __init__(self, app):
        self.app = app
        self.recent: dict[str, deque] = defaultdict(deque)

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope.get("method") == "POST" and scope.get("path", "").endswith("/upload"):
            who = (scope.get("client") or ("?", 0))[0]
            now, times = time.monotonic(), self.recent[who]
            while times and now - times[0] > 60:
                times.popleft()
            if len(times) >= UPLOADS_PER_MINUTE:
                await _answer(send, 429, f"at most {UPLOADS_PER_MINUTE} uploads a minute; try again shortly")
                return
            times.append(now)
            for idle in [k for k, v in self.recent.items() if not v]:
                del self.recent[idle]
        await self.app(scope, receive, send)
