"""The Alembic migrations: env.py, the revisions in versions/ and the SQL frozen beside them.

`alembic_config()` is the configuration `weekly-trends migrate` and `downgrade` run with: this directory
as the script location, wherever the package is (a checkout or an installed wheel), so no alembic.ini
is needed. alembic.ini at the checkout's top serves the `alembic` command line there.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from alembic.config import Config

SCRIPT_LOCATION = Path(__file__).resolve().parent


def alembic_config(database_url: str | None = None) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(SCRIPT_LOCATION))
    config.set_main_option("path_separator", "os")
    if database_url is not None:
        config.attributes["database_url"] = database_url
    return config
