"""The database's files: the Alembic migrations (db.migrations), shipped in the wheel.

A package of its own, importable as `db` when installed: the released revisions import
`db.migrations.sqlfiles` by that name (their bytes are frozen).
"""
