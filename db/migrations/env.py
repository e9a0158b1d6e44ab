"""Alembic environment: psycopg 3, the libpq URI in DATABASE_URL, no ORM metadata."""

from logging.config import dictConfig, fileConfig

import psycopg
from alembic import context
from sqlalchemy import create_engine, pool

from web.connection import connection_kwargs
from web.ops.embedded import database_url

config = context.config
if config.attributes.get("configure_logger", True):
    if config.config_file_name is not None:
        fileConfig(config.config_file_name, disable_existing_loggers=False)
    else:
        # weekly-trends migrate/downgrade (db.migrations.alembic_config(), no alembic.ini): its logging
        dictConfig(
            {
                "version": 1,
                "disable_existing_loggers": False,
                "formatters": {"generic": {"format": "%(levelname)-5.5s [%(name)s] %(message)s"}},
                "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "generic"}},
                "root": {"level": "WARNING", "handlers": ["console"]},
                "loggers": {"alembic": {"level": "INFO"}, "sqlalchemy.engine": {"level": "WARNING"}},
            }
        )


def run_migrations_online() -> None:
    # A caller (tests, the CLI) may pass a URL; otherwise DATABASE_URL or the embedded server.
    url = config.attributes.get("database_url") or database_url()
    # libpq parses the URI itself (sockets in ?host=, service files, sslmode...);
    # SQLAlchemy only wraps the connection.
    # The CLI's connection arguments (web/connection.py: connect_timeout, keepalives, no server-side
    # prepared statements), without a statement_timeout: a migration may rebuild a large table.
    kwargs = connection_kwargs(url, "weekly-trends-migrate")
    engine = create_engine(
        "postgresql+psycopg://", creator=lambda: psycopg.connect(url, **kwargs), poolclass=pool.NullPool
    )
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=None, transaction_per_migration=True)
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    raise SystemExit("Offline (--sql) mode is not supported: the migrations run SQL files through the driver.")
run_migrations_online()
