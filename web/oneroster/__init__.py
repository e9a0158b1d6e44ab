"""OneRoster 1.1 / 1.2 CSV import: `weekly-trends import oneroster PATH` (docs/oneroster.md).

reader.py reads the set (folder or .zip, manifest, headers, rows with line numbers);
importer.py stages, validates and applies it in one transaction; cli.py is the command.
"""

from .importer import BadRow, BadRowsRefused, Options, Summary, import_oneroster
from .reader import InputError

__all__ = ["BadRow", "BadRowsRefused", "InputError", "Options", "Summary", "import_oneroster"]
