"""Register a raster: its source row, its `raster` layer and its COG appear at one commit.

The COG was written aside (`raster.partial_path`); it is renamed to its place in the
raster store inside the transaction that inserts the rows, just before the commit, and
removed again when the commit fails. A task retried after a commit finds its source by
its sid and registers nothing twice.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, insert, select, update
from sqlalchemy.sql.functions import now

from core.errors import NotFound
from core.models import Layer, Source


class RasterSourceGone(NotFound):
    """The raster source to re-import into does not exist (any more)."""

    code = "source_not_found"


@dataclass(frozen=True)
class Registered:
    """The source and layer of a registered raster, and whether an earlier attempt did it."""

    source_id: int
    layer_id: int | None
    sid: str
    path: Path
    already_registered: bool = False
    replaced: bool = False


def _rename(partial: Path, final: Path) -> None:
    with partial.open("rb") as handle:
        os.fsync(handle.fileno())
    os.replace(partial, final)


def register(
    *,
    engine: Engine,
    sid: str,
    name: str | None,
    description: str | None,
    source_type: str,
    attributes: dict[str, Any],
    partial: Path,
    store: Path,
    source_id: int | None = None,
    style: dict[str, Any] | None = None,
) -> Registered:
    """Create the source `sid` and its raster layer (or give `source_id` the new raster)
    and move the COG at `partial` into `store` as `<sid>.tif`, all or nothing.

    A replaced raster's old COG is deleted once the new one is committed.
    """
    final = store / f"{sid}.tif"
    with engine.connect() as conn:
        found = conn.execute(
            select(Source.id).where(Source.attributes["import"]["key"].astext == sid)
        ).scalar()
    if found is not None:
        return Registered(found, None, sid, final, already_registered=True)
    facts = {**attributes, "import": {**attributes.get("import", {}), "key": sid}}
    facts["raster"] = {**facts.get("raster", {}), "file": final.name}
    old: Path | None = None
    try:
        with engine.begin() as conn:
            layer_id: int | None = None
            if source_id is None:
                target = conn.execute(
                    insert(Source)
                    .values(
                        sid=sid,
                        name=name or sid,
                        description=description,
                        source_type=source_type,
                        attributes=facts,
                    )
                    .returning(Source.id)
                ).scalar_one()
                layer_id = conn.execute(
                    insert(Layer)
                    .values(
                        name=name or sid,
                        description=description,
                        source_id=target,
                        layer_type="raster",
                        style=style or {},
                    )
                    .returning(Layer.id)
                ).scalar_one()
            else:
                row = conn.execute(
                    select(Source.attributes).where(Source.id == source_id).with_for_update()
                ).first()
                if row is None:
                    raise RasterSourceGone(f"source {source_id} does not exist (any more)")
                previous = ((row[0] or {}).get("raster") or {}).get("file")
                old = store / previous if previous and previous != final.name else None
                values: dict[str, Any] = {"attributes": facts, "updated_at": now()}
                if name:
                    values["name"] = name
                if description is not None:
                    values["description"] = description
                conn.execute(update(Source).where(Source.id == source_id).values(**values))
                target = source_id
            _rename(partial, final)
    except BaseException:
        # The commit failed (or never came): the COG must not outlive the rows.
        final.unlink(missing_ok=True)
        raise
    if old is not None:
        old.unlink(missing_ok=True)
    return Registered(target, layer_id, sid, final, replaced=source_id is not None)
