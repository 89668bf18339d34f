"""Django's APPEND_SLASH: a request without its trailing slash is redirected (GET) or served."""

from __future__ import annotations

from starlette.responses import RedirectResponse
from starlette.routing import Match, Router
from starlette.types import ASGIApp, Receive, Scope, Send

_REDIRECTED_METHODS = {"GET", "HEAD"}


class AppendSlashMiddleware:
    """Route `/x` to `/x/` when only the latter exists, as Django's CommonMiddleware did."""

    def __init__(self, app: ASGIApp, *, router: Router) -> None:
        self.app = app
        self.router = router

    def _matches(self, scope: Scope) -> bool:
        return any(route.matches(scope)[0] is not Match.NONE for route in self.router.routes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Redirect or rewrite slash-less paths that only exist with a slash."""
        path: str = scope.get("path", "")
        if scope["type"] != "http" or path.endswith("/") or self._matches({**scope}):
            await self.app(scope, receive, send)
            return
        slashed = {**scope, "path": path + "/", "raw_path": scope.get("raw_path", b"") + b"/"}
        if not self._matches(slashed):
            await self.app(scope, receive, send)
            return
        if scope["method"] in _REDIRECTED_METHODS:
            query = scope.get("query_string", b"").decode("latin-1")
            location = scope.get("root_path", "") + path + "/" + (f"?{query}" if query else "")
            await RedirectResponse(location, status_code=301)(scope, receive, send)
            return
        await self.app(slashed, receive, send)
