"""ASGI middleware in front of Gradio's routes: what the server refuses before Gradio sees it."""

from __future__ import annotations

from .share import MAX_LINK, TOO_LONG


async def _answer(send, status: int, text: str, headers: list | None = None) -> None:
    body = text.encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": (headers or [])
            + [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


class LinkGuard:
    """A page request whose query is over MAX_LINK bytes is redirected to the page with a short
    query saying so (Gradio's page code fails on very long URLs with an HTTP 500). Only the page:
    Gradio's own calls carry the page's query too, and the page keeps it short (static/share.js)."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if (
            scope["type"] == "http"
            and scope.get("method") == "GET"
            and scope.get("path", "/") in ("/", "")
            and len(scope.get("query_string", b"")) > MAX_LINK
        ):
            await _answer(send, 303, "", [(b"location", f"/?{TOO_LONG}=1".encode())])
            return
        await self.app(scope, receive, send)


class RouteGuard:
    """What the explorer never serves: uploads (the page reads a sentence file in the browser, so
    Gradio's upload route and its component server, which reads every part of a multipart body into
    memory first, are closed), writes from another site's page (a POST whose Origin is not this
    server: a form on any page the operator visits could otherwise send one), and over-long /config
    queries (414, where Gradio answered 500)."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path, method = scope.get("path", ""), scope.get("method")
        headers = dict(scope.get("headers") or [])
        if method == "POST" and (path.rstrip("/").endswith("/upload") or "/component_server" in path):
            await _answer(send, 403, "this explorer takes no uploads: a sentence file is read in your browser")
            return
        origin, host = headers.get(b"origin"), headers.get(b"host")
        if method not in ("GET", "HEAD", "OPTIONS") and origin and origin.split(b"://", 1)[-1] != host:
            await _answer(send, 403, "requests from another site's page are refused")
            return
        if path.rstrip("/").endswith("/config") and len(scope.get("query_string", b"")) > MAX_LINK:
            await _answer(send, 414, f"the query is over {MAX_LINK:,} bytes")
            return
        await self.app(scope, receive, send)
