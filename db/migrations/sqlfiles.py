"""Run SQL files frozen beside a revision.

A revision that installs functions from db/functions/ copies those files into
db/migrations/versions/<revision>/ when it is written (`make freeze-sql
REV=<revision>`), and runs the copies. Replaying history therefore installs
what each revision shipped, never today's db/functions/.
"""

from pathlib import Path

from alembic import op

VERSIONS_DIR = Path(__file__).resolve().parent / "versions"


def frozen_dir(revision: str) -> Path:
    return VERSIONS_DIR / revision


def run_sql(text: str) -> None:
    # Straight to psycopg: SQLAlchemy's text() would read ":name" as a bind
    # parameter, and without parameters psycopg sends the script unparsed.
    op.get_bind().connection.driver_connection.execute(text)


def run_frozen_sql(revision: str, *names: str) -> None:
    """Execute the frozen copies of the named files (all, in name order, if none named)."""
    directory = frozen_dir(revision)
    paths = [directory / n for n in names] if names else sorted(directory.glob("*.sql"))
    for path in paths:
        run_sql(path.read_text())
