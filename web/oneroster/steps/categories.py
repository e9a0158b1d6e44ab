"""categories.csv: checked, then mirrored into oneroster_category (a line item's kind comes from its category)."""

from __future__ import annotations

from web.oneroster.staging import Staging


def categories(job: Staging) -> None:
    job.checked("categories", "", "when s.title = '' then 'missing title'\n" + job.printable({"title": "title"}))
    job.upsert_mirror(
        "categories",
        "oneroster_category",
        "categories",
        ["title"],
        "select %(source)s, sourced_id, title from v_categories where reason is null and not deleting",
    )
