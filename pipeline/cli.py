"""`maps`: the command-line tool of the maps platform (replaces `manage.py upload_shapefile`).

    maps login --email E [--password P]
    maps import PATH --name NAME [--wait] [--json]
    maps task ID [--json]
    maps users create --email E --password P [--superuser]

Every failure is one line on stderr and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn

from core.settings import PipelineSettings
from pipeline.client import (
    CliError,
    Service,
    forget_token,
    load_token,
    opened,
    save_token,
    upload_files,
)

POLL_SECONDS = 0.5
FINAL_STATES = ("succeeded", "failed")

app = typer.Typer(
    name="maps",
    help="Import spatial files into the maps platform and follow the imports.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
users = typer.Typer(help="Manage accounts (directly in the database, no HTTP).")
app.add_typer(users, name="users")
# No markup: messages carry user text (file names, server errors) printed as it is.
out = Console(highlight=False, markup=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, markup=False, soft_wrap=True)


def _print_json(document: Any) -> None:
    sys.stdout.write(json.dumps(document, indent=2, ensure_ascii=False) + "\n")


def _etl(token: str | None = None) -> Service:
    return Service(PipelineSettings().etl_service_url, "ETL service", token)


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


@app.command("import")
def import_file(
    path: Annotated[Path, typer.Argument(help="A .zip of a shapefile, or its .shp.")],
    name: Annotated[str, typer.Option("--name", help="The new source's name.")],
    wait: Annotated[bool, typer.Option("--wait", help="Follow the task until it ends.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the task as JSON.")] = False,
) -> None:
    """Upload a shapefile to the ETL service, which imports it as a new source."""
    files = upload_files(path)
    with _etl(load_token()) as etl:
        with opened(files) as parts:
            response = etl.request(
                "POST", "/tasks/import/shapefile", data={"name": name}, files=parts
            )
        task_id = str(response.json()["task_id"])
        if not wait:
            if as_json:
                _print_json(response.json())
            else:
                out.print(f"Queued task {task_id}; follow it with `maps task {task_id}`")
            return
        task = _follow(etl, task_id, show=err.is_terminal)
    _report(task, as_json=as_json)


@app.command()
def task(
    task_id: Annotated[str, typer.Argument(help="The task's id.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the task as JSON.")] = False,
) -> None:
    """Show a task: state, step, progress, result or error."""
    with _etl(load_token()) as etl:
        document = etl.request("GET", f"/tasks/{task_id}").json()
    if as_json:
        _print_json(document)
        return
    _describe(document)


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


def _follow(etl: Service, task_id: str, *, show: bool) -> dict[str, Any]:
    """Poll the task until it ends, showing each step's progress."""
    with Progress(
        TextColumn("{task.description:<8}"),
        BarColumn(),
        TextColumn("{task.percentage:>5.1f}%"),
        TextColumn("{task.fields[rows]}"),
        console=err,
        disable=not show,
    ) as progress:
        bars: dict[str, TaskID] = {}
        while True:
            document: dict[str, Any] = etl.request("GET", f"/tasks/{task_id}").json()
            step = document.get("step") or "queued"
            if document["state"] == "queued":
                step = "queued"
            for done in bars.values():
                progress.update(done, completed=100)
            if step not in bars:
                bars[step] = progress.add_task(step, total=100, rows="")
            info = document.get("progress") or {}
            percent = 100.0 if document["state"] == "succeeded" else info.get("percent") or 0.0
            rows = info.get("rows_done")
            total = info.get("rows_total")
            label = f"{rows:,}/{total:,} rows" if rows is not None and total else ""
            progress.update(bars[step], completed=percent, rows=label)
            if document["state"] in FINAL_STATES:
                return document
            time.sleep(POLL_SECONDS)


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


def _describe(document: dict[str, Any]) -> None:
    out.print(f"task      {document['id']}")
    out.print(f"state     {document['state']}")
    out.print(f"step      {document.get('step')}")
    progress = document.get("progress") or {}
    if progress.get("percent") is not None:
        out.print(f"progress  {progress['percent']}%")
    if document.get("result"):
        out.print(f"result    {json.dumps(document['result'])}")
    if document.get("error"):
        out.print(f"error     {document['error'].get('message')}")
    for warning in document.get("warnings") or []:
        out.print(f"warning   {warning}")


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
