"""Compaction: keep core_geometry's partition count small, in the background.

Every load attaches a part of its own (`partitions`), and a query over all of
core_geometry locks every part and each of its indexes: with one part per source,
3,000 sources overflow PostgreSQL's lock table (64 x max_connections entries by
default). This step, run by its own actor after loads (`pipeline.maintenance`) and
never inside an import, bounds the count:

- **Drop** the parts whose sources are all deleted (ON DELETE CASCADE emptied them).
  DETACH needs a moment of ACCESS EXCLUSIVE on core_geometry: taken only if it comes
  at once, else left for the next run.
- **Merge** small parts, size-tiered: a part of `rows` rows is in tier
  `floor(log_fanout(rows))`; parts of at least `seal_rows` rows are sealed (a large
  source stays alone). When a tier holds `fanout` parts, they are merged into one:
  `INSERT ... SELECT ... ORDER BY source_id, gid` (each load's gids follow the staged
  Hilbert order, so each source stays spatially clustered) into a standalone table,
  its indexes built once plus a `source_id` btree, ANALYZE, the foreign key validated,
  all committed under a build lock; then one short transaction takes the swap's locks
  (core_source, then core_geometry: the loads' order), checks that no row of the old
  parts changed meanwhile (else gives up this merge), DETACHes them, ATTACHes the merged
  table `FOR VALUES IN (p1, ..., pk)` (its CHECK proves the bound: no scan) and drops them.

Bound: below the seal, each of the `ceil(log_fanout(seal_rows))` tiers keeps fewer
than `fanout` parts after a run, so at most `(fanout - 1) * tiers` small parts
(7 x 7 = 49 with the defaults), plus part_0, plus one part per source of at least
`seal_rows` rows and the sealed merges (each of at least `seal_rows` rows: at most
total rows / seal_rows). A query over everything then locks each of those parts and
its three or four indexes: with 10,000 sources of which a few are large, about 60
parts and 250-300 locks, against the 6,400 of the default lock table.

Readers never see a mix: the old parts and the merged one swap at one commit (a
query running then waits for the swap's brief lock, and reads either side whole).
"""

from __future__ import annotations

import json
import logging
import math
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import psycopg
from psycopg import sql

from core.settings import get_settings
from pipeline.steps import partitions
from pipeline.steps.partitions import Conn, Part

logger = logging.getLogger(__name__)

SEAL_ROWS = 1_000_000
FANOUT = 8
# Only one compaction at a time (a second one finds the lock taken and returns).
_LOCK_KEY = "core_geometry.compact"


@dataclass
class CompactResult:
    """What a run did: parts dropped, merges made (new part, old parts), parts left."""

    dropped: list[str] = field(default_factory=list)
    merged: list[tuple[str, list[str]]] = field(default_factory=list)
    skipped: bool = False
    parts: int = 0
    seconds: float = 0.0


def tier(rows: int, *, fanout: int = FANOUT) -> int:
    """The size tier of a part of `rows` rows."""
    return int(math.log(max(rows, 1), fanout) + 1e-9)


def plan(parts: Sequence[Part], *, seal_rows: int, fanout: int) -> list[Part] | None:
    """The parts to merge next (the `fanout` oldest of the lowest full tier), if any."""
    tiers: dict[int, list[Part]] = {}
    for part in parts:
        if part.rows < seal_rows:
            tiers.setdefault(tier(part.rows, fanout=fanout), []).append(part)
    for level in sorted(tiers):
        if len(tiers[level]) >= fanout:
            return tiers[level][:fanout]
    return None


def run(
    conn: Conn, *, seal_rows: int = SEAL_ROWS, fanout: int = FANOUT, max_merges: int = 100
) -> CompactResult:
    """Drop the parts of deleted sources and merge small parts until no tier is full.

    `conn` is an autocommit connection; each merge commits on its own.
    """
    started = time.perf_counter()
    result = CompactResult()
    taken = conn.execute("SELECT pg_try_advisory_lock(hashtext(%s))", (_LOCK_KEY,)).fetchone()
    if not (taken and taken[0]):
        result.skipped = True
        return result
    try:
        partitions.sweep(conn)  # merges a crashed compaction left
        result.dropped = drop_empty(conn)
        for _ in range(max_merges):
            chosen = plan(partitions.parts(conn), seal_rows=seal_rows, fanout=fanout)
            if chosen is None:
                break
            merged = merge(conn, chosen)
            if merged is None:
                break  # something changed under it: the next run tries again
            result.merged.append((merged, [part.name for part in chosen]))
    finally:
        conn.execute("SELECT pg_advisory_unlock(hashtext(%s))", (_LOCK_KEY,))
    result.parts = len(partitions.parts(conn)) + 1  # and part_0
    result.seconds = round(time.perf_counter() - started, 6)
    return result


def drop_empty(conn: Conn) -> list[str]:
    """Detach and drop the parts whose sources are all deleted; autocommit."""
    rows = conn.execute(
        sql.SQL(
            "SELECT p.name FROM {} AS p WHERE NOT EXISTS"
            " (SELECT FROM public.core_source AS s WHERE s.id = ANY(p.sources))"
            " ORDER BY p.name"
        ).format(sql.SQL(partitions.CATALOG))
    ).fetchall()
    dropped = []
    for (name,) in rows:
        try:
            with conn.transaction():
                conn.execute("SET LOCAL lock_timeout = '200ms'")
                partitions.detach_and_drop(conn, name=str(name))
            dropped.append(str(name))
        except psycopg.errors.LockNotAvailable:
            continue  # readers or a load hold core_geometry: next time
    return dropped


def merge(conn: Conn, chosen: Sequence[Part]) -> str | None:
    """Merge `chosen` into one new part; returns its name, or None if it gave up."""
    number = partitions.new_part(conn)
    build = f"merge_{number}"
    values = sorted(value for part in chosen for value in part.values)
    with partitions.build_lock(conn, name=build):
        try:
            counts = _build(conn, build, chosen, values)
            return _swap(conn, build, number, chosen, values, counts)
        finally:
            partitions.drop_build(conn, name=build)  # nothing, once attached


def _build(conn: Conn, build: str, chosen: Sequence[Part], values: list[int]) -> dict[str, int]:
    columns = partitions.parent_columns(conn)
    names = [column.name for column in columns]
    listed = sql.SQL(", ").join(map(sql.Identifier, names))
    sources = sorted({source for part in chosen for source in part.sources})
    bound = sql.SQL("part = ANY({})").format(sql.Literal(values))
    if sources:
        bound = sql.SQL("{} AND source_id >= {} AND source_id <= {}").format(
            bound, sql.Literal(sources[0]), sql.Literal(sources[-1])
        )
    # Read from the old parts themselves, not through the parent: no lock on the parent
    # that a re-import's DETACH would queue behind (and readers behind it).
    union = sql.SQL(" UNION ALL ").join(
        sql.SQL("SELECT {} FROM {}").format(listed, partitions.qualified(part.name))
        for part in chosen
    )
    counts: dict[str, int] = {}
    with conn.transaction():
        conn.execute(
            sql.SQL("CREATE TABLE {} ({}, CONSTRAINT {} CHECK ({}))").format(
                partitions.qualified(build),
                sql.SQL(", ").join(
                    column.definition("NULL" if column.name == "part" else None)
                    for column in columns
                ),
                sql.Identifier(f"{build}_part_check"),
                bound,
            )
        )
        insert = "INSERT INTO {} ({}) SELECT {} FROM ({}) AS old ORDER BY source_id, gid"
        conn.execute(sql.SQL(insert).format(partitions.qualified(build), listed, listed, union))
        for part in chosen:  # what the INSERT's snapshot saw of each old part
            row = conn.execute(
                sql.SQL("SELECT count(*) FROM {} WHERE part = ANY(%s)").format(
                    partitions.qualified(build)
                ),
                (part.values,),
            ).fetchone()
            counts[part.name] = int(str(row[0])) if row else 0
        for statement in partitions.index_statements(conn, name=build):
            conn.execute(statement)
        conn.execute(sql.SQL("CREATE INDEX ON {} (source_id)").format(partitions.qualified(build)))
        partitions.analyze(conn, name=build)
        _add_foreign_keys(conn, build)
    return counts


def _add_foreign_keys(conn: Conn, build: str) -> None:
    """The parent's foreign keys, validated now (so that ATTACH adopts them without a scan
    under its lock); a moment of SHARE ROW EXCLUSIVE on core_source."""
    rows = conn.execute(
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint"
        " WHERE conrelid = %s::regclass AND contype = 'f'",
        (partitions.PARENT,),
    ).fetchall()
    for name, definition in rows:
        conn.execute(
            sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} {}").format(
                partitions.qualified(build),
                sql.Identifier(f"{build}_{name}"),
                sql.SQL(str(definition)),
            )
        )


def _swap(
    conn: Conn,
    build: str,
    number: int,
    chosen: Sequence[Part],
    values: list[int],
    counts: dict[str, int],
) -> str | None:
    final = partitions.partition_name(number)
    try:
        with conn.transaction():
            partitions.lock_for_swap(conn)
            current = {part.name: part for part in partitions.parts(conn)}
            for part in chosen:
                if part.name not in current:
                    return None
                row = conn.execute(
                    sql.SQL("SELECT count(*) FROM {}").format(partitions.qualified(part.name))
                ).fetchone()
                if row is None or int(str(row[0])) != counts[part.name]:
                    return None  # a re-import or a delete touched it since the build
            sources = sorted({s for part in chosen for s in current[part.name].sources})
            for part in chosen:
                partitions.detach_and_drop(conn, name=part.name)
            partitions.rename_build(conn, name=build, final=final)
            conn.execute(
                sql.SQL("ALTER TABLE {} ATTACH PARTITION {} FOR VALUES IN ({})").format(
                    sql.SQL(partitions.PARENT),
                    partitions.qualified(final),
                    sql.SQL(", ").join(map(sql.Literal, values)),
                )
            )
            conn.execute(
                sql.SQL(
                    "INSERT INTO {} (name, parts, sources, rows) VALUES (%s, %s, %s, %s)"
                ).format(sql.SQL(partitions.CATALOG)),
                (final, values, sources, sum(counts.values())),
            )
    except psycopg.errors.LockNotAvailable:
        logger.info("compaction: core_geometry busy, merge of %s left for later", build)
        return None
    return final


def compact_now(database_url: str | None = None) -> CompactResult:
    """Run one compaction of core_geometry against the configured (or given) database."""
    url = database_url or get_settings().db.libpq_url
    with psycopg.connect(url, autocommit=True) as conn:
        return run(conn)


def main() -> None:
    """`python -m pipeline.steps.compact`: one compaction, its outcome as JSON."""
    result = compact_now()
    json.dump(
        {
            "dropped": result.dropped,
            "merged": [{"into": into, "from": olds} for into, olds in result.merged],
            "skipped": result.skipped,
            "parts": result.parts,
            "seconds": result.seconds,
        },
        sys.stdout,
        indent=2,
    )
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
