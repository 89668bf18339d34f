"""The container stack is wired as the design says: docker-compose.yml, the Dockerfile,
docker/ and .env.example, read as files (no Docker engine is needed or used)."""

from __future__ import annotations

import importlib.util
import re
import shlex
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from core import settings as core_settings

REPO = Path(__file__).resolve().parents[2]
APP_SERVICES = ("api", "etl-service", "worker")
ALL_SERVICES = {"api", "etl-service", "worker", "postgres", "redis", "martin", "titiler", "migrate"}
PUBLISHED = {"api": 8000, "etl-service": 8001, "martin": 3000, "titiler": 9000}
_VAR = re.compile(r"\$\{(?P<name>\w+)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")


def interpolate(value: str) -> str:
    """Compose's ${VAR:-default} / ${VAR:?error} / ${VAR}, with every variable unset."""

    def sub(m: re.Match[str]) -> str:
        op, arg = m["op"] or "", m["arg"] or ""
        if "-" in op:
            return arg
        if "?" in op:
            return f"<required:{m['name']}>"
        return ""

    return _VAR.sub(sub, value)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    """docker-compose.yml as YAML (anchors and merge keys resolved)."""
    data = yaml.safe_load((REPO / "docker-compose.yml").read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The services section."""
    return compose["services"]


def env(service: dict[str, Any]) -> dict[str, str]:
    """A service's environment as a dict, interpolated with defaults."""
    raw = service.get("environment") or {}
    if isinstance(raw, list):
        raw = dict(item.split("=", 1) for item in raw)
    return {k: interpolate(str(v)) for k, v in raw.items()}


def command(service: dict[str, Any]) -> list[str]:
    """A service's command as an argument list."""
    cmd = service.get("command") or []
    return shlex.split(cmd) if isinstance(cmd, str) else [str(c) for c in cmd]


def healthcheck_text(service: dict[str, Any]) -> str:
    """A service's healthcheck test as one string."""
    test = (service.get("healthcheck") or {}).get("test") or []
    return test if isinstance(test, str) else " ".join(str(t) for t in test)


def module_file_exists(module: str) -> bool:
    """Whether a dotted module path names a module or package in the repository."""
    path = REPO.joinpath(*module.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


# ---------------------------------------------------------------- services and ports


def test_every_service_of_the_design_is_there(services: dict[str, Any]) -> None:
    missing = ALL_SERVICES - set(services)
    assert not missing, f"missing services: {sorted(missing)}"


@pytest.mark.parametrize(("name", "port"), PUBLISHED.items())
def test_published_ports(services: dict[str, Any], name: str, port: int) -> None:
    mappings = [interpolate(str(p)) for p in services[name].get("ports", [])]
    pairs = {tuple(int(x) for x in m.rsplit(":", 2)[-2:]) for m in mappings}
    assert (port, port) in pairs, f"{name} publishes {mappings}, not {port}:{port}"


def test_postgres_and_redis_images(services: dict[str, Any]) -> None:
    assert services["postgres"]["image"].startswith("postgis/postgis:15-3.")
    assert services["redis"]["image"].split(":")[0] == "redis"
    assert services["martin"]["image"].startswith("ghcr.io/maplibre/martin")
    assert services["titiler"]["image"].startswith("ghcr.io/developmentseed/titiler")


# ---------------------------------------------------------------- wiring


@pytest.mark.parametrize("name", [*APP_SERVICES, "migrate"])
def test_app_services_reach_postgres_and_redis_by_service_name(
    services: dict[str, Any], name: str
) -> None:
    variables = env(services[name])
    db = urlsplit(variables["DATABASE_URL"])
    assert (db.scheme, db.hostname, db.port or 5432) == ("postgresql", "postgres", 5432)
    pg = env(services["postgres"])
    assert (db.username, db.password, db.path) == (
        pg["POSTGRES_USER"], pg["POSTGRES_PASSWORD"], "/" + pg["POSTGRES_DB"]
    )  # fmt: skip
    # the services accept it (core.settings adds the drivers)
    urls = core_settings.DatabaseSettings(database_url=variables["DATABASE_URL"])
    assert urls.async_url.startswith("postgresql+asyncpg://maps:")
    redis = urlsplit(variables["REDIS_URL"])
    assert (redis.scheme, redis.hostname, redis.port or 6379) == ("redis", "redis", 6379)


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_services_reach_each_other_by_service_name(services: dict[str, Any], name: str) -> None:
    variables = env(services[name])
    etl, api = urlsplit(variables["ETL_SERVICE_URL"]), urlsplit(variables["API_URL"])
    assert (etl.hostname, etl.port) == ("etl-service", 8001)
    assert (api.hostname, api.port) == ("api", 8000)


def test_secret_key_is_required_not_defaulted(services: dict[str, Any]) -> None:
    for name in (*APP_SERVICES, "migrate"):
        assert env(services[name])["SECRET_KEY"] == "<required:SECRET_KEY>", name


def test_martin_reaches_postgres(services: dict[str, Any]) -> None:
    db = urlsplit(env(services["martin"])["DATABASE_URL"])
    assert db.scheme in {"postgres", "postgresql"}
    assert (db.hostname, db.port or 5432, db.path) == ("postgres", 5432, "/maps")


def test_etl_service_and_worker_share_the_staging_and_upload_volumes(
    services: dict[str, Any], compose: dict[str, Any]
) -> None:
    mounts = {}
    for name in ("etl-service", "worker"):
        variables = env(services[name])
        volumes = [str(v).split(":") for v in services[name].get("volumes", [])]
        by_target = {v[1]: v[0] for v in volumes}
        mounts[name] = {
            by_target.get(variables["STAGING_DIR"]),
            by_target.get(variables["UPLOAD_DIR"]),
        }
        assert None not in mounts[name], f"{name} mounts nothing at its STAGING/UPLOAD_DIR"
        assert mounts[name] <= set(compose.get("volumes") or {}), "not named volumes"
    assert mounts["etl-service"] == mounts["worker"]


def test_one_image_for_the_app_services(services: dict[str, Any]) -> None:
    images = {services[name].get("image") for name in (*APP_SERVICES, "migrate")}
    assert len(images) == 1 and None not in images, images
    for name in (*APP_SERVICES, "migrate"):
        build = services[name].get("build")
        context = build if isinstance(build, str) else (build or {}).get("context")
        dockerfile = "Dockerfile" if isinstance(build, str) else build.get("dockerfile", "")
        assert context == "." and dockerfile == "Dockerfile", name


# ---------------------------------------------------------------- start order and health

DEPENDS = {
    "migrate": {"postgres": "service_healthy"},
    "api": {"migrate": "service_completed_successfully", "redis": "service_healthy"},
    "etl-service": {"migrate": "service_completed_successfully", "redis": "service_healthy"},
    "worker": {"migrate": "service_completed_successfully", "redis": "service_healthy"},
    "martin": {"migrate": "service_completed_successfully"},
}


@pytest.mark.parametrize(("name", "expected"), DEPENDS.items())
def test_depends_on_conditions(services: dict[str, Any], name: str, expected: dict) -> None:
    depends = services[name].get("depends_on") or {}
    assert isinstance(depends, dict), f"{name}: depends_on needs conditions, not a list"
    actual = {dep: (spec or {}).get("condition") for dep, spec in depends.items()}
    assert expected.items() <= actual.items(), f"{name}: {actual}"


def test_migrate_runs_once_to_head(services: dict[str, Any]) -> None:
    assert command(services["migrate"]) == ["alembic", "-c", "alembic.ini", "upgrade", "head"]
    assert str(services["migrate"].get("restart", "no")) == "no"
    assert (REPO / "alembic.ini").is_file()


@pytest.mark.parametrize(
    ("name", "needles"),
    [
        ("postgres", ["pg_isready", "-h", "-U maps", "-d maps"]),
        ("redis", ["redis-cli", "ping"]),
        ("api", ["127.0.0.1:8000/health"]),
        ("etl-service", ["127.0.0.1:8001/health"]),
    ],
)
def test_healthchecks(services: dict[str, Any], name: str, needles: list[str]) -> None:
    text = healthcheck_text(services[name])
    for needle in needles:
        assert needle in text, f"{name} healthcheck {text!r} lacks {needle!r}"


# ---------------------------------------------------------------- commands name real modules


@pytest.mark.parametrize(
    ("name", "program", "target"),
    [
        ("api", "uvicorn", "api.main:create_app"),
        ("etl-service", "uvicorn", "pipeline.app:create_app"),
        ("worker", "dramatiq", "pipeline.worker"),
    ],
)
def test_commands_name_the_real_modules(
    services: dict[str, Any], name: str, program: str, target: str
) -> None:
    cmd = command(services[name])
    assert cmd[0] == program and target in cmd, cmd
    if program == "uvicorn":
        assert "--factory" in cmd
        port = cmd[cmd.index("--port") + 1]
        assert int(port) == PUBLISHED[name]
        assert cmd[cmd.index("--host") + 1] == "0.0.0.0"
    module = target.split(":")[0]
    assert module_file_exists(module), f"{module} has no file in the repository"


def test_local_stack_runs_the_same_commands() -> None:
    stack = (REPO / "scripts" / "stack.sh").read_text(encoding="utf-8")
    for target in ("api.main:create_app", "pipeline.app:create_app", "pipeline.worker",
                   "-c alembic.ini upgrade head"):  # fmt: skip
        assert target in stack, target


# ---------------------------------------------------------------- Martin


@pytest.fixture(scope="module")
def martin_config() -> dict[str, Any]:
    """docker/martin.yaml."""
    data = yaml.safe_load((REPO / "docker" / "martin.yaml").read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def test_martin_uses_the_mounted_config(services: dict[str, Any]) -> None:
    cmd = command(services["martin"])
    config = cmd[cmd.index("--config") + 1]
    mounts = {v.split(":")[1]: v.split(":")[0] for v in services["martin"]["volumes"]}
    assert Path(mounts[config]) == Path("./docker/martin.yaml")


def test_martin_publishes_only_the_per_source_function(martin_config: dict[str, Any]) -> None:
    pg = martin_config["postgres"]
    assert pg["connection_string"] == "${DATABASE_URL}"
    assert pg["auto_publish"] is False
    assert "tables" not in pg
    fn = pg["functions"]["core_geometry_by_source"]
    assert (fn["schema"], fn["function"]) == ("public", "core_geometry_by_source")
    assert martin_config["listen_addresses"].endswith(":3000")


# ---------------------------------------------------------------- Dockerfile


def dockerfile_instructions() -> list[tuple[str, str]]:
    """The Dockerfile as (INSTRUCTION, arguments), continuation lines joined."""
    text = (REPO / "Dockerfile").read_text(encoding="utf-8")
    logical, buf = [], ""
    for line in text.splitlines():
        if not buf and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.lstrip().startswith("#"):
            continue
        buf += line.rstrip("\\").strip() + " "
        if not line.rstrip().endswith("\\"):
            logical.append(buf.strip())
            buf = ""
    return [(ins.split(None, 1)[0].upper(), ins.split(None, 1)[1]) for ins in logical]


def stages() -> list[tuple[str, str, list[tuple[str, str]]]]:
    """(base image, stage name, instructions) for each FROM."""
    out: list[tuple[str, str, list[tuple[str, str]]]] = []
    for ins, args in dockerfile_instructions():
        if ins == "FROM":
            parts = args.split()
            out.append((parts[0], parts[2] if len(parts) > 2 else "", []))
        elif out:
            out[-1][2].append((ins, args))
    return out


def test_dockerfile_builds_the_engine_wheel_in_a_rust_stage() -> None:
    rust = [s for s in stages() if s[0].startswith("rust:") and "slim" in s[0]]
    assert rust, "no rust:*-slim build stage"
    _, name, body = rust[0]
    runs = " ".join(args for ins, args in body if ins == "RUN")
    for needle in ("libproj-dev", "pkg-config", "clang", "maturin"):
        assert needle in runs, needle
    build = re.search(r"maturin build ([^&;]*)", runs)
    assert build, "no `maturin build`"
    assert "--release" in build[1] and "-m geo_engine/Cargo.toml" in build[1]
    assert "-o /wheels" in build[1]
    assert name, "the rust stage needs a name for COPY --from"


def test_dockerfile_runtime_is_slim_python_with_the_wheel_and_a_plain_user() -> None:
    all_stages = stages()
    base, _, body = all_stages[-1]
    resolved = base.replace("${PYTHON_VERSION}", "3.11")
    assert re.fullmatch(r"python:3\.11-slim(-bookworm)?", resolved), base
    rust_name = next(name for image, name, _ in all_stages if image.startswith("rust:"))
    copies = [args for ins, args in body if ins == "COPY"]
    assert any(f"--from={rust_name}" in c and "/wheels" in c for c in copies), copies
    runs = " ".join(args for ins, args in body if ins == "RUN")
    assert "libproj25" in runs
    assert "requirements-runtime.lock" in runs
    assert re.search(r"pip install [^&]*\.whl", runs)
    users = [args.strip() for ins, args in body if ins == "USER"]
    assert users and users[-1] not in {"root", "0"}


def test_dockerfile_copies_only_files_that_exist_and_are_not_ignored() -> None:
    ignored = {
        line.strip().rstrip("/")
        for line in (REPO / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith(("#", "!"))
    }
    for ins, args in dockerfile_instructions():
        if ins != "COPY" or args.startswith("--from"):
            continue
        for source in args.split()[:-1]:
            assert (REPO / source).exists(), f"COPY {source}: not in the repository"
            assert source.rstrip("/") not in ignored, f"COPY {source}: excluded by .dockerignore"


def test_dockerignore_keeps_secrets_and_bulk_out() -> None:
    lines = set((REPO / ".dockerignore").read_text(encoding="utf-8").splitlines())
    for entry in (".env", ".venv", ".git", "geo_engine/target", "data/bench", "data/uploads",
                  "data/staging", ".local"):  # fmt: skip
        assert entry in lines, entry


def _pins(path: Path) -> dict[str, str]:
    pins = re.findall(r"^([A-Za-z0-9_.\-]+)==(\S+)", path.read_text(encoding="utf-8"), re.M)
    return {name.lower().replace("_", "-"): version for name, version in pins}


def test_runtime_lock_is_the_dev_lock_without_the_dev_extras() -> None:
    runtime, full = _pins(REPO / "requirements-runtime.lock"), _pins(REPO / "requirements.lock")
    assert runtime, "requirements-runtime.lock pins nothing"
    assert {k: full.get(k) for k in runtime} == runtime, "pins differ from requirements.lock"
    for dev_only in ("pytest", "mypy", "ruff", "maturin", "geopandas"):
        assert dev_only not in runtime, dev_only
    text = (REPO / "pyproject.toml").read_text(encoding="utf-8")
    deps = re.search(r"^dependencies = \[(.*?)^\]", text, re.M | re.S)
    assert deps
    for requirement in re.findall(r'"([A-Za-z0-9_.\-]+)', deps[1]):
        assert requirement.lower().replace("_", "-") in runtime, requirement


# ---------------------------------------------------------------- .env.example


def settings_env_names() -> set[str]:
    """Every environment variable the settings classes read (core and api)."""
    # api/settings.py by path: importing the `api` package would build the whole app.
    spec = importlib.util.spec_from_file_location("_api_settings", REPO / "api" / "settings.py")
    assert spec and spec.loader
    api_settings = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(api_settings)
    names = set()
    for module in (core_settings, api_settings):
        for obj in vars(module).values():
            if (
                isinstance(obj, type)
                and obj.__module__ == module.__name__
                and hasattr(obj, "model_fields")
            ):
                prefix = obj.model_config.get("env_prefix", "")
                for field, info in obj.model_fields.items():
                    if not isinstance(info.default_factory, type):  # skip nested groups
                        names.add(f"{prefix}{field}".upper())
    return names


def test_env_example_lists_every_setting() -> None:
    text = (REPO / ".env.example").read_text(encoding="utf-8")
    listed = set(re.findall(r"^([A-Z][A-Z0-9_]*)=", text, re.M))
    missing = settings_env_names() - listed
    assert not missing, f".env.example lacks {sorted(missing)}"
    for name in ("DATABASE_URL", "REDIS_URL", "ETL_SERVICE_URL", "SECRET_KEY", "PG_PORT",
                 "REDIS_PORT", "API_PORT", "ETL_PORT"):  # fmt: skip
        assert name in listed, name


def test_env_example_values_match_the_local_stack() -> None:
    text = (REPO / ".env.example").read_text(encoding="utf-8")
    values = dict(re.findall(r"^([A-Z][A-Z0-9_]*)=(.*)$", text, re.M))
    assert values["DATABASE_URL"] == "postgresql://maps:maps@127.0.0.1:55432/maps"
    assert values["REDIS_URL"] == "redis://127.0.0.1:56379/0"
    assert values["ETL_SERVICE_URL"] == "http://127.0.0.1:8001"
    assert urlsplit(values["DATABASE_URL"]).port == int(values["PG_PORT"])
    assert urlsplit(values["REDIS_URL"]).port == int(values["REDIS_PORT"])
    assert urlsplit(values["API_URL"]).port == int(values["API_PORT"])
    assert urlsplit(values["ETL_SERVICE_URL"]).port == int(values["ETL_PORT"])
