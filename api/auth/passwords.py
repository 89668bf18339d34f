"""Passwords in Django's `pbkdf2_sha256` format, so a rollback to Django keeps every login."""

from __future__ import annotations

import secrets

from anyio import to_thread
from fastapi_users.password import PasswordHelperProtocol

from core.security import hash_password, needs_rehash, verify_password


class DjangoPasswordHelper(PasswordHelperProtocol):
    """FastAPI-Users' password helper over core.security's Django-compatible hashes."""

    def __init__(self, *, iterations: int) -> None:
        self.iterations = iterations
        # Hashes made ahead in a worker thread (see `hash_ahead`), by password.
        self._ahead: dict[str, str] = {}
        # Checks made ahead (see `verify_ahead`), by (password, hash).
        self._checked: dict[tuple[str, str], tuple[bool, str | None]] = {}

    async def hash_ahead(self, password: str) -> None:
        """Hash `password` in a worker thread, for the next synchronous `hash` of it.

        FastAPI-Users calls `hash` inside its async methods (register, password
        change and reset, forgot-password), where PBKDF2's ~0.5 s would stall every
        other request on the event loop. A manager awaits this first; the library's
        call then only looks the result up.
        """
        self._ahead[password] = await to_thread.run_sync(self.hash_now, password)

    async def verify_ahead(self, plain_password: str, hashed_password: str) -> None:
        """`verify_and_update` in a worker thread, for the next synchronous call of it."""
        self._checked[plain_password, hashed_password] = await to_thread.run_sync(
            self.verify_and_update, plain_password, hashed_password
        )

    def verify_and_update(
        self, plain_password: str, hashed_password: str
    ) -> tuple[bool, str | None]:
        """Check a password; also return a fresh hash when the iteration count changed."""
        checked = self._checked.pop((plain_password, hashed_password), None)
        if checked is not None:
            return checked
        if not verify_password(plain_password, hashed_password):
            return False, None
        if needs_rehash(hashed_password, iterations=self.iterations):
            return True, self.hash(plain_password)
        return True, None

    def hash(self, password: str) -> str:
        """A new Django-verifiable hash (the one made ahead, if any)."""
        ahead = self._ahead.pop(password, None)
        return ahead if ahead is not None else self.hash_now(password)

    def hash_now(self, password: str) -> str:
        """A new Django-verifiable hash, computed here."""
        return hash_password(password, iterations=self.iterations)

    def generate(self) -> str:
        """A random password (FastAPI-Users uses it for accounts made without one)."""
        return secrets.token_urlsafe()
