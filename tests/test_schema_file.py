"""db/schema.sql is the schema at head: a migration that changes the schema must regenerate it (`make schema`)."""

from __future__ import annotations

import difflib

import psycopg
import pytest

from db.schema_dump import SCHEMA_FILE, SCHEMA_SERVER_MAJOR, dump_schema


def test_schema_file_is_the_migrated_schema(db_url):
    with psycopg.connect(db_url) as conn:
        major = conn.info.server_version // 10000
    if major != SCHEMA_SERVER_MAJOR:
        pytest.skip(
            f"db/schema.sql is read off PostgreSQL {SCHEMA_SERVER_MAJOR} (views deparse per version); "
            f"this server is {major}: the PostgreSQL {SCHEMA_SERVER_MAJOR} pass checks it"
        )
    current = dump_schema(db_url, major)
    committed = SCHEMA_FILE.read_text()
    if current != committed:
        diff = "".join(
            difflib.unified_diff(
                committed.splitlines(True),
                current.splitlines(True),
                "db/schema.sql (committed)",
                "migrated database",
                n=1,
            )
        )
        pytest.fail(f"db/schema.sql differs from a database migrated to head: run `make schema`\n{diff[:4000]}")


def test_every_function_body_names_its_file():
    assert "(not found in db/)" not in SCHEMA_FILE.read_text()
