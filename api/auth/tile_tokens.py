"""Short-lived tile tokens: `?token=` on the tile routes, for clients that cannot set headers.

A tile token is a JWT signed with the app's secret, for one user and one source, with
its own audience so that it is never taken for an access token (nor one for tiles).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import jwt

TILE_TOKEN_AUDIENCE = "maps-platform:tiles"
_ALGORITHM = "HS256"


@dataclass(frozen=True)
class TileToken:
    """A tile token, its user and when it expires (Unix seconds)."""

    token: str
    user_id: int
    expires_at: int


def issue_tile_token(*, secret: str, user_id: int, source_id: int, ttl_seconds: int) -> TileToken:
    """A token letting its bearer read the tiles of one source until it expires."""
    now = int(time.time())
    expires_at = now + ttl_seconds
    claims = {
        "sub": str(user_id),
        "src": source_id,
        "aud": TILE_TOKEN_AUDIENCE,
        "iat": now,
        "exp": expires_at,
    }
    return TileToken(jwt.encode(claims, secret, algorithm=_ALGORITHM), user_id, expires_at)


def read_tile_token(token: str, *, secret: str, source_id: int) -> TileToken | None:
    """The token if it is valid for this source; None if expired, forged or for another."""
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=[_ALGORITHM],
            audience=TILE_TOKEN_AUDIENCE,
            options={"require": ["sub", "src", "exp"]},
        )
        if int(claims["src"]) != source_id:
            return None
        return TileToken(token, int(claims["sub"]), int(claims["exp"]))
    except (jwt.PyJWTError, ValueError, TypeError):
        return None
