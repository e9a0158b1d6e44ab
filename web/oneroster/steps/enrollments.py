"""enrollments.csv: checked, mirrored into oneroster_enrollment (every role), then each enrollment of role
student becomes an enrollment row (oneroster_student_enrollment maps one to the other).

Other roles (teacher, ...) stay in the mirror only: a step that uses them reads oneroster_enrollment by role.
"""

from __future__ import annotations

from web.oneroster.staging import Staging

DATE = "'^[1-9][0-9]{3}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$'"


def enrollments(job: Staging) -> None:
    job.checked(
        "enrollments",
        "",
        f"""
      when s.class_sourced_id = '' then 'missing classSourcedId'
      when s.user_sourced_id = '' then 'missing userSourcedId'
      when s.begin_date <> '' and not (s.begin_date ~ {DATE} and oneroster_is_datetime(s.begin_date))
        then 'bad date in beginDate ' || quote_literal(s.begin_date)
      when s.end_date <> '' and not (s.end_date ~ {DATE} and oneroster_is_datetime(s.end_date))
        then 'bad date in endDate ' || quote_literal(s.end_date)
      when s.begin_date <> '' and s.end_date <> '' and s.end_date < s.begin_date
        then 'endDate ' || s.end_date || ' is before beginDate ' || s.begin_date
      when (s.begin_date <> '' and s.begin_date not between '1900-01-01' and '2199-12-31')
           or (s.end_date <> '' and s.end_date not between '1900-01-01' and '2199-12-31')
        then 'enrollment dates out of range: outside 1900-01-01 to 2199-12-31'
      when lower(s.role) = 'student'
           and not exists (select from oneroster_class c where c.source = %(source)s and c.sourced_id = s.class_sourced_id)
        then 'unknown class ' || quote_literal(s.class_sourced_id)
    """,
    )
    job.upsert_mirror(
        "enrollments",
        "oneroster_enrollment",
        "enrollments",
        ["class_sourced_id", "user_sourced_id", "role", "begin_date", "end_date"],
        """
      select %(source)s, sourced_id, class_sourced_id, user_sourced_id, lower(role),
             nullif(begin_date, '')::date, nullif(end_date, '')::date
        from v_enrollments where reason is null and not deleting""",
    )
    student_enrollments(job)


def student_enrollments(job: Staging) -> None:
    """Makes enrollment match the source's enrollments of role student (of a student and class it knows),
    writing only differences: a reimport writes nothing."""
    job.x("""
      create temp table enrollment_plan on commit drop as
      select e.sourced_id, st.student_profile_id, c.course_id, e.begin_date, e.end_date, m.enrollment_id
        from oneroster_enrollment e
        join oneroster_student st on st.source = e.source and st.sourced_id = e.user_sourced_id
        join oneroster_class c on c.source = e.source and c.sourced_id = e.class_sourced_id
        left join oneroster_student_enrollment m on m.source = e.source and m.sourced_id = e.sourced_id
       where e.source = %(source)s and e.role = 'student'
    """)
    job.summary.count(
        "enrollment",
        "deleted",
        job.x("""
      delete from enrollment where id in (
        select m.enrollment_id from oneroster_student_enrollment m
         where m.source = %(source)s
           and not exists (select from enrollment_plan p where p.sourced_id = m.sourced_id))
    """),
    )
    job.summary.count(
        "enrollment",
        "updated",
        job.x("""
      update enrollment e
         set student_profile_id = p.student_profile_id, course_id = p.course_id, start_on = p.begin_date,
             end_on = p.end_date
        from enrollment_plan p
       where e.id = p.enrollment_id
         and (e.student_profile_id, e.course_id, e.start_on, e.end_on)
             is distinct from (p.student_profile_id, p.course_id, p.begin_date, p.end_date)
    """),
    )
    new = job.x("""
      create temp table enrollment_new on commit drop as
      select p.sourced_id, p.student_profile_id, p.course_id, p.begin_date, p.end_date,
             nextval(pg_get_serial_sequence('enrollment', 'id')) as id
        from enrollment_plan p where p.enrollment_id is null
    """)
    if new:
        job.summary.count(
            "enrollment",
            "inserted",
            job.x(
                "insert into enrollment (id, student_profile_id, course_id, start_on, end_on)"
                " select id, student_profile_id, course_id, begin_date, end_date from enrollment_new"
            ),
        )
        job.summary.count(
            "enrollment mappings",
            "inserted",
            job.x(
                "insert into oneroster_student_enrollment (source, sourced_id, enrollment_id)"
                " select %(source)s, sourced_id, id from enrollment_new"
            ),
        )
