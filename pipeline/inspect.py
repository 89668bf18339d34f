"""`maps inspect`: a source's staged GeoParquet file opened in DuckDB, as the view `source`.

One query (`--sql`) is printed as a table; without it a small shell reads SQL from the
terminal (a statement ends with `;` or a blank line; `.quit` or Ctrl-D leaves), since
the duckdb command-line tool is not part of the platform.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import duckdb
from rich.console import Console
from rich.table import Table

from pipeline.client import CliError
from pipeline.steps import duck

MAX_ROWS = 100
_CELL = 80
_PROMPT, _MORE = "source> ", "   ...> "
_QUIT = (".quit", ".exit", "\\q", "quit", "exit")


def open_source(path: Path) -> duckdb.DuckDBPyConnection:
    """DuckDB with the staged file as the view `source` (geometries as GEOMETRY)."""
    if not path.is_file():
        raise CliError(
            f"the staged file {path} is not reachable from here "
            "(run `maps inspect` where the staging folder is)"
        )
    con = duck.connect()
    location = str(path).replace("'", "''")
    con.execute(f"CREATE TEMP VIEW source AS SELECT * FROM read_parquet('{location}')")
    return con


def _cell(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bytes | bytearray):
        return f"<{len(value)} bytes>"
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    text = str(value)
    return text if len(text) <= _CELL else text[: _CELL - 1] + "…"


def run_query(con: duckdb.DuckDBPyConnection, sql: str, out: Console) -> None:
    """Run one statement and print its rows (at most MAX_ROWS) as a table."""
    try:
        relation = con.sql(sql)
    except duckdb.Error as exc:
        raise CliError(str(exc).splitlines()[0]) from None
    if relation is None:  # a statement without rows (SET, CREATE...)
        out.print("ok")
        return
    try:
        rows = relation.fetchmany(MAX_ROWS + 1)
    except duckdb.Error as exc:
        raise CliError(str(exc).splitlines()[0]) from None
    table = Table(show_edge=False, header_style="bold")
    for name in relation.columns:
        table.add_column(name)
    for row in rows[:MAX_ROWS]:
        table.add_row(*(_cell(value) for value in row))
    out.print(table)
    more = " (first {MAX_ROWS} shown)" if len(rows) > MAX_ROWS else ""
    out.print(f"{min(len(rows), MAX_ROWS)} row(s){more.format(MAX_ROWS=MAX_ROWS)}")


def statements(lines: Iterable[str]) -> Iterable[str]:
    """SQL statements from lines: each ends with `;` or a blank line; `.quit` stops."""
    pending: list[str] = []
    for line in lines:
        stripped = line.strip()
        if not pending and stripped.lower() in _QUIT:
            return
        if stripped:
            pending.append(line.rstrip())
        if pending and (not stripped or stripped.endswith(";")):
            yield "\n".join(pending).rstrip().rstrip(";")
            pending = []
    if pending:
        yield "\n".join(pending).rstrip().rstrip(";")


def shell(
    con: duckdb.DuckDBPyConnection, out: Console, err: Console, read: Callable[[str], str]
) -> None:
    """Read statements from the terminal and print their results until `.quit` or EOF."""
    out.print("The source is the view `source`. End statements with `;`; `.quit` leaves.")

    def lines() -> Iterable[str]:
        prompt = _PROMPT
        while True:
            try:
                line = read(prompt)
            except EOFError:
                return
            prompt = _MORE if line.strip() and not line.strip().endswith(";") else _PROMPT
            yield line

    for sql in statements(lines()):
        try:
            run_query(con, sql, out)
        except CliError as exc:
            err.print(f"error: {exc}")
