"""Session fixtures: a fresh PostGIS database migrated to head, Redis, and the real services.

`make test` starts the project's private PostgreSQL and Redis (scripts/stack.sh test-env)
and writes `.env`; the tests use their own database (`<name>_test`) and Redis database
15, so a running `make up` stack is left alone.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg
import pytest
from psycopg import sql

from core.settings import REPO_ROOT, DatabaseSettings, RedisSettings

_BASE_DB = DatabaseSettings()
_BASE_REDIS = RedisSettings()


def _test_database_url() -> str:
    scheme, _, rest = _BASE_DB.libpq_url.rpartition("/")
    return f"{scheme}/{rest.split('?')[0]}_test"


TEST_DATABASE_URL = _test_database_url()
TEST_REDIS_URL = _BASE_REDIS.redis_url.rsplit("/", 1)[0] + "/15"

# Before anything reads settings: every process started by the tests inherits these.
os.environ.update(
    {
        "ENVIRONMENT": "test",
        "DATABASE_URL": TEST_DATABASE_URL,
        "REDIS_URL": TEST_REDIS_URL,
        # Django accepts any iteration count; a low one keeps the suite fast.
        "PASSWORD_ITERATIONS": "1000",
    }
)


def _recreate_database(url: str) -> None:
    admin_url, _, name = url.rpartition("/")
    with psycopg.connect(f"{admin_url}/postgres", autocommit=True) as conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,)
        )
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def run_alembic(*args: str) -> subprocess.CompletedProcess[str]:
    """Run the Alembic CLI against the test database (as a user would)."""
    return subprocess.run(
        [sys.executable, "-m", "alembic", "-c", str(REPO_ROOT / "alembic.ini"), *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    )


@pytest.fixture(scope="session")
def database_url() -> str:
    """A fresh test database at the head revision."""
    _recreate_database(TEST_DATABASE_URL)
    run_alembic("upgrade", "head")
    return TEST_DATABASE_URL


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """Redis database 15, emptied for the session."""
    import redis

    client = redis.Redis.from_url(TEST_REDIS_URL)
    client.flushdb()
    yield TEST_REDIS_URL
    client.close()


@pytest.fixture
def db(database_url: str) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    """A plain autocommit connection for checking what the services wrote."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        yield conn


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Stack:
    """The REST API, the ETL service and a worker, running as real processes."""

    api_url: str
    etl_url: str
    staging_dir: Path
    env: dict[str, str]
    logs: Path


def _wait_healthy(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{url} exited early:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(f"{url}/health", timeout=2).json().get("status") == "healthy":
                return
        except (httpx.HTTPError, ValueError):
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} never became healthy:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="session")
def stack(
    database_url: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    """Start the API, the ETL service and one worker as a user's `make up` would."""
    work = tmp_path_factory.mktemp("stack")
    logs = work / "logs"
    logs.mkdir()
    api_port, etl_port, titiler_port = free_port(), free_port(), free_port()
    (work / "rasters").mkdir()
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "API_URL": f"http://127.0.0.1:{api_port}",
        "ETL_SERVICE_URL": f"http://127.0.0.1:{etl_port}",
        "STAGING_DIR": str(work / "staging"),
        "UPLOAD_DIR": str(work / "uploads"),
        "TASK_HEARTBEAT_SECONDS": "1",
        "TASK_STALE_AFTER_SECONDS": "10",
        "RASTER_DIR": str(work / "rasters"),
        "TITILER_URL": f"http://127.0.0.1:{titiler_port}",
    }
    bin_dir = Path(sys.executable).parent
    commands = {
        "api": [str(bin_dir / "uvicorn"), "--factory", "api.main:create_app",
                "--host", "127.0.0.1", "--port", str(api_port)],
        "etl": [str(bin_dir / "uvicorn"), "--factory", "pipeline.app:create_app",
                "--host", "127.0.0.1", "--port", str(etl_port)],
        "worker": [str(bin_dir / "dramatiq"), "pipeline.worker", "--processes", "1",
                   "--threads", "2"],
    }  # fmt: skip
    # Started once the others answer: four cold starts at once are slow on a busy machine.
    titiler = [str(bin_dir / "uvicorn"), "--factory", "pipeline.titiler_app:create_app",
               "--host", "127.0.0.1", "--port", str(titiler_port)]  # fmt: skip
    procs: dict[str, subprocess.Popen[bytes]] = {}
    try:
        for name, cmd in commands.items():
            with (logs / f"{name}.log").open("wb") as log:
                procs[name] = subprocess.Popen(
                    cmd, cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
                )
        _wait_healthy(env["API_URL"], procs["api"], logs / "api.log")
        _wait_healthy(env["ETL_SERVICE_URL"], procs["etl"], logs / "etl.log")
        with (logs / "titiler.log").open("wb") as log:
            procs["titiler"] = subprocess.Popen(
                titiler, cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
            )
        _wait_healthy(env["TITILER_URL"], procs["titiler"], logs / "titiler.log")
        yield Stack(env["API_URL"], env["ETL_SERVICE_URL"], work / "staging", env, logs)
    finally:
        for proc in procs.values():
            proc.terminate()
        for proc in procs.values():
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
