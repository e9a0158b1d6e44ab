"""demographics.csv (optional): a student's birthDate becomes student_profile.birth_date, from which
guardian_link_state() ends a guardian's access at the rights age (issue 25). Other columns are not read."""

from __future__ import annotations

from web.oneroster.staging import Staging

# YYYY-MM-DD whose day exists in its month (a CASE in this order never casts a malformed value).
DATE_REASONS = r"""
      when s.birth_date <> '' and s.birth_date !~ '^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$'
        then 'birthDate must be a date written YYYY-MM-DD'
      when s.birth_date <> '' and substr(s.birth_date, 9, 2)::integer > extract(day from
             make_date(substr(s.birth_date, 1, 4)::integer, substr(s.birth_date, 6, 2)::integer, 1)
             + interval '1 month' - interval '1 day')
        then 'birthDate is not a day of the calendar'
      when s.birth_date <> '' and s.birth_date < '1900-01-01' then 'birthDate before 1900'
"""


def demographics(job: Staging) -> None:
    # A demographics row's sourcedId is its user's; rows of users who are not students are ignored.
    job.checked("demographics", "", DATE_REASONS)
    job.summary.count(
        "student birth dates",
        "updated",
        job.x("""
      update student_profile p
         set birth_date = case when v.deleting then null else nullif(v.birth_date, '')::date end
        from v_demographics v join oneroster_student m on m.source = %(source)s and m.sourced_id = v.sourced_id
       where p.id = m.student_profile_id and v.reason is null
         and p.birth_date is distinct from (case when v.deleting then null else nullif(v.birth_date, '')::date end)
    """),
    )
