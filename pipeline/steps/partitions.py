"""core_geometry's partitions: one fresh storage part per load, built standalone and attached.

Why partitions (migration 0005 made `core_geometry` LIST-partitioned by `part`, a
storage number): inserting into a table that already has a GIST index maintains the
index row by row, which costs far more than building it once over sorted data, and
gets slower as the table grows. An import therefore never inserts into the shared
table. It takes a fresh part number `p` (`core_geometry_part_seq`) and, in one
transaction,

1. creates a table `core_geometry_parts.load_<sid>` with the parent's columns (read from
   the catalog once per load: an adopted Django table may type `gid` as integer),
   `part DEFAULT p` (so the COPY format does not change) and
   `CHECK (source_id = N AND part = p)`, and no index;
2. COPYs the features into it with FREEZE (the table was created in the same
   transaction: rows are written frozen, no later pass sets hint bits or freezes them);
3. builds the parent's indexes on it (the GIST index over rows already in Hilbert
   order, from staging, builds fastest) and ANALYZEs it;
4. takes the short locks of the swap, inserts (or updates) the `core_source` row,
   removes the source's old rows (a re-import: its part is detached and dropped when it
   holds only this source, its rows deleted from a shared part or `part_0`), and
   ATTACHes the new table `FOR VALUES IN (p)`. No bound can conflict, since `p` is
   new. The CHECK proves the bound, so ATTACH skips its validation scan, and no other
   partition is scanned: there is no DEFAULT partition. The indexes match the
   parent's, so ATTACH adopts them. The foreign key to core_source is checked by
   ATTACH, with one scan of the new rows (about 80 ms a million): the source's row
   appears only in this transaction.

`part_0` is an ordinary partition (`FOR VALUES IN (0)`), not the DEFAULT one: plain
INSERTs (the REST API, Django-era code) land there, as do the rows of an adopted
Django table (the table itself becomes `part_0`); it has a `source_id` btree of its own.

Readers find one source's rows through the CHECK constraints (constraint exclusion
with constants; the API forces custom plans so that bound parameters count as
constants), and shared parts through their `source_id` btree. Each part is one more
relation (and its indexes) that a query over all of core_geometry must lock, so
`compact` merges small parts in the background and drops the parts of deleted
sources; an import never does either. `catalog` (a table in SCHEMA) records each
part's bound values, sources and row count, written in the same transactions.

Readers never see a half-loaded source: the partition and the source row appear (or
are replaced) at the same commit, and a failure at any point rolls all of it back.
Steps 1-3 lock only the new table, so loads run side by side and readers of
`core_geometry` are not blocked; step 4 orders its locks (core_source, then
core_geometry) so that concurrent loads (and compactions) queue instead of
deadlocking, and holds them for milliseconds plus that foreign-key scan.

A large import is built in parallel instead (`load_chunks`): the rows are split into
contiguous chunks, each COPYed, indexed and analysed by its own connection in its own
transaction (FREEZE again), with a block of gids reserved up front so that each chunk
holds one gid range. The load's part is then itself partitioned BY RANGE (gid), the
chunks attached to it in the swap's transaction. The chunks are committed tables
before the swap, invisible through core_geometry and guarded by an advisory lock; a
failed load drops them, and a crashed load's (lock free) are dropped by `sweep` at the
next load.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from psycopg import Connection, sql

SCHEMA = "core_geometry_parts"
PARENT = "public.core_geometry"
PART_ZERO = "part_0"
PART_SEQUENCE = "public.core_geometry_part_seq"
# What each part holds (migration 0005): name, bound values, sources, rows.
CATALOG = f"{SCHEMA}.catalog"
COPY_COLUMNS = "(geom, metadata, geometry_type, source_id)"
_INDEX_HEAD = re.compile(r"^CREATE (UNIQUE )?INDEX \S+ ON (?:ONLY )?\S+ ")
_NEXTVAL = re.compile(r"^nextval\('([^']+)'::regclass\)$")
# Wait at most this long for the locks of the swap (a long query on core_geometry or
# an open transaction writing core_source); past it the load is retried later.
LOCK_TIMEOUT = "30s"

Conn = Connection[tuple[object, ...]]


@dataclass(frozen=True)
class Column:
    """One column of the parent, as a standalone table needs it."""

    name: str
    type: str
    not_null: bool
    default: str | None

    def definition(self, default: str | None = None) -> sql.Composable:
        """`name type [NOT NULL] [DEFAULT ...]`, with `default` instead of the parent's."""
        given = default if default is not None else self.default
        return sql.SQL("{} {}{}{}").format(
            sql.Identifier(self.name),
            sql.SQL(self.type),
            sql.SQL(" NOT NULL" if self.not_null else ""),
            sql.SQL(f" DEFAULT {given}" if given is not None else ""),
        )


def parent_columns(conn: Conn) -> list[Column]:
    """The parent's columns from the catalog (no lock on the parent: `LIKE` would hold
    one for the whole load, blocking a concurrent re-import's DETACH behind it)."""
    rows = conn.execute(
        """
        SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
               pg_get_expr(d.adbin, d.adrelid)
        FROM pg_attribute AS a
        LEFT JOIN pg_attrdef AS d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
        WHERE a.attrelid = %s::regclass AND a.attnum > 0 AND NOT a.attisdropped
        ORDER BY a.attnum
        """,
        (PARENT,),
    ).fetchall()
    return [Column(str(n), str(t), bool(nn), None if d is None else str(d)) for n, t, nn, d in rows]


def gid_sequence(columns: Sequence[Column]) -> str:
    """The sequence the parent's gids come from (its `gid` default names it)."""
    gid = next(column for column in columns if column.name == "gid")
    found = _NEXTVAL.match(gid.default or "")
    if found is None:
        raise RuntimeError(f"{PARENT}.gid has no nextval default: {gid.default!r}")
    return found.group(1)


def _column_list(
    columns: Sequence[Column], *, part: int | None, gid_default: str | None = None
) -> sql.Composable:
    definitions = []
    for column in columns:
        if column.name == "part":
            definitions.append(column.definition(None if part is None else str(int(part))))
        elif column.name == "gid" and gid_default is not None:
            definitions.append(column.definition(gid_default))
        else:
            definitions.append(column.definition())
    return sql.SQL(", ").join(definitions)


def new_part(conn: Conn) -> int:
    """A part number nobody has used (for a load, or a compaction's merged part)."""
    row = conn.execute(f"SELECT nextval('{PART_SEQUENCE}')").fetchone()
    assert row is not None
    return int(str(row[0]))


def partition_name(part: int) -> str:
    """The table name of a part (in SCHEMA)."""
    return f"part_{int(part)}"


def build_name(sid: str) -> str:
    """The name of the standalone table an import builds (in SCHEMA), from the import's sid."""
    if not re.fullmatch(r"[a-z0-9_]{1,50}", sid):
        raise ValueError(f"not a usable sid for a table name: {sid!r}")
    return f"load_{sid}"


def qualified(name: str) -> sql.Composed:
    """`core_geometry_parts.<name>`, quoted."""
    return sql.SQL("{}.{}").format(sql.Identifier(SCHEMA), sql.Identifier(name))


def create_build_table(
    conn: Conn,
    *,
    name: str,
    source_id: int,
    part: int = 0,
    columns: Sequence[Column] | None = None,
    gids: tuple[int, int] | None = None,
) -> None:
    """A table with the parent's columns, holding only `source_id` rows of `part`, without
    indexes.

    With `gids` (a chunk's range, end excluded) the gids come from a sequence of the
    table's own over that range, and the CHECK also proves the range to the chunk's
    RANGE partition bound.
    """
    columns = parent_columns(conn) if columns is None else columns
    check = sql.SQL("source_id = {} AND part = {}").format(
        sql.Literal(int(source_id)), sql.Literal(int(part))
    )
    own = None
    if gids is not None:
        low, high = gids
        sequence = qualified(f"{name}_gid")
        conn.execute(
            sql.SQL("CREATE SEQUENCE {} START {} MINVALUE {} MAXVALUE {} CACHE 1000").format(
                sequence, sql.Literal(low), sql.Literal(low), sql.Literal(max(low, high - 1))
            )
        )
        # `name` is made of [a-z0-9_] (build_name), safe inside the literal.
        own = f"nextval('{SCHEMA}.{name}_gid'::regclass)"
        check = sql.SQL("{} AND gid >= {} AND gid < {}").format(
            check, sql.Literal(low), sql.Literal(high)
        )
    conn.execute(
        sql.SQL("CREATE TABLE {} ({}, CONSTRAINT {} CHECK ({}))").format(
            qualified(name),
            _column_list(columns, part=part, gid_default=own),
            sql.Identifier(f"{name}_part_check"),
            check,
        )
    )


def finish_chunk(conn: Conn, *, name: str, columns: Sequence[Column]) -> None:
    """After a chunk's COPY: its gids default to the shared sequence again, its own goes."""
    gid = next(column for column in columns if column.name == "gid")
    conn.execute(
        sql.SQL("ALTER TABLE {} ALTER COLUMN gid SET DEFAULT {}").format(
            qualified(name), sql.SQL(gid.default or "NULL")
        )
    )
    conn.execute(sql.SQL("DROP SEQUENCE {}").format(qualified(f"{name}_gid")))


def create_chunked_table(
    conn: Conn,
    *,
    name: str,
    part: int,
    columns: Sequence[Column],
    chunks: list[tuple[str, int, int]],
) -> None:
    """A table partitioned BY RANGE (gid), the chunks `(name, first gid, end)` attached."""
    conn.execute(
        sql.SQL("CREATE TABLE {} ({}) PARTITION BY RANGE (gid)").format(
            qualified(name), _column_list(columns, part=part)
        )
    )
    for chunk, low, high in chunks:
        conn.execute(
            sql.SQL("ALTER TABLE {} ATTACH PARTITION {} FOR VALUES FROM ({}) TO ({})").format(
                qualified(name), qualified(chunk), sql.Literal(low), sql.Literal(high)
            )
        )


def reserve_gids(conn: Conn, count: int, sequence: str = "public.core_geometry_gid_seq") -> int:
    """Take `count` consecutive gids from the shared sequence at once; returns the first.

    ALTER SEQUENCE blocks everyone's nextval until the transaction ends, so the block is
    ours alone; the transaction lasts a millisecond. Commit right after. (A nextval
    first: on a fresh sequence the first nextval answers the start value whatever the
    increment, which would make the block overlap the next value.)
    """
    conn.execute(f"ALTER SEQUENCE {sequence} INCREMENT BY 1")  # takes the lock
    first = conn.execute(f"SELECT nextval('{sequence}')").fetchone()
    conn.execute(f"ALTER SEQUENCE {sequence} INCREMENT BY {int(count)}")
    conn.execute(f"SELECT nextval('{sequence}')")  # skips past the block: first + count
    conn.execute(f"ALTER SEQUENCE {sequence} INCREMENT BY 1")
    assert first is not None
    return int(str(first[0]))


def drop_build(conn: Conn, *, name: str) -> None:
    """Drop what a build named `name` made and left (chunks, their sequences); autocommit."""
    rows = conn.execute(
        """
        SELECT c.relname, c.relkind FROM pg_class AS c
        WHERE c.relnamespace = %s::regnamespace AND c.relkind IN ('r', 'p', 'S')
          AND (c.relname = %s OR starts_with(c.relname, %s)) AND NOT c.relispartition
        """,
        (SCHEMA, name, f"{name}_"),
    ).fetchall()
    for relname, kind in sorted(rows, key=lambda row: str(row[1]) != "p"):
        what = "SEQUENCE" if kind == "S" else "TABLE"
        conn.execute(
            sql.SQL("DROP {} IF EXISTS {} CASCADE").format(sql.SQL(what), qualified(str(relname)))
        )


@contextmanager
def build_lock(conn: Conn, *, name: str) -> Iterator[None]:
    """Hold, while the block runs, the advisory lock that says the build `name` is going on.

    A parallel load's chunks (and a compaction's merged table) are committed tables
    before their swap; `sweep` leaves alone the builds whose lock is held, and drops the
    others (their builder died: its session, and so its lock, ended with it). Released
    explicitly: the connection goes back to a pool, where a session lock would outlive
    the build.
    """
    key = f"{SCHEMA}.{name}"
    conn.execute("SELECT pg_advisory_lock(hashtext(%s))", (key,))
    try:
        yield
    finally:
        conn.execute("SELECT pg_advisory_unlock(hashtext(%s))", (key,))


def sweep(conn: Conn) -> list[str]:
    """Drop what crashed builds left (`load_<sid>...`, `merge_<n>...` relations whose build
    lock is free); autocommit. Parts of deleted sources are `compact`'s, not a load's."""
    rows = conn.execute(
        """
        SELECT DISTINCT substring(c.relname FROM '^(load_src_[a-z0-9]+|merge_[0-9]+)')
        FROM pg_class AS c
        WHERE c.relnamespace = %s::regnamespace AND c.relkind IN ('r', 'p', 'S')
          AND (c.relname LIKE 'load\\_src\\_%%' OR c.relname LIKE 'merge\\_%%')
          AND NOT c.relispartition
        """,
        (SCHEMA,),
    ).fetchall()
    swept = []
    for (name,) in rows:
        if not name:
            continue
        key = f"{SCHEMA}.{name}"
        taken = conn.execute("SELECT pg_try_advisory_lock(hashtext(%s))", (key,)).fetchone()
        if not (taken and taken[0]):
            continue  # a build is going on right now
        try:
            drop_build(conn, name=str(name))
        finally:
            conn.execute("SELECT pg_advisory_unlock(hashtext(%s))", (key,))
        swept.append(str(name))
    return swept


def copy_statement(name: str) -> sql.Composed:
    """The binary COPY into a build table created in this transaction (hence FREEZE)."""
    return sql.SQL("COPY {} {} FROM STDIN (FORMAT BINARY, FREEZE)").format(
        qualified(name), sql.SQL(COPY_COLUMNS)
    )


def index_statements(conn: Conn, *, name: str) -> list[sql.Composed]:
    """The statements giving the build table every index of the parent, as ATTACH wants them.

    Read from the catalog, so that an index added to core_geometry by a later migration
    is built here too (ATTACH would otherwise build it itself, holding its locks). The
    primary key becomes a constraint: ATTACH adopts only a constraint for a constraint.
    """
    rows = conn.execute(
        """
        SELECT pg_get_indexdef(i.indexrelid), c.contype,
               array(SELECT a.attname FROM unnest(i.indkey) AS k(n)
                     JOIN pg_attribute AS a ON a.attrelid = i.indrelid AND a.attnum = k.n)
        FROM pg_index AS i
        LEFT JOIN pg_constraint AS c ON c.conindid = i.indexrelid AND c.contype IN ('p', 'u')
        WHERE i.indrelid = %s::regclass
        ORDER BY c.contype NULLS LAST, i.indexrelid
        """,
        (PARENT,),
    ).fetchall()
    table = qualified(name)
    statements: list[sql.Composed] = []
    for definition, contype, columns in rows:
        assert isinstance(definition, str) and isinstance(columns, list)
        if contype in ("p", "u"):
            kind = sql.SQL("PRIMARY KEY" if contype == "p" else "UNIQUE")
            statements.append(
                sql.SQL("ALTER TABLE {} ADD {} ({})").format(
                    table, kind, sql.SQL(", ").join(map(sql.Identifier, columns))
                )
            )
            continue
        head = _INDEX_HEAD.match(definition)
        if head is None:
            raise RuntimeError(f"unexpected index definition on {PARENT}: {definition}")
        unique = "UNIQUE " if head.group(1) else ""
        statements.append(
            sql.SQL("CREATE {}INDEX ON {} {}").format(
                sql.SQL(unique), table, sql.SQL(definition[head.end() :])
            )
        )
    return statements


def rename_build(conn: Conn, *, name: str, final: str) -> None:
    """Give everything named after the build (`load_<sid>...`: tables, chunks, indexes,
    constraints) the partition's name (`part_<p>...`)."""
    relations = conn.execute(
        """
        SELECT c.relname, c.relkind FROM pg_class AS c
        WHERE c.relnamespace = %s::regnamespace AND c.relkind IN ('r', 'p', 'i', 'I')
          AND (c.relname = %s OR starts_with(c.relname, %s))
        """,
        (SCHEMA, name, f"{name}_"),
    ).fetchall()
    constraints = conn.execute(
        """
        SELECT k.conname, c.relname FROM pg_constraint AS k JOIN pg_class AS c ON c.oid = k.conrelid
        WHERE c.relnamespace = %s::regnamespace AND starts_with(k.conname, %s)
          AND (c.relname = %s OR starts_with(c.relname, %s))
          AND k.contype = 'c'
        """,
        (SCHEMA, f"{name}_", name, f"{name}_"),
    ).fetchall()
    renamed = {str(table): final + str(table)[len(name) :] for table, kind in relations
               if kind in ("r", "p")}  # fmt: skip
    for constraint, table in constraints:
        conn.execute(
            sql.SQL("ALTER TABLE {} RENAME CONSTRAINT {} TO {}").format(
                qualified(str(table)),
                sql.Identifier(str(constraint)),
                sql.Identifier(final + str(constraint)[len(name) :]),
            )
        )
    for relation, kind in relations:
        what = "INDEX" if kind in ("i", "I") else "TABLE"
        conn.execute(
            sql.SQL("ALTER {} {} RENAME TO {}").format(
                sql.SQL(what),
                qualified(str(relation)),
                sql.Identifier(renamed.get(str(relation), final + str(relation)[len(name) :])),
            )
        )


# The columns queries filter and join on (bbox, source, type, id). The statistics of
# `metadata` (jsonb: the costliest, half of ANALYZE's time) come with autovacuum, which
# analyses the new partition again anyway once its inserts are counted at commit.
ANALYZED_COLUMNS = ("gid", "geom", "geometry_type", "source_id")


def analyze(conn: Conn, *, name: str) -> None:
    """Statistics of the new table for the planner (which reads each partition's own)."""
    conn.execute(
        sql.SQL("ANALYZE {} ({})").format(
            qualified(name), sql.SQL(", ").join(map(sql.Identifier, ANALYZED_COLUMNS))
        )
    )


def lock_for_swap(conn: Conn) -> None:
    """Take the swap's locks, always in this order (core_source, then core_geometry).

    ATTACH adds the foreign key to the new partition, which needs SHARE ROW EXCLUSIVE on
    core_source; taking it first (rather than after our own INSERT into core_source)
    means two loads (or a load and a compaction) queue here instead of deadlocking.
    SHARE UPDATE EXCLUSIVE on the parent is what ATTACH needs; it lets readers and
    writers of core_geometry through.
    """
    conn.execute(sql.SQL("SET LOCAL lock_timeout = {}").format(sql.Literal(LOCK_TIMEOUT)))
    conn.execute("LOCK TABLE public.core_source IN SHARE ROW EXCLUSIVE MODE")
    conn.execute(f"LOCK TABLE {PARENT} IN SHARE UPDATE EXCLUSIVE MODE")


@dataclass(frozen=True)
class Part:
    """A row of the catalog: one partition of core_geometry (not part_0)."""

    name: str
    values: list[int]
    sources: list[int]
    rows: int


def parts(conn: Conn, *, source_id: int | None = None) -> list[Part]:
    """The catalog's parts (those holding `source_id`, if given), oldest first."""
    where = sql.SQL("WHERE {} = ANY(sources)").format(sql.Literal(int(source_id))) if (
        source_id is not None
    ) else sql.SQL("")  # fmt: skip
    rows = conn.execute(
        sql.SQL("SELECT name, parts, sources, rows FROM {} {} ORDER BY parts[1]").format(
            sql.SQL(CATALOG), where
        )
    ).fetchall()
    return [Part(str(n), list(v), list(s), int(str(r))) for n, v, s, r in rows]  # type: ignore[call-overload]


def detach_and_drop(conn: Conn, *, name: str) -> None:
    """Detach a part from core_geometry and drop it (ACCESS EXCLUSIVE on the parent, briefly)."""
    conn.execute(
        sql.SQL("ALTER TABLE {} DETACH PARTITION {}").format(sql.SQL(PARENT), qualified(name))
    )
    conn.execute(sql.SQL("DROP TABLE {}").format(qualified(name)))
    conn.execute(sql.SQL("DELETE FROM {} WHERE name = %s").format(sql.SQL(CATALOG)), (name,))


def remove_source_rows(conn: Conn, *, source_id: int) -> int:
    """Remove a source's rows before its re-import's part is attached; returns how many
    were in shared parts or part_0 (deleted there: a part of its own is dropped whole).

    Call after `lock_for_swap`, in the load's transaction.
    """
    removed = 0
    for part in parts(conn, source_id=source_id):
        if part.sources == [source_id]:
            detach_and_drop(conn, name=part.name)
            continue
        deleted = conn.execute(
            sql.SQL("DELETE FROM {} WHERE source_id = %s").format(qualified(part.name)),
            (int(source_id),),
        ).rowcount
        conn.execute(
            sql.SQL(
                "UPDATE {} SET sources = array_remove(sources, %s), rows = greatest(rows - %s, 0)"
                " WHERE name = %s"
            ).format(sql.SQL(CATALOG)),
            (int(source_id), max(deleted, 0), part.name),
        )
        removed += max(deleted, 0)
    deleted = conn.execute(
        sql.SQL("DELETE FROM {} WHERE source_id = %s").format(qualified(PART_ZERO)),
        (int(source_id),),
    ).rowcount
    return removed + max(deleted, 0)


def attach(conn: Conn, *, name: str, part: int, source_id: int, rows: int) -> str:
    """Make the build table `name` the partition of the new part `part`; returns its name.

    Call after `lock_for_swap`, in the load's transaction (after `remove_source_rows`
    for a re-import).
    """
    final = partition_name(part)
    rename_build(conn, name=name, final=final)
    conn.execute(
        sql.SQL("ALTER TABLE {} ATTACH PARTITION {} FOR VALUES IN ({})").format(
            sql.SQL(PARENT), qualified(final), sql.Literal(int(part))
        )
    )
    conn.execute(
        sql.SQL("INSERT INTO {} (name, parts, sources, rows) VALUES (%s, %s, %s, %s)").format(
            sql.SQL(CATALOG)
        ),
        (final, [int(part)], [int(source_id)], int(rows)),
    )
    return final
