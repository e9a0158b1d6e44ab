"""The import's entry points; the code is in staging.py for now (moved, unchanged, before it is split)."""

from web.oneroster.staging import (
    KEPT_BAD_ROWS,
    BadRow,
    BadRowsRefused,
    Import,
    Options,
    Summary,
    import_oneroster,
)

__all__ = ["KEPT_BAD_ROWS", "BadRow", "BadRowsRefused", "Import", "Options", "Summary", "import_oneroster"]
