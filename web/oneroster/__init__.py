"""OneRoster 1.1 / 1.2 CSV import: `weekly-trends import oneroster PATH` (docs/oneroster.md).

reader.py reads the set (folder or .zip, manifest, headers, rows with line numbers);
staging.py COPYs each file into a temporary table, checks its rows and collects the bad ones;
steps/ holds one module per OneRoster file (its checks and what it writes); derivation.py writes
the score tables from the results; importer.py runs them in order in one transaction; cli.py is
the command.
"""

from web.oneroster.importer import BadRowsRefused, import_oneroster
from web.oneroster.reader import InputError
from web.oneroster.staging import BadRow, Options, Summary

__all__ = ["BadRow", "BadRowsRefused", "InputError", "Options", "Summary", "import_oneroster"]
