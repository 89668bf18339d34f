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
   ATTACH adopts them instead of building new ones.

Readers never see a half-loaded source: the partition and the source row appear (or
are replaced) at the same commit, and a failure at any point rolls all of it back.
Steps 1-3 lock only the new table, so loads run side by side and readers of
`core_geometry` are not blocked; step 4 orders its locks (core_source, then
core_geometry) so that concurrent loads queue instead of deadlocking, and holds them
for milliseconds. The cost of a load depends on its own size, not on how many rows
other sources hold.

Each partition has every index of the parent (partitioned indexes cascade): the
`source_id` btree is redundant inside a single-source partition but keeps the
contract's index; rows written by plain INSERTs (the REST API, Django) for a source
without a partition land in the DEFAULT partition, where it is what finds them.
"""

from __future__ import annotations

import re

from psycopg import Connection, sql

SCHEMA = "core_geometry_parts"
PARENT = "public.core_geometry"
DEFAULT_PARTITION = f"{SCHEMA}.source_default"
# The parent's columns (migration 0003), for a standalone table that can become a
# partition. Spelled out instead of `LIKE core_geometry`, which would hold a lock on the
# parent for the whole load and so block a concurrent re-import's DETACH behind it.
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


def create_build_table(conn: Conn, *, name: str, source_id: int) -> None:
    """A table with the parent's columns, holding only `source_id` rows, without indexes."""
    check = sql.Identifier(f"{name}_source_check")
    conn.execute(
        sql.SQL("CREATE TABLE {} ({}, CONSTRAINT {} CHECK (source_id = {}))").format(
            qualified(name), sql.SQL(_COLUMNS), check, sql.Literal(int(source_id))
        )
    )


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


def analyze(conn: Conn, *, name: str) -> None:
    """Statistics of the new table (the planner reads each partition's own)."""
    conn.execute(sql.SQL("ANALYZE {}").format(qualified(name)))


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
    conn.execute(
        sql.SQL("ALTER TABLE {} RENAME TO {}").format(qualified(name), sql.Identifier(final))
    )
    # Its indexes and constraints are named after the build table: after the partition.
    for kind, old_name in conn.execute(
        """
        SELECT 'INDEX', c.relname FROM pg_index AS i JOIN pg_class AS c ON c.oid = i.indexrelid
        WHERE i.indrelid = %(table)s::regclass AND starts_with(c.relname, %(prefix)s)
          AND NOT EXISTS (SELECT FROM pg_constraint AS k WHERE k.conindid = i.indexrelid)
        UNION ALL
        SELECT 'CONSTRAINT', conname FROM pg_constraint
        WHERE conrelid = %(table)s::regclass AND starts_with(conname, %(prefix)s)
        """,
        {"table": f"{SCHEMA}.{final}", "prefix": f"{name}_"},
    ).fetchall():
        assert isinstance(old_name, str)
        new_name = sql.Identifier(final + old_name[len(name) :])
        if kind == "INDEX":
            statement = sql.SQL("ALTER INDEX {} RENAME TO {}").format(qualified(old_name), new_name)
        else:
            statement = sql.SQL("ALTER TABLE {} RENAME CONSTRAINT {} TO {}").format(
                qualified(final), sql.Identifier(old_name), new_name
            )
        conn.execute(statement)
    conn.execute(
        sql.SQL("ALTER TABLE {} ATTACH PARTITION {} FOR VALUES IN ({})").format(
            sql.SQL(PARENT), qualified(final), sql.Literal(int(source_id))
        )
    )
    return max(removed, 0)
