"""lineItems.csv: checked against the classes and categories already applied, then mirrored into oneroster_line_item."""

from __future__ import annotations

from web.oneroster.staging import Staging


def line_items(job: Staging) -> None:
    job.checked(
        "lineItems",
        "",
        job.printable({"title": "title"})
        + """
      when not exists (select from oneroster_class c where c.source = %(source)s and c.sourced_id = s.class_sourced_id)
        then 'unknown class ' || quote_literal(s.class_sourced_id)
      when s.category_sourced_id <> '' and not exists (select from oneroster_category c
            where c.source = %(source)s and c.sourced_id = s.category_sourced_id)
        then 'unknown category ' || quote_literal(s.category_sourced_id)
      when s.result_value_max <> '' and not oneroster_is_number(s.result_value_max)
        then 'bad number in resultValueMax ' || quote_literal(s.result_value_max)
      when nullif(s.result_value_max, '')::numeric <= 0
        then 'resultValueMax must be above 0, found ' || s.result_value_max
      when s.due_date <> '' and not oneroster_is_datetime(s.due_date)
        then 'bad date in dueDate ' || quote_literal(s.due_date)
      when s.due_date <> '' and substr(s.due_date, 1, 10) not between '1900-01-02' and '2199-12-30'
        then 'dueDate out of range: ' || quote_literal(s.due_date) || ', outside 1900-01-02 to 2199-12-30'
      when s.assign_date <> '' and not oneroster_is_datetime(s.assign_date)
        then 'bad date in assignDate ' || quote_literal(s.assign_date)
    """,
    )
    job.upsert_mirror(
        "line items",
        "oneroster_line_item",
        "lineItems",
        ["title", "class_sourced_id", "category_sourced_id", "result_value_max", "assign_date", "due_date"],
        """
      select %(source)s, sourced_id, title, class_sourced_id, nullif(category_sourced_id, ''),
             nullif(result_value_max, '')::numeric, nullif(assign_date, ''), nullif(due_date, '')
        from v_lineitems where reason is null and not deleting""",
    )
