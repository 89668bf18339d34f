"""What the `maps` CLI needs besides its commands: the saved token and HTTP calls that fail
with one clear sentence (`CliError`) instead of a traceback."""

from __future__ import annotations

import os
import zipfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO

import httpx

from pipeline.steps.shapefile import REQUIRED_PARTS, sibling_files

TOKEN_ENV = "MAPS_TOKEN"
_TIMEOUT = httpx.Timeout(60.0, connect=5.0, write=None)


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


@contextmanager
def opened(files: list[Path]) -> Iterator[list[tuple[str, tuple[str, BinaryIO, str]]]]:
    """The files opened as multipart `file` parts (httpx streams them from disk)."""
    with ExitStack() as stack:
        yield [
            ("file", (file.name, stack.enter_context(file.open("rb")), "application/octet-stream"))
            for file in files
        ]


def describe_error(response: httpx.Response) -> str:
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
    """HTTP calls to one service (the ETL service or the REST API), errors as CliError."""

    def __init__(self, base_url: str, label: str, token: str | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.label = label
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(base_url=self.base_url, headers=headers, timeout=_TIMEOUT)

    def __enter__(self) -> Service:
        return self

    def __exit__(self, *exc: object) -> None:
        self._http.close()

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """Send a request; unreachable services and error statuses become CliError."""
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout):
                raise CliError(
                    f"cannot reach the {self.label} at {self.base_url}: "
                    "is the stack up? run `make up`"
                ) from exc
            raise CliError(f"the {self.label} at {self.base_url} did not answer: {exc}") from exc
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
