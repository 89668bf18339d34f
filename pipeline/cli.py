"""`maps`: the command-line tool of the maps platform (replaces `manage.py upload_shapefile`).

    maps login --email E [--password P]
    maps logout
    maps import PATH [--name N] [--type auto|shapefile|csv|geojson] [options] [--wait] [--json]
    maps task ID [--json]
    maps tasks [--page N] [--json]
    maps sources [--search S] [--page N] [--json]
    maps inspect SOURCE [--sql QUERY]
    maps users create --email E --password P [--superuser]
    maps analyze interpolate|grid|vectorize ...   (pipeline/cli_analyze.py)

Every failure is one line on stderr and a non-zero exit, never a traceback.

The command starts in tens of milliseconds: it is built on argparse and the standard
library's HTTP client, and each command imports what it needs when it runs (rich to draw
a table or a live bar, DuckDB for `inspect`, the database layer for `users create`).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

from pipeline.client import (
    KINDS,
    CliError,
    Service,
    detect_kind,
    forget_token,
    load_token,
    opened,
    save_token,
    service_url,
    upload_files,
)

Command = Callable[[argparse.Namespace], None]
RASTER_SUFFIXES = (".tif", ".tiff")  # `maps import` sends these to the raster import
# With MAPS_TIMINGS set, `maps import` ends by writing its own clock to stderr, one line
# (`maps-timings {...}`: when the module started, the upload was answered, the task ended;
# seconds since the epoch), for the benchmark to tell the CLI's time from the task's.
TIMINGS_ENV = "MAPS_TIMINGS"
_clock: dict[str, float] = {"started": time.time()}


def _out(text: str) -> None:
    sys.stdout.write(text + "\n")


def _err(text: str) -> None:
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


def _print_json(document: Any) -> None:
    _out(json.dumps(document, indent=2, ensure_ascii=False))


def _etl(token: str | None = None) -> Service:
    return Service(service_url("etl_service_url"), "ETL service", token)


def _api(token: str | None = None) -> Service:
    return Service(service_url("api_url"), "REST API", token)


def login(args: argparse.Namespace) -> None:
    """Sign in to the REST API and keep the token for the other commands."""
    password = args.password
    if password is None:
        import getpass

        password = getpass.getpass("Password: ")
    with _api() as api:
        try:
            response = api.request(
                "POST", "/api/v1/auth/login", data={"username": args.email, "password": password}
            )
        except CliError as exc:
            if "LOGIN_BAD_CREDENTIALS" in str(exc):
                raise CliError("login failed: wrong email or password") from None
            raise
    path = save_token(response.json()["access_token"])
    _out(f"Logged in as {args.email} (token saved in {path})")


def logout(args: argparse.Namespace) -> None:
    """Revoke the saved token and forget it."""
    token = load_token()
    # An expired or revoked token is as good as logged out.
    with _api(token) as api, contextlib.suppress(CliError):
        api.request("POST", "/api/v1/auth/logout")
    forget_token()
    _out("Logged out")


# The import's form fields, from the options of the same name.
IMPORT_FIELDS = (
    "description", "encoding", "source_crs", "layer", "x", "y", "wkt", "delimiter", "on_bad_rows",
)  # fmt: skip


def import_file(args: argparse.Namespace) -> None:
    """Upload a file to the ETL service, which imports it as a source."""
    path: Path = args.path
    if path.suffix.lower() in RASTER_SUFFIXES:
        from pipeline.cli_analyze import import_raster

        return import_raster(
            path, name=args.name, description=args.description,
            source_id=args.source_id, wait=args.wait, as_json=args.as_json,
        )  # fmt: skip
    kind = args.kind
    if kind not in KINDS:
        raise CliError(f"--type must be one of {', '.join(KINDS)}, not {kind!r}")
    if kind == "auto":
        kind = detect_kind(path)
    files = upload_files(path, kind)
    fields: dict[str, str | None] = {
        "name": args.name or (None if args.source_id is not None else path.stem),
        "source_id": None if args.source_id is None else str(args.source_id),
        **{key: getattr(args, key) for key in IMPORT_FIELDS},
    }
    data = {key: value for key, value in fields.items() if value is not None}
    with _etl(load_token()) as etl:
        with opened(files) as parts:
            response = etl.request("POST", f"/tasks/import/{kind}", data=data, files=parts)
        _clock["uploaded"] = time.time()
        task_id = str(response.json()["task_id"])
        if not args.wait:
            if args.as_json:
                _print_json(response.json())
            else:
                _out(f"Queued task {task_id}; follow it with `maps task {task_id}`")
            return
        from pipeline.follow import follow

        console = None
        show = sys.stderr.isatty()
        if show:
            from rich.console import Console

            console = Console(stderr=True, highlight=False, markup=False, soft_wrap=True)
        document = follow(
            lambda: etl.request("GET", f"/tasks/{task_id}").json(), console=console, show=show
        )
    _clock["ended"] = time.time()
    if os.environ.get(TIMINGS_ENV):
        _err(f"maps-timings {json.dumps(_clock)}")
    _report(document, as_json=args.as_json)


def task(args: argparse.Namespace) -> None:
    """Show a task: state, step, progress, timings, result or error."""
    with _etl(load_token()) as etl:
        document = etl.request("GET", f"/tasks/{args.task_id}").json()
    if args.as_json:
        _print_json(document)
        return
    from pipeline.follow import describe

    describe(document, sys.stdout)


def tasks(args: argparse.Namespace) -> None:
    """List your tasks (every task, for a superuser), newest first."""
    with _etl(load_token()) as etl:
        document = etl.request(
            "GET", "/tasks/", params={"page": args.page, "page_size": args.page_size}
        ).json()
    if args.as_json:
        _print_json(document)
        return
    from pipeline.follow import task_table

    _console().print(task_table(document["results"]))
    _out(_page_line(document, args.page, args.page_size, "task"))


def sources(args: argparse.Namespace) -> None:
    """List the sources (from the REST API)."""
    params: dict[str, Any] = {"page": args.page, "page_size": args.page_size}
    if args.search:
        params["search"] = args.search
    with _api(load_token()) as api:
        document = api.request("GET", "/api/v1/sources/", params=params).json()
    if args.as_json:
        _print_json(document)
        return
    from rich.table import Table

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
    _console().print(table)
    _out(_page_line(document, args.page, args.page_size, "source"))


def inspect(args: argparse.Namespace) -> None:
    """Open a source's staged GeoParquet in DuckDB as the view `source` (a shell, or --sql)."""
    from pipeline import inspect as inspecting  # DuckDB only when needed

    with _api(load_token()) as api:
        found = _find_source(api, args.source)
    staged = ((found.get("attributes") or {}).get("import") or {}).get("staging_path")
    if not staged:
        raise CliError(f"source {found['id']} has no staged file (it was not imported)")
    out, err = _console(), _console(stderr=True)
    with inspecting.open_source(Path(staged)) as con:
        if args.sql is not None:
            inspecting.run_query(con, args.sql, out)
            return
        inspecting.shell(con, out, err, input)


def _console(*, stderr: bool = False) -> Any:
    """A rich console printing text as it is (messages carry file names, server errors)."""
    from rich.console import Console

    return Console(stderr=stderr, highlight=False, markup=False, soft_wrap=True)


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


def create_user(args: argparse.Namespace) -> None:
    """Create an account directly in the database."""
    import asyncio

    from pipeline.accounts import create_account  # the database layer, only when needed

    password = args.password
    if password is None:
        import getpass

        password = getpass.getpass("Password: ")
    user_id = asyncio.run(
        create_account(email=args.email, password=password, superuser=args.superuser)
    )
    kind = "superuser" if args.superuser else "user"
    _out(f"Created {kind} {args.email} (id {user_id})")


def _report(document: dict[str, Any], *, as_json: bool) -> None:
    if as_json:
        _print_json(document)
    elif document["state"] == "succeeded":
        result = document.get("result") or {}
        _out(
            f"Imported source {result.get('source_id')} ({result.get('sid')}): "
            f"{result.get('feature_count')} features"
        )
        for warning in document.get("warnings") or []:
            _err(f"warning: {warning}")
    if document["state"] == "failed":
        raise CliError(_failure(document))


def _failure(document: dict[str, Any]) -> str:
    error = document.get("error") or {}
    return f"import failed at the {document.get('step')} step: {error.get('message', 'unknown')}"


class _Parser(argparse.ArgumentParser):
    """argparse, its usage errors raised as CliError (one line, exit status 2)."""

    def error(self, message: str) -> NoReturn:
        """Report a usage error in one line."""
        raise CliError(f"{message} (see `{self.prog} --help`)", exit_code=2)


def _bounded(low: int, high: int | None = None) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
        if value < low or (high is not None and value > high):
            limit = f"at least {low}" if high is None else f"between {low} and {high}"
            raise argparse.ArgumentTypeError(f"must be {limit}, not {value}")
        return value

    return parse


def analyze(args: argparse.Namespace) -> None:
    """Run an analysis: spline interpolation, grid statistics, raster to polygons."""
    # Its options are declared with typer in pipeline/cli_analyze.py, imported only here.
    from pipeline.cli_analyze import analyze as analyses

    analyses(args=args.rest, prog_name="maps analyze")


def build_parser() -> argparse.ArgumentParser:
    """The `maps` command line: one subcommand per action, each calling its function."""
    parser = _Parser(
        prog="maps",
        description="Import spatial files into the maps platform and follow the imports.",
    )
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")

    def command(name: str, function: Command) -> argparse.ArgumentParser:
        doc = (function.__doc__ or "").strip()
        sub: argparse.ArgumentParser = commands.add_parser(name, help=doc, description=doc)
        sub.set_defaults(run=function)
        return sub

    def as_json(sub: argparse.ArgumentParser, what: str) -> None:
        sub.add_argument("--json", dest="as_json", action="store_true", help=f"Print {what}.")

    sub = command("login", login)
    sub.add_argument("--email", required=True, help="Your account's email.")
    sub.add_argument("--password", help="Prompted for when omitted.")
    command("logout", logout)

    sub = command("import", import_file)
    sub.add_argument(
        "path", type=Path, help="A shapefile (.shp or .zip), a CSV, a GeoJSON or a GeoTIFF."
    )
    sub.add_argument("--name", help="The source's name (default: the file's).")
    sub.add_argument("--type", dest="kind", default="auto", help="auto, shapefile, csv or geojson.")
    sub.add_argument("--description", help="The source's description.")
    sub.add_argument("--source-id", type=int, help="Re-import: replace this source's features.")
    sub.add_argument("--encoding", help="Text encoding (shapefile .dbf, CSV).")
    sub.add_argument("--source-crs", help="The file's CRS.")
    sub.add_argument("--layer", help="The shapefile to take from a zip.")
    sub.add_argument("--x", help="CSV: the x/longitude column.")
    sub.add_argument("--y", help="CSV: the y/latitude column.")
    sub.add_argument("--wkt", help="CSV: the WKT geometry column.")
    sub.add_argument("--delimiter", help="CSV: the field delimiter.")
    sub.add_argument("--on-bad-rows", help="CSV: fail (default) or skip.")
    sub.add_argument("--wait", action="store_true", help="Follow the task until it ends.")
    as_json(sub, "the task as JSON")

    sub = command("task", task)
    sub.add_argument("task_id", help="The task's id.")
    as_json(sub, "the task as JSON")

    sub = command("tasks", tasks)
    sub.add_argument("--page", type=_bounded(1), default=1, help="The page (newest tasks first).")
    sub.add_argument("--page-size", type=_bounded(1, 1000), default=20)
    as_json(sub, "the page as JSON")

    sub = command("sources", sources)
    sub.add_argument("--search", help="Only sources whose name or description has it.")
    sub.add_argument("--page", type=_bounded(1), default=1)
    sub.add_argument("--page-size", type=_bounded(1, 1000), default=50)
    as_json(sub, "the page as JSON")

    sub = command("inspect", inspect)
    sub.add_argument("source", help="The source's id or sid.")
    sub.add_argument("--sql", help="Run this query and print it.")

    sub = command("analyze", analyze)
    sub.add_argument("rest", nargs=argparse.REMAINDER, help="interpolate, grid or vectorize ...")

    about = "Manage accounts (directly in the database, no HTTP)."
    group = commands.add_parser("users", help=about, description=about)
    group.set_defaults(run=lambda _: group.print_help())
    users = group.add_subparsers(title="commands", metavar="COMMAND")
    sub = users.add_parser("create", help=create_user.__doc__, description=create_user.__doc__)
    sub.set_defaults(run=create_user)
    sub.add_argument("--email", required=True)
    sub.add_argument("--password", help="Prompted for when omitted.")
    sub.add_argument("--superuser", action="store_true", help="May do everything.")
    return parser


def main(argv: list[str] | None = None) -> None:
    """The `maps` console script: run a command, turning every failure into one line."""
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        run: Command | None = getattr(args, "run", None)
        if run is None:  # `maps` alone: what there is to run
            parser.print_help()
            return
        run(args)
    except CliError as exc:
        _err(f"error: {exc}")
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        _err("interrupted")
        sys.exit(130)
    except Exception as exc:
        _err(f"error: {type(exc).__name__}: {exc}")
        sys.exit(1)
