"""A request layer refusing text PostgreSQL cannot store: NUL characters, unpaired surrogates.

PostgreSQL refuses NUL in text and jsonb, and asyncpg cannot encode a lone surrogate to
UTF-8: either reaching the database would be a 500. Both apps install this one ASGI
layer, so no route, schema or third-party router (FastAPI-Users' login form) can let
such text through. It answers as DRF's ProhibitNullCharactersValidator and
ProhibitSurrogateCharactersValidator did: 400 `{"field": ["..."]}`.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import parse_qsl

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

NULL_MESSAGE = "Null characters are not allowed."
_SURROGATE = re.compile("[\ud800-\udfff]")
_CHECKED_BODIES = ("application/json", "application/x-www-form-urlencoded")
NON_FIELD = "non_field_errors"


def text_problem(value: str) -> str | None:
    """DRF's message for text PostgreSQL cannot store, or None when it is fine."""
    if "\x00" in value:
        return NULL_MESSAGE
    found = _SURROGATE.search(value)
    if found is not None:
        return f"Surrogate characters are not allowed: U+{ord(found.group()):X}."
    return None


def _problem_in(value: Any) -> str | None:
    """The first problem anywhere in a decoded JSON value (keys included)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            problem = text_problem(item)
            if problem is not None:
                return problem
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return None


def json_errors(body: bytes) -> dict[str, list[str]]:
    """Field errors for bad text in a JSON body (empty when it is fine or not JSON at all)."""
    # Only escapes, non-ASCII bytes or NUL can make such text: skip the parse otherwise.
    if b"\\u" not in body and b"\x00" not in body and body.isascii():
        return {}
    try:
        # As FastAPI decodes it (bytes with surrogatepass), so the same strings are checked.
        document = json.loads(body)
    except ValueError:
        return {}
    if isinstance(document, dict):
        errors: dict[str, list[str]] = {}
        for key, value in document.items():
            key_problem = text_problem(key)
            if key_problem is not None:
                errors.setdefault(NON_FIELD, []).append(key_problem)
                continue
            problem = _problem_in(value)
            if problem is not None:
                errors[key] = [problem]
        return errors
    problem = _problem_in(document)
    return {NON_FIELD: [problem]} if problem is not None else {}


def pairs_errors(pairs: list[tuple[str, str]]) -> dict[str, list[str]]:
    """Field errors for bad text among decoded name/value pairs (query or form)."""
    errors: dict[str, list[str]] = {}
    for name, value in pairs:
        problem = text_problem(name) or text_problem(value)
        if problem is not None:
            errors[NON_FIELD if text_problem(name) else name] = [problem]
    return errors


def _decoded_pairs(raw: bytes) -> list[tuple[str, str]]:
    return parse_qsl(raw.decode("latin-1"), keep_blank_values=True)


class TextGuardMiddleware:
    """Answer 400 to a request whose path, query or text body holds NUL or lone surrogates."""

    def __init__(self, app: ASGIApp, *, check_multipart: bool = False) -> None:
        self.app = app
        # Only for an app without file uploads: its multipart bodies are small form fields.
        self.check_multipart = check_multipart

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check the request's text before the app sees it."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path_problem = text_problem(scope.get("path", ""))
        if path_problem is not None:
            await JSONResponse({"detail": path_problem}, status_code=400)(scope, receive, send)
            return
        errors = pairs_errors(_decoded_pairs(scope.get("query_string", b"")))
        if errors:
            await JSONResponse(errors, status_code=400)(scope, receive, send)
            return
        content_type = _content_type(scope)
        checked = content_type in _CHECKED_BODIES or (
            self.check_multipart and content_type == "multipart/form-data"
        )
        if not checked:
            await self.app(scope, receive, send)
            return
        body, more = await _read_body(receive)
        if content_type == "application/json":
            errors = json_errors(body)
        elif content_type == "multipart/form-data":
            errors = {NON_FIELD: [NULL_MESSAGE]} if b"\x00" in body else {}
        else:
            errors = pairs_errors(_decoded_pairs(body))
        if errors:
            await JSONResponse(errors, status_code=400)(scope, receive, send)
            return
        await self.app(scope, _replay(body, more, receive), send)


def _content_type(scope: Scope) -> str:
    for name, value in scope.get("headers", []):
        if name == b"content-type":
            return str(value.decode("latin-1").split(";", 1)[0].strip().lower())
    return ""


async def _read_body(receive: Receive) -> tuple[bytes, list[Message]]:
    """The whole body, and any non-body message met on the way (a disconnect)."""
    chunks: list[bytes] = []
    others: list[Message] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            others.append(message)
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks), others


def _replay(body: bytes, others: list[Message], receive: Receive) -> Receive:
    queue: list[Message] = [{"type": "http.request", "body": body, "more_body": False}, *others]

    async def replayed() -> Message:
        if queue:
            return queue.pop(0)
        return await receive()

    return replayed
