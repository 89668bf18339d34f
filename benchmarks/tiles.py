"""Vector tiles at 20 concurrent clients: our route, Martin straight, and tipg on the same table.

The 1M points and 100K polygons are imported through the pipeline into the benchmark's
database; then three servers run over it: Martin (the binary `make up` built, with
docker/martin.yaml), our REST API (tiles from that Martin, a signed-in user's bearer
token, as a browser asks) and tipg (its tile endpoint on `public.core_geometry` with
`?source_id=`). Each gets the same fixed tile list (a 4 x 4 block at zooms 4, 8 and 12
around 10°E 45°N) from 20 concurrent clients; tiles/s and the median latency are
measured per source and zoom. The bars: our route within 1.3x of Martin's tiles/s,
and faster than tipg.
"""

from __future__ import annotations

import asyncio
import math
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from benchmarks.common import REPO_ROOT, Section, count, ratio, verdict
from benchmarks.database import BenchDatabases
from benchmarks.imports import pipeline_import
from benchmarks.inputs import Inputs

CLIENTS = 20
ZOOMS = (4, 8, 12)
CENTRE = (10.0, 45.0)  # lon, lat of the tile block
BLOCK = 4  # tiles per side at each zoom
MARTIN_BAR = 1.3  # Martin's tiles/s over ours, at most
MARTIN_VERSION = "1.14.0"  # scripts/stack.sh MARTIN_VERSION
MARTIN_BIN = Path(
    os.environ.get("MARTIN_BIN")
    or Path.home() / ".cache" / "maps-platform" / f"martin-{MARTIN_VERSION}" / "bin" / "martin"
)
PASSWORD = "benchmark password"


def tile_list(zoom: int) -> list[tuple[int, int, int]]:
    """The fixed block of tiles at one zoom."""
    lon, lat = CENTRE
    n = 2**zoom
    x = int((lon + 180.0) / 360.0 * n)
    y = int((1.0 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2.0 * n)
    start_x, start_y = max(0, x - BLOCK // 2), max(0, y - BLOCK // 2)
    return [(zoom, start_x + i, start_y + j) for j in range(BLOCK) for i in range(BLOCK)]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def _server(
    name: str, command: list[str], *, env: dict[str, str], ready: str, cwd: Path, log: Path
) -> Iterator[None]:
    """A server process, up once `ready` answers 200, stopped afterwards."""
    with log.open("wb") as out:
        proc = subprocess.Popen(
            command, cwd=cwd, env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + 90
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited early:\n{log.read_text()[-3000:]}")
            try:
                if httpx.get(ready, timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{name} never answered {ready}:\n{log.read_text()[-3000:]}")
            time.sleep(0.3)
        yield
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()


@dataclass(frozen=True)
class Load:
    """One target's figures for one tile list."""

    tiles_per_second: float
    median_latency: float
    statuses: dict[int, int]
    bytes: int


async def _load(urls: list[str], headers: dict[str, str]) -> Load:
    """Fetch every URL once with CLIENTS concurrent clients."""
    queue: asyncio.Queue[str] = asyncio.Queue()
    for url in urls:
        queue.put_nowait(url)
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    size = 0
    limits = httpx.Limits(max_connections=CLIENTS, max_keepalive_connections=CLIENTS)

    async def client(http: httpx.AsyncClient) -> None:
        nonlocal size
        while not queue.empty():
            url = queue.get_nowait()
            started = time.perf_counter()
            response = await http.get(url)
            latencies.append(time.perf_counter() - started)
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
            size += len(response.content)

    async with httpx.AsyncClient(headers=headers, limits=limits, timeout=600) as http:
        started = time.perf_counter()
        await asyncio.gather(*(client(http) for _ in range(CLIENTS)))
        wall = time.perf_counter() - started
    return Load(len(urls) / wall, statistics.median(latencies), statuses, size)


def _measure(urls: list[str], headers: dict[str, str], rounds: int) -> Load:
    asyncio.run(_load(urls, headers))  # warm up: connections, caches, plans
    return asyncio.run(_load(urls * rounds, headers))


def _sign_in(api: str) -> dict[str, str]:
    email = f"bench-{uuid.uuid4().hex[:8]}@example.org"
    registered = httpx.post(
        f"{api}/api/v1/auth/register", json={"email": email, "password": PASSWORD}, timeout=60
    )
    registered.raise_for_status()
    login = httpx.post(
        f"{api}/api/v1/auth/login", data={"username": email, "password": PASSWORD}, timeout=60
    )
    login.raise_for_status()
    return {"Authorization": f"Bearer {login.json()['access_token']}"}


def run(databases: BenchDatabases, inputs: Inputs, repeat: int, *, work: Path) -> Section:
    """Import both files, start the three servers and load each with the same tile lists."""
    if not MARTIN_BIN.is_file():
        raise RuntimeError(f"{MARTIN_BIN} is missing: `scripts/stack.sh provision` builds it")
    section = Section(
        key="tiles",
        title=f"Vector tiles, {CLIENTS} concurrent clients (tiles/s; median latency)",
        columns=["source", "zoom", "requests", "ours", "Martin", "tipg",
                 "Martin / ours", "ours / tipg", "bar", "result"],
    )  # fmt: skip
    databases.reset()
    sources = []
    for path, kind, label in (
        (inputs.points_shp, "shapefile", f"{count(inputs.points)} points"),
        (inputs.polygons_shp, "shapefile", f"{count(inputs.polygons)} polygons"),
    ):
        done = pipeline_import(databases, path, name=path.stem, kind=kind, work=work)
        sources.append((label, int(done.payload["source_id"])))

    folder = Path(tempfile.mkdtemp(prefix="tiles-", dir=work))
    martin_port, api_port, tipg_port = _free_port(), _free_port(), _free_port()
    martin = f"http://127.0.0.1:{martin_port}"
    api = f"http://127.0.0.1:{api_port}"
    tipg = f"http://127.0.0.1:{tipg_port}"
    config = (REPO_ROOT / "docker" / "martin.yaml").read_text(encoding="utf-8")
    config = "\n".join(
        f'listen_addresses: "127.0.0.1:{martin_port}"' if line.startswith("listen_addresses:")
        else line
        for line in config.splitlines()
    )  # fmt: skip
    (folder / "martin.yaml").write_text(config + "\n", encoding="utf-8")
    bin_dir = Path(sys.executable).parent
    api_env = {
        "DATABASE_URL": databases.url,
        "MARTIN_URL": martin,
        "API_URL": api,
        "PASSWORD_ITERATIONS": "1000",
    }
    tipg_env = {
        "DATABASE_URL": databases.url,
        "TIPG_DB_SCHEMAS": '["public"]',
        "TIPG_DB_TABLES": '["public.core_geometry"]',
        "TIPG_DB_FUNCTIONS": "[]",
        "TIPG_MAX_FEATURES_PER_TILE": "10000000",
    }
    try:
        with (
            _server("Martin", [str(MARTIN_BIN), "--config", str(folder / "martin.yaml")],
                    env={"DATABASE_URL": databases.url}, ready=f"{martin}/health",
                    cwd=folder, log=folder / "martin.log"),
            _server("the REST API", [str(bin_dir / "uvicorn"), "--factory", "api.main:create_app",
                    "--host", "127.0.0.1", "--port", str(api_port), "--no-access-log"],
                    env=api_env, ready=f"{api}/health", cwd=REPO_ROOT, log=folder / "api.log"),
            # tipg reads a .env in its working directory: give it an empty folder.
            _server("tipg", [str(bin_dir / "uvicorn"), "tipg.main:app", "--host", "127.0.0.1",
                    "--port", str(tipg_port), "--no-access-log"],
                    env=tipg_env, ready=f"{tipg}/healthz", cwd=folder, log=folder / "tipg.log"),
        ):  # fmt: skip
            bearer = _sign_in(api)
            identity = {"Accept-Encoding": "identity"}
            for label, source_id in sources:
                for zoom in ZOOMS:
                    tiles = tile_list(zoom)
                    ours = _measure(
                        [f"{api}/api/v1/tiles/{source_id}/{z}/{x}/{y}.mvt" for z, x, y in tiles],
                        {**identity, **bearer}, repeat,
                    )  # fmt: skip
                    straight = _measure(
                        [f"{martin}/core_geometry_by_source/{z}/{x}/{y}?source_id={source_id}"
                         for z, x, y in tiles],
                        identity, repeat,
                    )  # fmt: skip
                    other = _measure(
                        [f"{tipg}/collections/public.core_geometry/tiles/WebMercatorQuad/"
                         f"{z}/{x}/{y}?source_id={source_id}" for z, x, y in tiles],
                        identity, repeat,
                    )  # fmt: skip
                    _add(section, label, zoom, len(tiles) * repeat, ours, straight, other)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    section.notes.append(
        f"Each cell: tiles/s; median latency. {BLOCK}x{BLOCK} tiles per zoom around "
        f"{CENTRE[0]}°E {CENTRE[1]}°N, each fetched {repeat} times after one warm-up pass, "
        f"uncompressed (Accept-Encoding: identity). Martin {MARTIN_VERSION} with no tile "
        "cache (docker/martin.yaml); our route adds the bearer token's check (Redis), the "
        "user and source look-ups (PostgreSQL) and the pass-through. Bars: Martin / ours "
        f"<= {MARTIN_BAR}x, ours / tipg > 1 (tiles/s)."
    )
    return section


def _cell(load: Load) -> str:
    return f"{load.tiles_per_second:,.0f}/s; {load.median_latency * 1000:.1f} ms"


def _add(
    section: Section, label: str, zoom: int, requests: int, ours: Load, martin: Load, tipg: Load
) -> None:
    bad = {
        name: load.statuses
        for name, load in (("ours", ours), ("Martin", martin), ("tipg", tipg))
        if set(load.statuses) - {200, 204}
    }
    if bad:
        section.failures.append(f"{label} z{zoom}: unexpected statuses {bad}")
    slower = martin.tiles_per_second / ours.tiles_per_second
    faster = ours.tiles_per_second / tipg.tiles_per_second
    section.add(
        [label, str(zoom), str(requests), _cell(ours), _cell(martin), _cell(tipg),
         ratio(slower), ratio(faster), f"<= {MARTIN_BAR}x; > 1x",
         verdict(slower <= MARTIN_BAR and faster > 1)],
        source=label, zoom=zoom, requests=requests,
        ours=ours.__dict__, martin=martin.__dict__, tipg=tipg.__dict__,
        martin_over_ours=slower, ours_over_tipg=faster,
    )  # fmt: skip
