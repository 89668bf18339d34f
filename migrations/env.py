"""Alembic environment: the database URL comes from core.settings unless given with -x url=."""

from __future__ import annotations

from logging.config import fileConfig

from alembic import context
from sqlalchemy import create_engine, pool

from core.models import Base
from core.settings import DatabaseSettings

config = context.config
if config.config_file_name is not None and config.attributes.get("configure_logger", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)

target_metadata = Base.metadata
# PostGIS owns these; autogenerate must not try to drop them.
_POSTGIS_TABLES = {"spatial_ref_sys", "topology", "layer"}


def _url() -> str:
    given = context.get_x_argument(as_dictionary=True).get("url")
    return DatabaseSettings(database_url=given).sync_url if given else DatabaseSettings().sync_url


def _include_object(obj: object, name: str | None, type_: str, *_: object) -> bool:
    return not (type_ == "table" and name in _POSTGIS_TABLES)


def run_migrations_offline() -> None:
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    engine = create_engine(_url(), poolclass=pool.NullPool)
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            include_object=_include_object,
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
