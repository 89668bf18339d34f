"""Absolute URLs as the client sees them (behind a proxy too) and DRF's query-param helpers."""

from __future__ import annotations

from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

from fastapi import Request


def _first(value: str | None) -> str | None:
    """The client-side value of a possibly comma-joined forwarded header."""
    if not value:
        return None
    return value.split(",", 1)[0].strip() or None


def absolute_url(request: Request, *, trust_forwarded: bool = True) -> str:
    """The request's full URL, with the scheme and host the client used."""
    url = request.url
    scheme, host = url.scheme, request.headers.get("host") or url.netloc
    if trust_forwarded:
        scheme = _first(request.headers.get("x-forwarded-proto")) or scheme
        host = _first(request.headers.get("x-forwarded-host")) or host
    return urlunsplit((scheme, host, url.path, url.query, ""))


def replace_query_param(url: str, key: str, value: object) -> str:
    """The URL with `key` set to `value`, other parameters kept (sorted, as DRF did)."""
    parts = urlsplit(url)
    query = parse_qs(parts.query, keep_blank_values=True)
    query[key] = [str(value)]
    return urlunsplit(parts._replace(query=urlencode(sorted(query.items()), doseq=True)))


def remove_query_param(url: str, key: str) -> str:
    """The URL without `key`, other parameters kept (sorted, as DRF did)."""
    parts = urlsplit(url)
    query = parse_qs(parts.query, keep_blank_values=True)
    query.pop(key, None)
    return urlunsplit(parts._replace(query=urlencode(sorted(query.items()), doseq=True)))
