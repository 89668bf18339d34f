"""Uploads: multipart bodies streamed to disk, and a shapefile's parts set out safely.

The body is parsed as it arrives (python-multipart) and file parts are written
straight into the task's upload folder, so an upload never sits whole in memory and
one over the size limit is refused as soon as it crosses it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from io import BufferedWriter
from pathlib import Path

import anyio.to_thread
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import Request

from core.errors import InvalidInput, PayloadTooLarge
from http_common.textguard import text_problem

MAX_FIELD_BYTES = 64 * 1024
MAX_PARTS = 16
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass
class UploadedFile:
    """A file part, as saved on disk."""

    field: str
    filename: str
    path: Path
    size: int = 0


@dataclass
class UploadedForm:
    """The form fields and the saved files of one multipart request."""

    fields: dict[str, str] = field(default_factory=dict)
    files: list[UploadedFile] = field(default_factory=list)


def safe_filename(filename: str) -> str:
    """The file's base name reduced to safe characters (no folders, no dot-only names)."""
    base = filename.replace("\\", "/").rsplit("/", 1)[-1].strip()
    cleaned = _SAFE_NAME.sub("_", base).lstrip(".")
    if not cleaned:
        raise InvalidInput(f"not a usable file name: {filename!r}", field="file")
    return cleaned


class _Receiver:
    """python-multipart callbacks collecting fields and writing files under `directory`."""

    def __init__(self, directory: Path, charset: str) -> None:
        self.directory = directory
        self.charset = charset
        self.form = UploadedForm()
        self.pending: list[tuple[BufferedWriter, bytes]] = []
        self.finished: list[BufferedWriter] = []
        self._header_name = b""
        self._header_value = b""
        self._disposition = b""
        self._name = ""
        self._data = bytearray()
        self._file: UploadedFile | None = None
        self._handle: BufferedWriter | None = None
        self.open_handles: list[BufferedWriter] = []

    def on_part_begin(self) -> None:
        self._disposition, self._data, self._file, self._handle = b"", bytearray(), None, None

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def on_header_end(self) -> None:
        if self._header_name.lower() == b"content-disposition":
            self._disposition = self._header_value
        self._header_name = self._header_value = b""

    def on_headers_finished(self) -> None:
        _, options = parse_options_header(self._disposition)
        if b"name" not in options:
            raise InvalidInput("a multipart part has no name")
        self._name = options[b"name"].decode(self.charset, errors="replace")
        if len(self.form.files) + len(self.form.fields) >= MAX_PARTS:
            raise InvalidInput(f"too many parts (at most {MAX_PARTS})")
        if b"filename" in options:
            original = options[b"filename"].decode(self.charset, errors="replace")
            name = safe_filename(original)
            path = self.directory / f"{len(self.form.files):02d}-{name}"
            self._file = UploadedFile(field=self._name, filename=name, path=path)
            self._handle = path.open("wb")
            self.open_handles.append(self._handle)
            self.form.files.append(self._file)

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        chunk = data[start:end]
        if self._file is not None and self._handle is not None:
            self._file.size += len(chunk)
            self.pending.append((self._handle, chunk))
        else:
            if len(self._data) + len(chunk) > MAX_FIELD_BYTES:
                raise InvalidInput(f"the field {self._name!r} is too long", field=self._name)
            self._data.extend(chunk)

    def on_part_end(self) -> None:
        if self._handle is not None:
            self.finished.append(self._handle)
        else:
            value = self._data.decode(self.charset, errors="replace")
            # PostgreSQL cannot store NUL: refuse it here, where the field is still named.
            problem = text_problem(value) or text_problem(self._name)
            if problem is not None:
                raise InvalidInput(problem, field=self._name)
            self.form.fields[self._name] = value

    def close_all(self) -> None:
        for handle in self.open_handles:
            handle.close()


def _write(pending: list[tuple[BufferedWriter, bytes]], finished: list[BufferedWriter]) -> None:
    for handle, chunk in pending:
        handle.write(chunk)
    for handle in finished:
        handle.close()


async def receive_multipart(request: Request, *, directory: Path, max_bytes: int) -> UploadedForm:
    """Parse a multipart body as it streams in, saving file parts into `directory`."""
    content_type, params = parse_options_header(request.headers.get("content-type", ""))
    if content_type != b"multipart/form-data" or b"boundary" not in params:
        raise InvalidInput("expected a multipart/form-data upload", field="file")
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise PayloadTooLarge(f"the upload is larger than the limit of {max_bytes} bytes")
    charset = params.get(b"charset", b"utf-8").decode("latin-1")
    await anyio.to_thread.run_sync(lambda: directory.mkdir(parents=True, exist_ok=True))
    receiver = _Receiver(directory, charset)
    parser = MultipartParser(
        params[b"boundary"],
        {
            "on_part_begin": receiver.on_part_begin,
            "on_part_data": receiver.on_part_data,
            "on_part_end": receiver.on_part_end,
            "on_header_field": receiver.on_header_field,
            "on_header_value": receiver.on_header_value,
            "on_header_end": receiver.on_header_end,
            "on_headers_finished": receiver.on_headers_finished,
        },
    )
    received = 0
    try:
        async for chunk in request.stream():
            received += len(chunk)
            if received > max_bytes:
                raise PayloadTooLarge(f"the upload is larger than the limit of {max_bytes} bytes")
            parser.write(chunk)
            if receiver.pending or receiver.finished:
                # File I/O off the event loop; the chunk order within a file is kept.
                pending, finished = receiver.pending, receiver.finished
                receiver.pending, receiver.finished = [], []
                await anyio.to_thread.run_sync(_write, pending, finished)
        parser.finalize()
    except FormParserError as exc:
        raise InvalidInput(f"the multipart body is malformed: {exc}", field="file") from exc
    finally:
        receiver.close_all()
    return receiver.form
