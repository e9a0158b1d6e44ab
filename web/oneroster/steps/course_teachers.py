"""enrollments.csv's rows with role teacher: course_teacher (who teaches what, issue 27).

The teacher is the users.csv row of the enrollment's userSourcedId, matched to a staff member by email
(case aside); staff members are created by `weekly-trends create-staff`, never by the import. A teacher
with no staff member is a warning. oneroster_teacher_enrollment maps each enrollment to its row, so a
tobedeleted row, a bulk file that no longer lists it, or a role no longer teacher takes the row away, and
a rerun changes nothing. A delta without users.csv keeps the staff member its teacher had before.
course_teacher rows written by SQL are left alone, unless the import maps the same pair.
"""

from __future__ import annotations

from web.oneroster.staging import Staging


def course_teachers(job: Staging) -> None:
    users_staged = "users" in job.readers
    by_email = (
        """
      left join lateral (select m.id from v_users u join staff_member m on lower(m.email) = lower(u.email)
                          where u.sourced_id = e.user_sourced_id and u.reason is null and not u.deleting
                          order by m.id limit 1) s on true"""
        if users_staged
        else "left join lateral (select null::bigint as id) s on true"
    )
    job.x(f"""
      create temp table teacher_enrollments on commit drop as
      select e.line_no, e.sourced_id, e.user_sourced_id, c.course_id, coalesce(s.id, p.staff_member_id) as staff_member_id
        from v_enrollments e
        join oneroster_class c on c.source = %(source)s and c.sourced_id = e.class_sourced_id
        {by_email}
        left join lateral (select p.staff_member_id from oneroster_teacher_enrollment p
                            where p.source = %(source)s and p.user_sourced_id = e.user_sourced_id
                            order by p.sourced_id limit 1) p on true
       where e.reason is null and not e.deleting and lower(e.role) = 'teacher'
    """)
    for line_no, user in job.cur.execute(
        "select line_no, user_sourced_id from teacher_enrollments where staff_member_id is null order by line_no"
    ).fetchall():
        job.summary.warnings.append(
            f"enrollments.csv line {line_no}: teacher {user} has no staff member with their email;"
            " not linked to the class (create the staff member, then import again)"
        )
    job.x("""
      create temp table teacher_pairs_before on commit drop as
      select distinct staff_member_id, course_id from oneroster_teacher_enrollment where source = %(source)s
    """)
    leaving = job.leaving("enrollments", "oneroster_teacher_enrollment", "lower(v.role) <> 'teacher'")
    job.x(f"""
      delete from oneroster_teacher_enrollment m where m.source = %(source)s
         and (m.sourced_id in (select sourced_id from {leaving})
              or m.sourced_id in (select sourced_id from teacher_enrollments where staff_member_id is null))
    """)
    job.x("""
      insert into oneroster_teacher_enrollment (source, sourced_id, user_sourced_id, staff_member_id, course_id)
      select %(source)s, sourced_id, user_sourced_id, staff_member_id, course_id
        from teacher_enrollments where staff_member_id is not null
      on conflict (source, sourced_id) do update
        set (user_sourced_id, staff_member_id, course_id)
          = row(excluded.user_sourced_id, excluded.staff_member_id, excluded.course_id)
        where (oneroster_teacher_enrollment.user_sourced_id, oneroster_teacher_enrollment.staff_member_id,
               oneroster_teacher_enrollment.course_id)
              is distinct from (excluded.user_sourced_id, excluded.staff_member_id, excluded.course_id)
    """)
    job.summary.count(
        "course teachers",
        "deleted",
        job.x("""
      delete from course_teacher t using teacher_pairs_before b
       where t.staff_member_id = b.staff_member_id and t.course_id = b.course_id
         and not exists (select from oneroster_teacher_enrollment m
                          where m.staff_member_id = t.staff_member_id and m.course_id = t.course_id)
    """),
    )
    job.summary.count(
        "course teachers",
        "inserted",
        job.x("""
      insert into course_teacher (staff_member_id, course_id)
      select distinct staff_member_id, course_id from oneroster_teacher_enrollment where source = %(source)s
      on conflict do nothing
    """),
    )
