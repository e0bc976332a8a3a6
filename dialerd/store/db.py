"""Opening the SQLite database and applying versioned migrations.

Migrations are the files ``migrations/NNNN_name.sql``, applied in number order inside one
transaction and recorded in ``schema_migrations``; a database newer than the code
refuses to open rather than being half-understood.
"""

from __future__ import annotations

import re
import sqlite3
from importlib import resources
from pathlib import Path

import aiosqlite

_MIGRATION_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


class SchemaTooNew(RuntimeError):
    """The database was migrated by a newer dialerd than this one."""


def migrations() -> list[tuple[int, str, str]]:
    """(version, file name, SQL) for every migration shipped, in order."""
    found = []
    for entry in resources.files("dialerd.store.migrations").iterdir():
        match = _MIGRATION_NAME.match(entry.name)
        if match:
            found.append((int(match.group(1)), entry.name, entry.read_text(encoding="utf-8")))
    found.sort()
    versions = [v for v, _, _ in found]
    if len(set(versions)) != len(versions):
        raise RuntimeError(f"two migrations share a number: {[n for _, n, _ in found]}")
    return found


async def open_db(path: str | Path) -> aiosqlite.Connection:
    """Open (creating if needed) and migrate the database at `path` (":memory:" works)."""
    conn = await aiosqlite.connect(str(path), isolation_level=None)
    conn.row_factory = aiosqlite.Row
    await conn.execute("PRAGMA foreign_keys = ON")
    await conn.execute("PRAGMA journal_mode = WAL")
    await conn.execute("PRAGMA synchronous = NORMAL")
    await conn.execute("PRAGMA busy_timeout = 5000")
    await conn.execute("PRAGMA temp_store = MEMORY")
    await conn.execute("PRAGMA cache_size = -65536")  # 64 MiB: the dial-queue index stays hot
    await conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " version INTEGER PRIMARY KEY, name TEXT NOT NULL,"
        " applied_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')))"
    )
    # The version is read inside the write lock, so two processes starting together never
    # both apply the same migration.
    shipped = migrations()
    newest = shipped[-1][0] if shipped else 0
    await conn.execute("BEGIN IMMEDIATE")
    try:
        async with conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_migrations") as cur:
            row = await cur.fetchone()
        current = int(row[0]) if row else 0
        if current > newest:
            raise SchemaTooNew(
                f"{path}: schema version {current} is newer than this dialerd ({newest})"
            )
        for version, name, sql in shipped:
            if version <= current:
                continue
            for statement in _split_sql(sql):
                await conn.execute(statement)
            await conn.execute(
                "INSERT INTO schema_migrations(version, name) VALUES (?, ?)", (version, name)
            )
    except BaseException:
        await conn.execute("ROLLBACK")
        await conn.close()
        raise
    await conn.execute("COMMIT")
    return conn


def _split_sql(script: str) -> list[str]:
    """Split a migration into statements (executescript would commit our transaction)."""
    statements: list[str] = []
    buffer = ""
    for line in script.splitlines(keepends=True):
        buffer += line
        if aiosqlite_complete(buffer):
            if buffer.strip():
                statements.append(buffer.strip())
            buffer = ""
    if buffer.strip():
        statements.append(buffer.strip())
    return statements


def aiosqlite_complete(sql: str) -> bool:
    """True when `sql` ends a complete statement (comments and quotes understood)."""
    return sqlite3.complete_statement(sql)
