"""The per-file steps: one module per OneRoster file the import reads, each checking its staged rows and applying them.

Each step is a function of the import (web.oneroster.staging.Staging), run by importer.Import.run() in
dependency order, so a file is validated against what the import has already written:

- categories.py: categories.csv -> oneroster_category
- classes.py: classes.csv -> oneroster_class and course
- users.py: users.csv (and roles.csv, OneRoster 1.2) -> oneroster_student and student_profile,
  oneroster_guardian and guardian, guardian_student
- demographics.py: demographics.csv (optional) -> student_profile.birth_date
- enrollments.py: enrollments.csv, checked only (the product has no enrollments)
- line_items.py: lineItems.csv -> oneroster_line_item
- results.py: results.csv -> oneroster_result (the scores themselves: web/oneroster/derivation.py)

The files the import does not read (orgs, academicSessions, courses...) have no step:
the manifest lists them and reader.py ignores them.
"""
