"""What both services do the same way over HTTP (ASGI layers), kept out of `core`.

`core` stays free of the web framework (tests/test_architecture.py); `api` and
`pipeline` both import this package, and it imports neither of them.
"""

from http_common.textguard import TextGuardMiddleware, text_problem

__all__ = ["TextGuardMiddleware", "text_problem"]
