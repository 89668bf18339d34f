"""Accounts made from the command line, straight in the database (`maps users create`)."""

from __future__ import annotations

from sqlalchemy.exc import DBAPIError

from core.accounts import create_user
from core.database import make_async_engine, make_async_sessionmaker
from core.errors import InvalidInput
from core.settings import Settings
from pipeline.client import CliError


def _where(settings: Settings) -> str:
    """The database's host, port and name, without credentials."""
    rest = settings.db.libpq_url.partition("://")[2]
    return f"postgresql://{rest.rpartition('@')[2]}"


async def create_account(*, email: str, password: str, superuser: bool = False) -> int:
    """Create an active account (and its profile); returns its id."""
    settings = Settings()
    engine = make_async_engine(settings.db)
    try:
        async with make_async_sessionmaker(engine)() as session:
            user = await create_user(
                session=session,
                email=email,
                password=password,
                settings=settings.auth,
                is_superuser=superuser,
            )
            return int(user.id)
    except InvalidInput as exc:
        raise CliError(f"{exc.field}: {exc.message}") from None
    except (OSError, DBAPIError) as exc:
        raise CliError(
            f"cannot reach the database at {_where(settings)}: is the stack up? run `make up`"
        ) from exc
    finally:
        await engine.dispose()
