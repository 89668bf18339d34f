"""For the tile and map tests: Martin as a real process, and imports of the samples.

Martin is the binary `make test` built, on a free port, with docker/martin.yaml whose
listen address is changed, as scripts/stack.sh runs it under `make up`.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import httpx

from core.settings import REPO_ROOT
from tests.conftest import Stack

MARTIN_VERSION = "1.14.0"  # scripts/stack.sh MARTIN_VERSION
MARTIN_BIN = Path(
    os.environ.get("MARTIN_BIN")
    or Path.home() / ".cache" / "maps-platform" / f"martin-{MARTIN_VERSION}" / "bin" / "martin"
)


class Martin:
    """One Martin process over a database, started and stopped by the tests."""

    def __init__(self, *, database_url: str, port: int, workdir: Path) -> None:
        if not MARTIN_BIN.is_file():
            raise RuntimeError(f"{MARTIN_BIN} is missing: `scripts/stack.sh provision` builds it")
        self.url = f"http://127.0.0.1:{port}"
        self.log = workdir / f"martin-{port}.log"
        config = (REPO_ROOT / "docker" / "martin.yaml").read_text(encoding="utf-8")
        lines = [
            f'listen_addresses: "127.0.0.1:{port}"'
            if line.startswith("listen_addresses:")
            else line
            for line in config.splitlines()
        ]
        self.config = workdir / f"martin-{port}.yaml"
        self.config.write_text("\n".join(lines) + "\n", encoding="utf-8")
        self.database_url = database_url
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Martin:
        """Start Martin and wait until it answers /health."""
        env = {**os.environ, "DATABASE_URL": self.database_url}
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [str(MARTIN_BIN), "--config", str(self.config)],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"Martin exited early:\n{self.log.read_text()[-3000:]}")
            try:
                if httpx.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"Martin never answered /health:\n{self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        """Stop Martin (and wait until it is gone)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


def import_sample(stack: Stack, headers: dict[str, str], sample: str) -> int:
    """Import a sample shapefile (.zip, or .shp with siblings) via the ETL service; its id."""
    path = REPO_ROOT / "data" / "samples" / sample
    parts = [path] if path.suffix == ".zip" else sorted(path.parent.glob(f"{path.stem}.*"))
    files = [("file", (part.name, part.read_bytes(), "application/octet-stream")) for part in parts]
    queued = httpx.post(
        f"{stack.etl_url}/tasks/import/shapefile",
        data={"name": path.stem},
        files=files,
        headers=headers,
        timeout=60,
    )
    assert queued.status_code == 202, queued.text
    task_url = f"{stack.etl_url}/tasks/{queued.json()['task_id']}"
    deadline = time.monotonic() + 120
    task: dict[str, object] = {}
    while time.monotonic() < deadline:
        task = httpx.get(task_url, headers=headers).json()
        if task["state"] in ("succeeded", "failed"):
            assert task["state"] == "succeeded", task
            result = task["result"]
            assert isinstance(result, dict)
            return int(result["source_id"])
        time.sleep(0.2)
    raise AssertionError(f"the import never finished: {task}")


def drop_source(database_url: str, source_id: int) -> None:
    """Delete an imported source and its partition, which a TRUNCATE of core_geometry keeps."""
    import psycopg

    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "DELETE FROM core_project_layers WHERE layer_id IN "
            "(SELECT id FROM core_layer WHERE source_id = %s)",
            (source_id,),
        )
        conn.execute("DELETE FROM core_layer WHERE source_id = %s", (source_id,))
        conn.execute("DELETE FROM core_source WHERE id = %s", (source_id,))
        conn.execute(f"DROP TABLE IF EXISTS core_geometry_parts.source_{int(source_id)}")
