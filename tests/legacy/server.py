"""The legacy Django app under gunicorn, as a real process on a port of its own."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.legacy.database import REPO_ROOT, django_env


@contextmanager
def gunicorn(
    database_url: str, *, port: int, workers: int = 2, log: Path | None = None, **env: str
) -> Iterator[str]:
    """Serve the legacy app on 127.0.0.1:`port` with `workers` sync workers; yields its URL."""
    url = f"http://127.0.0.1:{port}"
    command = [
        str(Path(sys.executable).parent / "gunicorn"),
        "tests.legacy.wsgi:application",
        "--bind", f"127.0.0.1:{port}",
        "--workers", str(workers),
        "--access-logfile", "-" if log else "/dev/null",
        "--error-logfile", "-",
    ]  # fmt: skip
    out = log.open("wb") if log else subprocess.DEVNULL
    proc = subprocess.Popen(
        command,
        cwd=REPO_ROOT,
        env=django_env(database_url, **env),
        stdout=out,
        stderr=subprocess.STDOUT,
    )
    try:
        _wait_ready(url, proc, log)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
        if log and not isinstance(out, int):
            out.close()


def _wait_ready(url: str, proc: subprocess.Popen[bytes], log: Path | None) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log.read_text()[-3000:] if log else ""
            raise RuntimeError(f"gunicorn exited early:\n{tail}")
        try:
            # Unauthenticated: DRF answers 401 once Django is up.
            if httpx.get(f"{url}/api/v1/sources/", timeout=2).status_code == 401:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"the legacy app at {url} never became ready")
