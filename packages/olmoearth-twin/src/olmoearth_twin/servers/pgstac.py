"""pgstac inside the twin's PostgreSQL: create the database, migrate, configure, load STAC JSON.

Uses pypgstac's own Python API (``Migrate``, ``Loader`` with ``Methods.upsert``): the same code the
``pypgstac migrate`` / ``pypgstac load ... --method upsert`` commands run, without a process start each.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import psycopg
from pypgstac.db import PgstacDB
from pypgstac.load import Loader, Methods
from pypgstac.migrate import Migrate

from olmoearth_twin.servers.postgres import PostgresServer

DATABASE = "pgstac"


def create_pgstac_database(*, server: PostgresServer, database: str = DATABASE) -> str:
    """Create ``database``, run the pgstac migrations and set what stac-fastapi-pgstac expects.

    Sets ``search_path`` to ``pgstac, public`` on the database and pgstac's ``context`` setting to
    ``on`` (so searches carry ``numberMatched``). Returns the pgstac version string (e.g. ``0.10.0``).
    """
    with psycopg.connect(server.dsn(database="postgres"), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{database}"')
    dsn = server.dsn(database=database)
    db = PgstacDB(dsn=dsn)
    try:
        version = Migrate(db).run_migration()
    finally:
        db.close()
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'ALTER DATABASE "{database}" SET search_path TO pgstac, public')
        conn.execute(
            "INSERT INTO pgstac.pgstac_settings (name, value) VALUES ('context', 'on') "
            "ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value"
        )
    return str(version)


def load_collections(*, dsn: str, collections: Iterable[dict[str, Any]] | Path) -> None:
    """Upsert collection documents (an iterable of dicts, or a JSON / ndjson file)."""
    _load(dsn=dsn, source=collections, kind="collections")


def load_items(*, dsn: str, items: Iterable[dict[str, Any]] | Path) -> None:
    """Upsert item documents (an iterable of dicts, or an ndjson file); their collections must exist."""
    _load(dsn=dsn, source=items, kind="items")


def load_queryables(*, dsn: str, queryables: dict[str, Any], collection_ids: list[str]) -> int:
    """Upsert a queryables document for ``collection_ids`` (what ``pypgstac load_queryables`` runs).

    pgstac infers each property's SQL cast from its JSON Schema type. Returns the number loaded.
    """
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute(
            "SELECT pgstac.upsert_queryables(%s::jsonb, %s::text[], NULL, false)",
            (json.dumps(queryables), collection_ids),
        ).fetchone()
    return int(row[0]) if row else 0


def _load(*, dsn: str, source: Iterable[dict[str, Any]] | Path, kind: str) -> None:
    db = PgstacDB(dsn=dsn)
    try:
        loader = Loader(db)
        # pypgstac treats a str as a file name and any other iterable as records.
        payload: Any = str(source) if isinstance(source, Path) else iter(list(source))
        if kind == "collections":
            loader.load_collections(payload, Methods.upsert)
        else:
            loader.load_items(payload, Methods.upsert)
    finally:
        db.close()
