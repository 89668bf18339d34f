"""core_geometry's partitions: one per source, built standalone and attached whole.

Why partitions (migration 0003 made `core_geometry` LIST-partitioned by `source_id`):
inserting into a table that already has a GIST index maintains the index row by row,
which costs far more than building it once over sorted data, and gets slower as the
table grows. An import therefore never inserts into the shared table. In one
transaction it

1. creates a fresh table `core_geometry_parts.load_<sid>` with the parent's columns
   and a `CHECK (source_id = N)`, and no index;
2. COPYs the features into it with FREEZE (allowed because the table was created in
   the same transaction: rows are written frozen, so neither the index builds nor
   later readers set hint bits, and no later vacuum has to freeze them);
3. builds the parent's indexes on it (the GIST index over rows already in Hilbert
   order, from staging, builds fastest) and ANALYZEs it;
4. takes the short locks of the swap, inserts (or updates) the `core_source` row,
   detaches and drops the partition the source had (a re-import), and ATTACHes the
   new table as the source's partition. The CHECK constraint proves the partition
   bound, so ATTACH skips its validation scan; the indexes match the parent's, so
   ATTACH adopts them instead of building new ones. The foreign key to core_source
   is checked by ATTACH, with one scan of the new rows (about 80 ms a million): it
   cannot be checked earlier, since the source's row appears only here.

Readers never see a half-loaded source: the partition and the source row appear (or
are replaced) at the same commit, and a failure at any point rolls all of it back.
Steps 1-3 lock only the new table, so loads run side by side and readers of
`core_geometry` are not blocked; step 4 orders its locks (core_source, then
core_geometry) so that concurrent loads queue instead of deadlocking, and holds them
for milliseconds plus that foreign-key scan. The cost of a load depends on its own
size, not on how many rows other sources hold.

A large import is built in parallel instead (`load_chunks`): one PostgreSQL backend
parses the rows' jsonb and builds their GIST index on one core, so a million points
took 4.8 s to load alone and 3.4 s in two chunks on two cores. The rows are split into
contiguous chunks, each COPYed, indexed and analysed by its own connection in its own
transaction (FREEZE again), with a block of gids reserved up front so that each chunk
holds one gid range. The source's partition is then itself partitioned BY RANGE (gid),
the chunks attached to it in the swap's transaction. The chunks are committed tables
before the swap, invisible through core_geometry and guarded by an advisory lock; a
failed load drops them, and a crashed load's (lock free) are dropped by `sweep` at the
next load.

Deleting a source deletes its rows through the foreign key (ON DELETE CASCADE); its
emptied partition is detached and dropped by `sweep` at the next load, if the brief
lock that takes comes at once.

Each partition has every index of the parent (partitioned indexes cascade): the
`source_id` btree is redundant inside a single-source partition but keeps the
contract's index; rows written by plain INSERTs (the REST API, Django) for a source
without a partition land in the DEFAULT partition, where it is what finds them.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg import Connection, sql

SCHEMA = "core_geometry_parts"
PARENT = "public.core_geometry"
DEFAULT_PARTITION = f"{SCHEMA}.source_default"
# The parent's columns (migration 0003), for a standalone table that can become a
# partition. Spelled out instead of `LIKE core_geometry`, which would hold a lock on the
# parent for the whole load and so block a concurrent re-import's DETACH behind it.
_GID_DEFAULT = "nextval('public.core_geometry_gid_seq'::regclass)"
_COLUMNS = """
    gid bigint NOT NULL DEFAULT nextval('public.core_geometry_gid_seq'::regclass),
    geom geometry(Geometry, 4326),
    metadata jsonb NOT NULL DEFAULT '{}'::jsonb,
    geometry_type varchar(50),
    source_id integer NOT NULL
"""
COPY_COLUMNS = "(geom, metadata, geometry_type, source_id)"
_INDEX_HEAD = re.compile(r"^CREATE (UNIQUE )?INDEX \S+ ON (?:ONLY )?\S+ ")
# Wait at most this long for the locks of the swap (a long query on core_geometry or
# an open transaction writing core_source); past it the load is retried later.
LOCK_TIMEOUT = "30s"

Conn = Connection[tuple[object, ...]]


def partition_name(source_id: int) -> str:
    """The table name of a source's partition (in SCHEMA)."""
    return f"source_{int(source_id)}"


def build_name(sid: str) -> str:
    """The name of the standalone table an import builds (in SCHEMA), from the import's sid."""
    if not re.fullmatch(r"[a-z0-9_]{1,50}", sid):
        raise ValueError(f"not a usable sid for a table name: {sid!r}")
    return f"load_{sid}"


def qualified(name: str) -> sql.Composed:
    """`core_geometry_parts.<name>`, quoted."""
    return sql.SQL("{}.{}").format(sql.Identifier(SCHEMA), sql.Identifier(name))


def create_build_table(
    conn: Conn, *, name: str, source_id: int, gids: tuple[int, int] | None = None
) -> None:
    """A table with the parent's columns, holding only `source_id` rows, without indexes.

    With `gids` (a chunk's range, end excluded) the gids come from a sequence of the
    table's own over that range, and the CHECK also proves the range to the chunk's
    RANGE partition bound.
    """
    check = sql.SQL("source_id = {}").format(sql.Literal(int(source_id)))
    columns = sql.SQL(_COLUMNS)
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
        columns = sql.SQL(_COLUMNS.replace(_GID_DEFAULT, own))
        check = sql.SQL("{} AND gid >= {} AND gid < {}").format(
            check, sql.Literal(low), sql.Literal(high)
        )
    conn.execute(
        sql.SQL("CREATE TABLE {} ({}, CONSTRAINT {} CHECK ({}))").format(
            qualified(name), columns, sql.Identifier(f"{name}_source_check"), check
        )
    )


def finish_chunk(conn: Conn, *, name: str) -> None:
    """After a chunk's COPY: its gids default to the shared sequence again, its own goes."""
    conn.execute(
        sql.SQL("ALTER TABLE {} ALTER COLUMN gid SET DEFAULT {}").format(
            qualified(name), sql.SQL(_GID_DEFAULT)
        )
    )
    conn.execute(sql.SQL("DROP SEQUENCE {}").format(qualified(f"{name}_gid")))


def create_chunked_table(conn: Conn, *, name: str, chunks: list[tuple[str, int, int]]) -> None:
    """A table partitioned BY RANGE (gid), the chunks `(name, first gid, end)` attached."""
    conn.execute(
        sql.SQL("CREATE TABLE {} ({}) PARTITION BY RANGE (gid)").format(
            qualified(name), sql.SQL(_COLUMNS)
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
    """Drop what a load named `name` built and left (chunks, their sequences); autocommit."""
    rows = conn.execute(
        """
        SELECT c.relname, c.relkind FROM pg_class AS c
        WHERE c.relnamespace = %s::regnamespace AND c.relkind IN ('r', 'p', 'S')
          AND (c.relname = %s OR starts_with(c.relname, %s))
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

    A parallel load's chunks are committed tables before its swap; `sweep` leaves alone
    the builds whose lock is held, and drops the others (their load died: its session,
    and so its lock, ended with it). Released explicitly: the connection goes back to a
    pool, where a session lock would outlive the load.
    """
    key = f"{SCHEMA}.{name}"
    conn.execute("SELECT pg_advisory_lock(hashtext(%s))", (key,))
    try:
        yield
    finally:
        conn.execute("SELECT pg_advisory_unlock(hashtext(%s))", (key,))


def sweep(conn: Conn) -> list[str]:
    """Drop what crashed loads left (`load_<sid>...` relations whose build lock is free),
    and the emptied partitions of deleted sources; autocommit."""
    rows = conn.execute(
        """
        SELECT DISTINCT substring(c.relname FROM '^load_(src_[a-z0-9]+)')
        FROM pg_class AS c
        WHERE c.relnamespace = %s::regnamespace AND c.relkind IN ('r', 'p', 'S')
          AND c.relname LIKE 'load\\_src\\_%%' AND NOT c.relispartition
        """,
        (SCHEMA,),
    ).fetchall()
    swept = []
    for (sid,) in rows:
        if not sid:
            continue
        name = build_name(str(sid))
        key = f"{SCHEMA}.{name}"
        taken = conn.execute("SELECT pg_try_advisory_lock(hashtext(%s))", (key,)).fetchone()
        if not (taken and taken[0]):
            continue  # a load is building it right now
        try:
            drop_build(conn, name=name)
        finally:
            conn.execute("SELECT pg_advisory_unlock(hashtext(%s))", (key,))
        swept.append(str(sid))
    return swept + drop_orphan_partitions(conn)


def drop_orphan_partitions(conn: Conn) -> list[str]:
    """Detach and drop the (emptied) partitions of deleted sources; autocommit.

    Deleting a source deletes its rows through the foreign key and leaves its partition
    empty. DETACH needs a moment of ACCESS EXCLUSIVE on core_geometry: taken only if it
    comes at once (lock_timeout), else left for the next load.
    """
    orphans = conn.execute(
        """
        SELECT c.oid::regclass::text FROM pg_inherits AS i JOIN pg_class AS c ON c.oid = i.inhrelid
        WHERE i.inhparent = %s::regclass AND c.relnamespace = %s::regnamespace
          AND c.relname ~ '^source_[0-9]+$'
          AND NOT EXISTS (SELECT FROM public.core_source AS s
                          WHERE 'source_' || s.id = c.relname)
        """,
        (PARENT, SCHEMA),
    ).fetchall()
    dropped = []
    for (table,) in orphans:
        try:
            with conn.transaction():
                conn.execute("SET LOCAL lock_timeout = '200ms'")
                conn.execute(sql.SQL("ALTER TABLE {} DETACH PARTITION {}").format(
                    sql.SQL(PARENT), sql.SQL(str(table))
                ))  # fmt: skip
                conn.execute(sql.SQL("DROP TABLE {}").format(sql.SQL(str(table))))
            dropped.append(str(table))
        except psycopg.errors.LockNotAvailable:
            continue
    return dropped


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
    constraints) the partition's name (`source_<id>...`)."""
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
    means two loads queue here instead of deadlocking. SHARE UPDATE EXCLUSIVE on the
    parent is what ATTACH needs; it lets readers and writers of core_geometry through.
    """
    conn.execute(sql.SQL("SET LOCAL lock_timeout = {}").format(sql.Literal(LOCK_TIMEOUT)))
    conn.execute("LOCK TABLE public.core_source IN SHARE ROW EXCLUSIVE MODE")
    conn.execute(f"LOCK TABLE {PARENT} IN SHARE UPDATE EXCLUSIVE MODE")


def partition_of(conn: Conn, source_id: int) -> str | None:
    """The partition that holds `source_id` (schema-qualified), if it has one of its own."""
    row = conn.execute(
        """
        SELECT c.oid::regclass::text
        FROM pg_inherits AS i JOIN pg_class AS c ON c.oid = i.inhrelid
        WHERE i.inhparent = %s::regclass
          AND pg_get_expr(c.relpartbound, c.oid) = %s
        """,
        (PARENT, f"FOR VALUES IN ({int(source_id)})"),
    ).fetchone()
    return str(row[0]) if row else None


def replace_partition(conn: Conn, *, name: str, source_id: int) -> int:
    """Make the build table `name` the partition of `source_id`, dropping what it replaces.

    Call after `lock_for_swap`, in the load's transaction. The source's old rows go: its
    old partition (detached and dropped; DETACH needs a brief ACCESS EXCLUSIVE lock on
    the parent, so only re-imports take it) and any rows of it in the default partition.
    Returns how many old rows the default partition held.
    """
    old = partition_of(conn, source_id)
    if old is not None:
        conn.execute(sql.SQL("ALTER TABLE {} DETACH PARTITION {}").format(
            sql.SQL(PARENT), sql.SQL(old)
        ))  # fmt: skip
        conn.execute(sql.SQL("DROP TABLE {}").format(sql.SQL(old)))
    removed = conn.execute(
        sql.SQL("DELETE FROM {} WHERE source_id = %s").format(sql.SQL(DEFAULT_PARTITION)),
        (int(source_id),),
    ).rowcount
    final = partition_name(source_id)
    rename_build(conn, name=name, final=final)
    conn.execute(
        sql.SQL("ALTER TABLE {} ATTACH PARTITION {} FOR VALUES IN ({})").format(
            sql.SQL(PARENT), qualified(final), sql.Literal(int(source_id))
        )
    )
    return max(removed, 0)
