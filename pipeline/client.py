"""What the `maps` CLI needs besides its commands: its settings, the saved token, and HTTP
calls that fail with one clear sentence (`CliError`) instead of a traceback.

Only the standard library is imported here (http.client, not httpx; no pydantic): the
CLI starts often, and `maps --help` or `maps import` should not pay a third of a second
for imports before doing anything.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import uuid
import zipfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO
from urllib.parse import urlencode, urlsplit

from pipeline.steps.shapefile import REQUIRED_PARTS, sibling_files

TOKEN_ENV = "MAPS_TOKEN"
# Seconds to wait for a connection, and for each answer (or each block of an upload).
CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 60.0
_CHUNK = 1 << 20
# The file core.settings reads (`make up` writes it); the CLI reads it the same way.
ENV_FILE = Path(__file__).resolve().parent.parent / ".env"
DEFAULT_URLS = {"etl_service_url": "http://127.0.0.1:8001", "api_url": "http://127.0.0.1:8000"}


def _env_file_values(path: Path) -> dict[str, str]:
    """KEY=VALUE lines of a dotenv file (comments, `export` and quotes as dotenv takes them)."""
    values: dict[str, str] = {}
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return values
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.removeprefix("export ").partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        elif " #" in value:
            value = value.split(" #", 1)[0].rstrip()
        values[key.strip().lower()] = value
    return values


def service_url(name: str) -> str:
    """`etl_service_url` or `api_url` as core's PipelineSettings reads them: the environment
    (any case), then the .env file, then the default."""
    for key, value in os.environ.items():
        if key.lower() == name:
            return value
    return _env_file_values(ENV_FILE).get(name) or DEFAULT_URLS[name]


class CliError(Exception):
    """A failure the CLI reports in one line, exiting with `exit_code`."""

    def __init__(self, message: str, *, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def token_path() -> Path:
    """Where `maps login` keeps the token: `$XDG_CONFIG_HOME/maps/token`."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "maps" / "token"


def save_token(token: str) -> Path:
    """Store the token, readable by its owner only."""
    path = token_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(token)
    path.chmod(0o600)
    return path


def load_token() -> str:
    """The token from `MAPS_TOKEN`, else from the token file; CliError when there is none."""
    token = os.environ.get(TOKEN_ENV, "").strip()
    if token:
        return token
    path = token_path()
    if path.is_file():
        token = path.read_text().strip()
        if token:
            return token
    raise CliError("not logged in: run `maps login --email you@example.com` (or set MAPS_TOKEN)")


def forget_token() -> bool:
    """Delete the saved token; whether there was one."""
    path = token_path()
    if path.is_file():
        path.unlink()
        return True
    return False


# The file types each import endpoint takes, by extension.
EXTENSIONS = {
    "shapefile": (".shp",),
    "csv": (".csv", ".tsv", ".txt"),
    "geojson": (".geojson", ".json", ".geojsonl", ".geojsons", ".ndjson", ".jsonl"),
}
KINDS = ("auto", "shapefile", "csv", "geojson")


def detect_kind(path: Path) -> str:
    """The import endpoint for `path`: by its extension, or by what a .zip holds."""
    suffix = path.suffix.lower()
    if suffix == ".zip":
        try:
            with zipfile.ZipFile(path) as archive:
                names = [PurePosixPath(name).suffix.lower() for name in archive.namelist()]
        except (zipfile.BadZipFile, OSError) as exc:
            raise CliError(f"{path}: not a readable zip archive ({exc})") from None
        for kind in ("shapefile", "csv", "geojson"):
            if any(name in EXTENSIONS[kind] for name in names):
                return kind
        raise CliError(f"{path}: the zip holds no shapefile, CSV or GeoJSON file")
    for kind, suffixes in EXTENSIONS.items():
        if suffix in suffixes:
            return kind
    raise CliError(
        f"{path}: cannot tell its format from the extension; give --type shapefile, csv or geojson"
    )


def upload_files(path: Path, kind: str = "shapefile") -> list[Path]:
    """The files to upload: a .zip, a CSV or a GeoJSON as it is, or a .shp with its parts."""
    if not path.exists():
        raise CliError(f"no such file: {path}")
    if not path.is_file():
        raise CliError(f"not a file: {path}")
    suffix = path.suffix.lower()
    if suffix == ".zip" or kind != "shapefile":
        return [path]
    if suffix != ".shp":
        raise CliError(f"{path}: not a shapefile (give the .shp, or a .zip holding it)")
    parts = sibling_files(path)
    missing = [f"{path.stem}{ext}" for ext in REQUIRED_PARTS if ext not in parts]
    if missing:
        raise CliError(f"{path}: {', '.join(missing)} not found beside it")
    return list(parts.values())


Part = tuple[str, tuple[str, BinaryIO, str]]


@contextmanager
def opened(files: list[Path]) -> Iterator[list[Part]]:
    """The files opened as multipart `file` parts (streamed from disk as they are sent)."""
    with ExitStack() as stack:
        yield [
            ("file", (file.name, stack.enter_context(file.open("rb")), "application/octet-stream"))
            for file in files
        ]


class Response:
    """An answer: its status, reason and body."""

    def __init__(self, status_code: int, reason_phrase: str, content: bytes) -> None:
        self.status_code = status_code
        self.reason_phrase = reason_phrase
        self.content = content

    @property
    def text(self) -> str:
        """The body as text."""
        return self.content.decode("utf-8", errors="replace")

    def json(self) -> Any:
        """The body as JSON."""
        return json.loads(self.content)


def _quoted(value: str) -> str:
    # As browsers and httpx escape a multipart name: no quote or line break gets through.
    return value.replace('"', "%22").replace("\r", "%0D").replace("\n", "%0A")


def multipart(fields: dict[str, str], files: list[Part]) -> tuple[str, int, Iterator[bytes]]:
    """A multipart/form-data body: its content type, length, and its bytes as a stream
    (each file read from disk in blocks as the body is sent)."""
    boundary = uuid.uuid4().hex
    pieces: list[bytes | tuple[BinaryIO, int]] = []
    for name, value in fields.items():
        pieces.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{_quoted(name)}"\r\n\r\n'
            .encode() + value.encode() + b"\r\n"
        )  # fmt: skip
    for name, (filename, handle, content_type) in files:
        pieces.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{_quoted(name)}"; '
            f'filename="{_quoted(filename)}"\r\nContent-Type: {content_type}\r\n\r\n'.encode()
        )
        pieces.append((handle, os.fstat(handle.fileno()).st_size - handle.tell()))
        pieces.append(b"\r\n")
    pieces.append(f"--{boundary}--\r\n".encode())
    length = sum(len(p) if isinstance(p, bytes) else p[1] for p in pieces)

    def stream() -> Iterator[bytes]:
        for piece in pieces:
            if isinstance(piece, bytes):
                yield piece
                continue
            handle, left = piece
            while left > 0:
                block = handle.read(min(_CHUNK, left))
                if not block:
                    raise CliError(f"{handle.name}: the file shrank while it was uploaded")
                left -= len(block)
                yield block

    return f"multipart/form-data; boundary={boundary}", length, stream()


def describe_error(response: Response) -> str:
    """The message of an error response (DRF-shaped bodies flattened to one line)."""
    try:
        body: Any = response.json()
    except ValueError:
        return response.text.strip()[:300] or response.reason_phrase
    if isinstance(body, dict):
        if "detail" in body:
            return str(body["detail"])
        return "; ".join(
            f"{field}: {' '.join(map(str, errors)) if isinstance(errors, list) else errors}"
            for field, errors in body.items()
        )
    return str(body)


class Service:
    """HTTP calls to one service (the ETL service or the REST API), errors as CliError.

    One keep-alive connection serves every call (a task is polled over it).
    """

    def __init__(self, base_url: str, label: str, token: str | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.label = label
        self._headers = {"Authorization": f"Bearer {token}"} if token else {}
        url = urlsplit(self.base_url)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise CliError(f"the {label}'s URL is not an http(s) URL: {base_url!r}")
        self._https = url.scheme == "https"
        self._host, self._port = url.hostname, url.port
        self._prefix = url.path.rstrip("/")
        self._connection: http.client.HTTPConnection | None = None
        self._where = f"the {label} at {self.base_url}"

    def __enter__(self) -> Service:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection."""
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def _connect(self) -> http.client.HTTPConnection:
        if self._connection is None:
            kind = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
            connection = kind(self._host, self._port, timeout=CONNECT_TIMEOUT)
            try:
                connection.connect()
            except OSError as exc:
                connection.close()
                raise CliError(
                    f"cannot reach the {self.label} at {self.base_url}: "
                    "is the stack up? run `make up`"
                ) from exc
            if connection.sock is not None:
                connection.sock.settimeout(READ_TIMEOUT)
                connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._connection = connection
        return self._connection

    def request(
        self,
        method: str,
        path: str,
        *,
        data: dict[str, str] | None = None,
        files: list[Part] | None = None,
        params: dict[str, Any] | None = None,
    ) -> Response:
        """Send a request; unreachable services and error statuses become CliError."""
        target = self._prefix + path + (f"?{urlencode(params)}" if params else "")
        headers = dict(self._headers)
        body: bytes | Iterator[bytes] | None = None
        if files:
            content_type, length, body = multipart(data or {}, files)
            headers.update({"Content-Type": content_type, "Content-Length": str(length)})
        elif data is not None:
            body = urlencode(data).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        # A kept-alive connection the server closed meanwhile is opened again, once (only
        # when nothing was sent that cannot be sent again).
        for attempt in (1, 2):
            reused = self._connection is not None
            connection = self._connect()
            try:
                connection.request(method, target, body=body, headers=headers)
                answer = connection.getresponse()
                response = Response(answer.status, answer.reason, answer.read())
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError) as exc:
                self.close()
                if reused and attempt == 1 and not files:
                    continue
                raise CliError(
                    f"the {self.label} at {self.base_url} closed the connection"
                ) from exc
            except (TimeoutError, OSError, http.client.HTTPException) as exc:
                self.close()
                raise CliError(
                    f"the {self.label} at {self.base_url} did not answer: {exc}"
                ) from exc
            break
        if answer.will_close:
            self.close()
        if response.status_code == 401:
            raise CliError(
                "not logged in, or the token expired: run `maps login --email you@example.com`"
            )
        if response.status_code >= 400:
            raise CliError(
                f"the {self.label} refused the request ({response.status_code}): "
                f"{describe_error(response)}"
            )
        return response
