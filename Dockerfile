# syntax=docker/dockerfile:1.7
# One image for the REST API, the ETL service, the Dramatiq workers and the migrations;
# docker-compose.yml gives each its command. Two stages:
#   engine   builds the geo_engine wheel (Rust + PyO3 + maturin), linked against the
#            system PROJ through pkg-config (Debian 12 ships PROJ 9.1.1; see
#            geo_engine/Cargo.toml for why proj/proj-sys are pinned)
#   runtime  slim Python 3.11 with libproj25, the locked runtime dependencies, the
#            project and the wheel; runs as an unprivileged user
# Build: docker compose build    (or: docker build -t maps-platform .)

ARG PYTHON_VERSION=3.11
ARG MATURIN_VERSION=1.16.0

# ------------------------------------------------------------------ engine (build only)
FROM rust:1-slim-bookworm AS engine
ARG MATURIN_VERSION
# libproj-dev + pkg-config: the proj crate links the system PROJ; clang: bindgen in
# proj-sys; python3 (3.11 on bookworm, the runtime's minor version): the wheel's ABI tag.
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        libproj-dev pkg-config clang python3 python3-venv \
    && rm -rf /var/lib/apt/lists/*
RUN python3 -m venv /opt/maturin \
    && /opt/maturin/bin/pip install --no-cache-dir "maturin==${MATURIN_VERSION}"
WORKDIR /src
COPY geo_engine/ geo_engine/
# --compatibility linux / --auditwheel skip: the wheel links libproj.so.25 from the
# system (installed in the runtime stage), so it is not manylinux and is not repaired.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/geo_engine/target \
    /opt/maturin/bin/maturin build --release --locked -i python3 \
        --compatibility linux --auditwheel skip \
        -m geo_engine/Cargo.toml -o /wheels

# ------------------------------------------------------------------ runtime
FROM python:${PYTHON_VERSION}-slim-bookworm AS runtime
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    STAGING_DIR=/data/staging \
    UPLOAD_DIR=/data/uploads
RUN apt-get update \
    && apt-get install -y --no-install-recommends libproj25 \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app

# Dependencies first, so a code change does not reinstall them. requirements-runtime.lock
# is requirements.lock without the dev extras (same pins: compiled with -c requirements.lock).
COPY requirements-runtime.lock ./
RUN pip install -r requirements-runtime.lock

COPY --from=engine /wheels/ /tmp/wheels/
RUN pip install --no-deps /tmp/wheels/*.whl && rm -rf /tmp/wheels

# The project, installed editable so the code stays at /app (core.settings.REPO_ROOT,
# alembic.ini's migrations/) and the `maps` command exists.
COPY pyproject.toml alembic.ini ./
COPY core/ core/
COPY http_common/ http_common/
COPY api/ api/
COPY pipeline/ pipeline/
COPY migrations/ migrations/
COPY data/samples/ data/samples/
RUN pip install --no-deps -e . && pip check

RUN groupadd --system --gid 10001 maps \
    && useradd --system --uid 10001 --gid maps --create-home --home-dir /home/maps maps \
    && mkdir -p /data/staging /data/uploads /data/rasters \
    && chown -R maps:maps /data
USER maps

EXPOSE 8000 8001
# The API by default; compose runs the ETL service, the worker and the migrations with
# other commands from this same image.
CMD ["uvicorn", "--factory", "api.main:create_app", "--host", "0.0.0.0", "--port", "8000"]
