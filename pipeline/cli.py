"""`maps`: the command-line tool of the maps platform (replaces `manage.py upload_shapefile`).

    maps login --email E [--password P]
    maps logout
    maps import PATH [--name N] [--type auto|shapefile|csv|geojson] [options] [--wait] [--json]
    maps task ID [--json]
    maps tasks [--page N] [--json]
    maps sources [--search S] [--page N] [--json]
    maps inspect SOURCE [--sql QUERY]
    maps users create --email E --password P [--superuser]

Every failure is one line on stderr and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from core.settings import PipelineSettings
from pipeline.cli_analyze import RASTER_SUFFIXES, analyze, import_raster
from pipeline.client import (
    KINDS,
    CliError,
    Service,
    detect_kind,
    forget_token,
    load_token,
    opened,
    save_token,
    upload_files,
)
from pipeline.follow import describe, follow, task_table

app = typer.Typer(
    name="maps",
    help="Import spatial files into the maps platform and follow the imports.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
users = typer.Typer(help="Manage accounts (directly in the database, no HTTP).")
app.add_typer(users, name="users")
app.add_typer(analyze, name="analyze")
# No markup: messages carry user text (file names, server errors) printed as it is.
out = Console(highlight=False, markup=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, markup=False, soft_wrap=True)


def _print_json(document: Any) -> None:
    sys.stdout.write(json.dumps(document, indent=2, ensure_ascii=False) + "\n")


def _etl(token: str | None = None) -> Service:
    return Service(PipelineSettings().etl_service_url, "ETL service", token)


def _api(token: str | None = None) -> Service:
    return Service(PipelineSettings().api_url, "REST API", token)


@app.command()
def login(
    email: Annotated[str, typer.Option("--email", help="Your account's email.")],
    password: Annotated[
        str | None, typer.Option("--password", help="Prompted for when omitted.")
    ] = None,
) -> None:
    """Sign in to the REST API and keep the token for the other commands."""
    if password is None:
        password = typer.prompt("Password", hide_input=True)
    api = Service(PipelineSettings().api_url, "REST API")
    with api:
        try:
            response = api.request(
                "POST", "/api/v1/auth/login", data={"username": email, "password": password}
            )
        except CliError as exc:
            if "LOGIN_BAD_CREDENTIALS" in str(exc):
                raise CliError("login failed: wrong email or password") from None
            raise
    path = save_token(response.json()["access_token"])
    out.print(f"Logged in as {email} (token saved in {path})")


@app.command()
def logout() -> None:
    """Revoke the saved token and forget it."""
    token = load_token()
    # An expired or revoked token is as good as logged out.
    with (
        Service(PipelineSettings().api_url, "REST API", token) as api,
        contextlib.suppress(CliError),
    ):
        api.request("POST", "/api/v1/auth/logout")
    forget_token()
    out.print("Logged out")


Option = typer.Option


@app.command("import")
def import_file(
    path: Annotated[
        Path, typer.Argument(help="A shapefile (.shp or .zip), a CSV, a GeoJSON or a GeoTIFF.")
    ],
    name: Annotated[str | None, Option(help="The source's name (default: the file's).")] = None,
    kind: Annotated[str, Option("--type", help="auto, shapefile, csv or geojson.")] = "auto",
    description: Annotated[str | None, Option(help="The source's description.")] = None,
    source_id: Annotated[
        int | None, Option("--source-id", help="Re-import: replace this source's features.")
    ] = None,
    encoding: Annotated[str | None, Option(help="Text encoding (shapefile .dbf, CSV).")] = None,
    source_crs: Annotated[str | None, Option("--source-crs", help="The file's CRS.")] = None,
    layer: Annotated[str | None, Option(help="The shapefile to take from a zip.")] = None,
    x: Annotated[str | None, Option("--x", help="CSV: the x/longitude column.")] = None,
    y: Annotated[str | None, Option("--y", help="CSV: the y/latitude column.")] = None,
    wkt: Annotated[str | None, Option("--wkt", help="CSV: the WKT geometry column.")] = None,
    delimiter: Annotated[str | None, Option(help="CSV: the field delimiter.")] = None,
    on_bad_rows: Annotated[
        str | None, Option("--on-bad-rows", help="CSV: fail (default) or skip.")
    ] = None,
    wait: Annotated[bool, Option("--wait", help="Follow the task until it ends.")] = False,
    as_json: Annotated[bool, Option("--json", help="Print the task as JSON.")] = False,
) -> None:
    """Upload a file to the ETL service, which imports it as a source."""
    if path.suffix.lower() in RASTER_SUFFIXES:
        return import_raster(path, name=name, description=description, source_id=source_id,
                             wait=wait, as_json=as_json)  # fmt: skip
    if kind not in KINDS:
        raise CliError(f"--type must be one of {', '.join(KINDS)}, not {kind!r}")
    if kind == "auto":
        kind = detect_kind(path)
    files = upload_files(path, kind)
    fields = {
        "name": name or (None if source_id is not None else path.stem),
        "description": description,
        "source_id": None if source_id is None else str(source_id),
        "encoding": encoding,
        "source_crs": source_crs,
        "layer": layer,
        "x": x,
        "y": y,
        "wkt": wkt,
        "delimiter": delimiter,
        "on_bad_rows": on_bad_rows,
    }
    data = {key: value for key, value in fields.items() if value is not None}
    with _etl(load_token()) as etl:
        with opened(files) as parts:
            response = etl.request("POST", f"/tasks/import/{kind}", data=data, files=parts)
        task_id = str(response.json()["task_id"])
        if not wait:
            if as_json:
                _print_json(response.json())
            else:
                out.print(f"Queued task {task_id}; follow it with `maps task {task_id}`")
            return
        document = follow(
            lambda: etl.request("GET", f"/tasks/{task_id}").json(),
            console=err,
            show=err.is_terminal,
        )
    _report(document, as_json=as_json)


@app.command()
def task(
    task_id: Annotated[str, typer.Argument(help="The task's id.")],
    as_json: Annotated[bool, Option("--json", help="Print the task as JSON.")] = False,
) -> None:
    """Show a task: state, step, progress, timings, result or error."""
    with _etl(load_token()) as etl:
        document = etl.request("GET", f"/tasks/{task_id}").json()
    if as_json:
        _print_json(document)
        return
    describe(document, out)


@app.command()
def tasks(
    page: Annotated[int, Option(min=1, help="The page (newest tasks first).")] = 1,
    page_size: Annotated[int, Option("--page-size", min=1, max=1000)] = 20,
    as_json: Annotated[bool, Option("--json", help="Print the page as JSON.")] = False,
) -> None:
    """List your tasks (every task, for a superuser), newest first."""
    with _etl(load_token()) as etl:
        document = etl.request(
            "GET", "/tasks/", params={"page": page, "page_size": page_size}
        ).json()
    if as_json:
        _print_json(document)
        return
    out.print(task_table(document["results"]))
    out.print(_page_line(document, page, page_size, "task"))


@app.command()
def sources(
    search: Annotated[
        str | None, Option(help="Only sources whose name or description has it.")
    ] = None,
    page: Annotated[int, Option(min=1)] = 1,
    page_size: Annotated[int, Option("--page-size", min=1, max=1000)] = 50,
    as_json: Annotated[bool, Option("--json", help="Print the page as JSON.")] = False,
) -> None:
    """List the sources (from the REST API)."""
    params: dict[str, Any] = {"page": page, "page_size": page_size}
    if search:
        params["search"] = search
    with _api(load_token()) as api:
        document = api.request("GET", "/api/v1/sources/", params=params).json()
    if as_json:
        _print_json(document)
        return
    table = Table(show_edge=False, header_style="bold")
    for column in ("id", "sid", "name", "type", "features", "bbox", "updated"):
        table.add_column(column, justify="right" if column in ("id", "features") else "left")
    for source in document["results"]:
        bbox = source.get("bbox")
        table.add_row(
            str(source["id"]),
            source["sid"],
            source["name"],
            source["source_type"],
            f"{source.get('feature_count') or 0:,}",
            "" if not bbox else ", ".join(f"{v:.4g}" for v in bbox),
            source.get("updated_at") or "",
        )
    out.print(table)
    out.print(_page_line(document, page, page_size, "source"))


@app.command()
def inspect(
    source: Annotated[str, typer.Argument(help="The source's id or sid.")],
    sql: Annotated[str | None, Option("--sql", help="Run this query and print it.")] = None,
) -> None:
    """Open a source's staged GeoParquet in DuckDB as the view `source` (a shell, or --sql)."""
    from pipeline import inspect as inspecting  # DuckDB only when needed

    with _api(load_token()) as api:
        found = _find_source(api, source)
    staged = ((found.get("attributes") or {}).get("import") or {}).get("staging_path")
    if not staged:
        raise CliError(f"source {found['id']} has no staged file (it was not imported)")
    with inspecting.open_source(Path(staged)) as con:
        if sql is not None:
            inspecting.run_query(con, sql, out)
            return
        inspecting.shell(con, out, err, input)


def _find_source(api: Service, key: str) -> dict[str, Any]:
    """A source by id, or by sid (looked for page by page)."""
    if key.isdigit():
        found: dict[str, Any] = api.request("GET", f"/api/v1/sources/{key}/").json()
        return found
    page = 1
    while True:
        document = api.request(
            "GET", "/api/v1/sources/", params={"page": page, "page_size": 1000}
        ).json()
        for source in document["results"]:
            if source["sid"] == key:
                return dict(source)
        if not document.get("next"):
            raise CliError(f"no source with the sid {key!r}")
        page += 1


def _page_line(document: dict[str, Any], page: int, size: int, noun: str) -> str:
    count = int(document["count"])
    last = max(1, -(-count // size))
    return f"{count} {noun}(s), page {page} of {last}"


@users.command("create")
def create_user(
    email: Annotated[str, typer.Option("--email")],
    password: Annotated[str, typer.Option("--password", prompt=True, hide_input=True)],
    superuser: Annotated[bool, typer.Option("--superuser", help="May do everything.")] = False,
) -> None:
    """Create an account directly in the database."""
    from pipeline.accounts import create_account  # the database layer, only when needed

    user_id = asyncio.run(create_account(email=email, password=password, superuser=superuser))
    kind = "superuser" if superuser else "user"
    out.print(f"Created {kind} {email} (id {user_id})")


def _report(document: dict[str, Any], *, as_json: bool) -> None:
    if as_json:
        _print_json(document)
    elif document["state"] == "succeeded":
        result = document.get("result") or {}
        out.print(
            f"Imported source {result.get('source_id')} ({result.get('sid')}): "
            f"{result.get('feature_count')} features"
        )
        for warning in document.get("warnings") or []:
            err.print(f"warning: {warning}")
    if document["state"] == "failed":
        raise CliError(_failure(document))


def _failure(document: dict[str, Any]) -> str:
    error = document.get("error") or {}
    return f"import failed at the {document.get('step')} step: {error.get('message', 'unknown')}"


def main() -> None:
    """The `maps` console script: run a command, turning every failure into one line."""
    try:
        app()
    except CliError as exc:
        err.print(f"error: {exc}")
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)
    except Exception as exc:
        err.print(f"error: {type(exc).__name__}: {exc}")
        sys.exit(1)
