"""Passwords in Django's `pbkdf2_sha256` format, so a rollback to Django keeps every login."""

from __future__ import annotations

import secrets

from fastapi_users.password import PasswordHelperProtocol

from core.security import hash_password, needs_rehash, verify_password


class DjangoPasswordHelper(PasswordHelperProtocol):
    """FastAPI-Users' password helper over core.security's Django-compatible hashes."""

    def __init__(self, *, iterations: int) -> None:
        self.iterations = iterations

    def verify_and_update(
        self, plain_password: str, hashed_password: str
    ) -> tuple[bool, str | None]:
        """Check a password; also return a fresh hash when the iteration count changed."""
        if not verify_password(plain_password, hashed_password):
            return False, None
        if needs_rehash(hashed_password, iterations=self.iterations):
            return True, self.hash(plain_password)
        return True, None

    def hash(self, password: str) -> str:
        """A new Django-verifiable hash."""
        return hash_password(password, iterations=self.iterations)

    def generate(self) -> str:
        """A random password (FastAPI-Users uses it for accounts made without one)."""
        return secrets.token_urlsafe()
