"""users.csv (with roles.csv in OneRoster 1.2): students, guardians and the links between them."""

from __future__ import annotations

from web.oneroster.staging import Staging

# Roles of OneRoster 1.1 and 1.2 (compared lower-case); which of them we import.
KNOWN_ROLES = {
    "administrator",
    "aide",
    "guardian",
    "parent",
    "proctor",
    "relative",
    "student",
    "teacher",
    "counselor",
    "districtadministrator",
    "principal",
    "siteadministrator",
    "systemadministrator",
}
# The roles whose users are guardians: their one home (the statements below take them as %(guardian_roles)s).
GUARDIAN_ROLES = ("parent", "guardian")
KNOWN_ROLES_SQL = "'{" + ",".join(sorted(KNOWN_ROLES)) + "}'"


def users(job: Staging) -> None:
    role_expr = "lower(nullif(t.role, ''))"
    joins = ""
    if job.mode("roles") != "absent":
        job.checked(
            "roles",
            "",
            f"""
          when s.user_sourced_id = '' then 'missing userSourcedId'
          when lower(s.role) <> all({KNOWN_ROLES_SQL}::text[]) then 'unknown role ' || quote_literal(s.role)
        """,
        )
        # Each user's role from roles.csv: student, else one of its guardian roles, else 'other'; the kind is
        # then decided from it below exactly as from users.csv's role column (OneRoster 1.1).
        job.x(
            """
          create temp table user_role on commit drop as
          select user_sourced_id,
                 case when bool_or(lower(role) = 'student') then 'student'
                      else coalesce(min(lower(role)) filter (where lower(role) = any(%(guardian_roles)s)), 'other')
                 end as role
            from v_roles where reason is null and not deleting group by user_sourced_id
        """,
            {"guardian_roles": list(GUARDIAN_ROLES)},
        )
        joins = "left join user_role ur on ur.user_sourced_id = t.sourced_id"
        role_expr = "coalesce(lower(nullif(t.role, '')), ur.role)"
    job.x(
        f"""
      create temp table users_pre on commit drop as
      select u.*, count(*) filter (where u.kind = 'guardian' and lower(u.status) <> 'tobedeleted'
                                     and u.email ~ '^[^@[:space:]]+@[^@[:space:]]+$')
                    over (partition by lower(u.email)) as email_uses
        from (select t.*,
                     case when {role_expr} = 'student' then 'student'
                          when {role_expr} = any(%(guardian_roles)s) then 'guardian'
                          when {role_expr} is not null then 'other'
                          when exists (select from oneroster_student m
                                        where m.source = %(source)s and m.sourced_id = t.sourced_id) then 'student'
                          when exists (select from oneroster_guardian m
                                        where m.source = %(source)s and m.sourced_id = t.sourced_id) then 'guardian'
                          else 'other' end as kind,
                     coalesce(nullif(btrim(concat_ws(' ',
                                coalesce(nullif(t.preferred_given_name, ''), nullif(t.given_name, '')),
                                coalesce(nullif(t.preferred_family_name, ''), nullif(t.family_name, '')))), ''),
                              nullif(t.username, ''), t.sourced_id) as display_name
                from stg_users t {joins}) u
    """,
        {"guardian_roles": list(GUARDIAN_ROLES)},
    )
    job.x("create temp table zone on commit drop as select name from pg_timezone_names")
    job.checked(
        "users",
        "",
        job.printable(
            {
                "given_name": "givenName",
                "family_name": "familyName",
                "preferred_given_name": "preferredGivenName",
                "preferred_family_name": "preferredFamilyName",
                "username": "username",
                "sourced_id": "sourcedId",
            }
        )
        + f"""
      when s.role <> '' and lower(s.role) <> all({KNOWN_ROLES_SQL}::text[])
        then 'unknown role ' || quote_literal(s.role)
      when s.time_zone <> '' and not exists (select from zone z where z.name = s.time_zone)
        then 'unknown time zone ' || quote_literal(s.time_zone)
      when s.kind = 'guardian' and s.email_uses > 1 then 'duplicate email ' || quote_literal(s.email)
      when s.kind = 'guardian' and s.email ~ '^[^@[:space:]]+@[^@[:space:]]+$' and exists (
             select from guardian g join oneroster_guardian m on m.guardian_id = g.id
              where g.email = s.email and m.source = %(source)s and m.sourced_id <> s.sourced_id)
        then 'email ' || quote_literal(s.email) || ' belongs to another guardian of this source'
    """,
        base="users_pre",
    )
    for row in job.cur.execute(
        "select line_no, sourced_id from v_users where reason is null and not deleting and kind = 'guardian'"
        " and email !~ '^[^@[:space:]]+@[^@[:space:]]+$' order by line_no"
    ).fetchall():
        job.summary.warnings.append(
            f"users.csv line {row[0]}: guardian {row[1]} has no valid email;"
            " not imported (a guardian signs in by email)"
        )
    students(job)
    guardians(job)
    links(job)


def students(job: Staging) -> None:
    # Leaving (tobedeleted, not listed by a bulk file, or no longer a student): marked left, never deleted
    # here. Their links, scores and weeks stay as they were (the family sees no change) until
    # weekly-trends purge erases them once WEEKLY_TRENDS_LEFT_GRACE has passed (erase_student(), with a
    # certificate). Only rows not marked yet are written: a reimport writes nothing.
    marked = job.x(f"""
      update student_profile set left_at = now()
       where left_at is null and id in (
        select m.student_profile_id from oneroster_student m
         where m.source = %(source)s
           and m.sourced_id in (select sourced_id from {job.leaving("users", "oneroster_student", "v.kind <> 'student'")}))
    """)
    job.summary.count("students", "updated", marked)
    job.summary.left_students = marked
    # Listed again as a student: no longer left (and the update below renames them as for anyone).
    job.summary.count(
        "students",
        "updated",
        job.x("""
      update student_profile p
         set left_at = null, display_name = v.display_name, time_zone = coalesce(nullif(v.time_zone, ''), p.time_zone)
        from v_users v join oneroster_student m on m.source = %(source)s and m.sourced_id = v.sourced_id
       where p.id = m.student_profile_id and v.reason is null and not v.deleting and v.kind = 'student'
         and p.left_at is not null
    """),
    )
    job.summary.count(
        "students",
        "updated",
        job.x("""
      update student_profile p
         set display_name = v.display_name, time_zone = coalesce(nullif(v.time_zone, ''), p.time_zone)
        from v_users v join oneroster_student m on m.source = %(source)s and m.sourced_id = v.sourced_id
       where p.id = m.student_profile_id and v.reason is null and not v.deleting and v.kind = 'student'
         and (p.display_name, p.time_zone) is distinct from (v.display_name, coalesce(nullif(v.time_zone, ''), p.time_zone))
    """),
    )
    # Students erased before (weekly-trends erase left a tombstone): reported, not brought back, unless
    # --allow-erased, which forgets their tombstones.
    erased = job.x("""
      create temp table users_erased on commit drop as
      select v.sourced_id from v_users v
       where v.reason is null and not v.deleting and v.kind = 'student'
         and not exists (select from oneroster_student m where m.source = %(source)s and m.sourced_id = v.sourced_id)
         and exists (select from erased_source_record e where e.source_hash = erased_source_hash(%(source)s, v.sourced_id))
    """)
    if erased and job.options.allow_erased:
        job.x("""
          delete from erased_source_record
           where source_hash in (select erased_source_hash(%(source)s, sourced_id) from users_erased)
        """)
        job.x("truncate users_erased")
    elif erased:
        job.summary.erased_students = erased
    new = job.x(
        """
      create temp table students_new on commit drop as
      select v.sourced_id, v.display_name, coalesce(nullif(v.time_zone, ''), %(zone)s) as time_zone,
             nextval(pg_get_serial_sequence('student_profile', 'id')) as id
        from v_users v
       where v.reason is null and not v.deleting and v.kind = 'student'
         and not exists (select from oneroster_student m where m.source = %(source)s and m.sourced_id = v.sourced_id)
         and not exists (select from users_erased e where e.sourced_id = v.sourced_id)
    """,
        {"zone": job.options.time_zone},
    )
    if new:
        job.summary.count(
            "students",
            "inserted",
            job.x(
                "insert into student_profile (id, display_name, time_zone) select id, display_name, time_zone"
                " from students_new order by id"
            ),
        )
        job.summary.count(
            "student mappings",
            "inserted",
            job.x(
                "insert into oneroster_student (source, sourced_id, student_profile_id)"
                " select %(source)s, sourced_id, id from students_new"
            ),
        )


def guardians(job: Staging) -> None:
    valid = "v.email ~ '^[^@[:space:]]+@[^@[:space:]]+$'"
    # Leaving: the mapping goes; a guardian the import created goes too once no source maps it. Except a
    # guardian leaving with their children: one whose every child of this source is marked left stays, links
    # and all, until the purge erases the children (erase_student() takes a guardian left with no child).
    leaving = job.leaving("users", "oneroster_guardian", f"v.kind <> 'guardian' or not {valid}")
    job.x(f"""
      create temp table guardians_gone on commit drop as
      select m.sourced_id, m.guardian_id, m.created
        from oneroster_guardian m join {leaving} l on l.sourced_id = m.sourced_id
       where m.source = %(source)s
         and not (l.leaving
                  and exists (select from guardian_student gs join oneroster_student s
                                on s.source = %(source)s and s.student_profile_id = gs.student_profile_id
                               where gs.guardian_id = m.guardian_id)
                  and not exists (select from guardian_student gs join oneroster_student s
                                    on s.source = %(source)s and s.student_profile_id = gs.student_profile_id
                                    join student_profile sp on sp.id = s.student_profile_id
                                   where gs.guardian_id = m.guardian_id and sp.left_at is null))
    """)
    job.summary.count(
        "guardian links",
        "deleted",
        job.x("""
      delete from guardian_student gs using guardians_gone g, oneroster_student s
       where gs.guardian_id = g.guardian_id and s.source = %(source)s and gs.student_profile_id = s.student_profile_id
    """),
    )
    job.summary.count(
        "guardian mappings",
        "deleted",
        job.x("""
      delete from oneroster_guardian m using guardians_gone g
       where m.source = %(source)s and m.sourced_id = g.sourced_id
    """),
    )
    job.summary.count(
        "guardians",
        "deleted",
        job.x("""
      delete from guardian where id in (select guardian_id from guardians_gone where created)
         and not exists (select from oneroster_guardian m where m.guardian_id = guardian.id)
    """),
    )
    job.summary.count(
        "guardians",
        "updated",
        job.x(f"""
      update guardian g set email = v.email, display_name = v.display_name
        from v_users v join oneroster_guardian m on m.source = %(source)s and m.sourced_id = v.sourced_id
       where g.id = m.guardian_id and m.created and v.reason is null and not v.deleting and v.kind = 'guardian'
         and {valid} and (g.email, g.display_name) is distinct from (v.email, v.display_name)
         and not exists (select from guardian o where o.email = v.email and o.id <> g.id)
    """),
    )
    job.x(f"""
      create temp table guardians_new on commit drop as
      select v.sourced_id, v.email, v.display_name, o.id as existing_id,
             case when o.id is null then nextval(pg_get_serial_sequence('guardian', 'id')) else o.id end as id
        from v_users v left join guardian o on o.email = v.email
       where v.reason is null and not v.deleting and v.kind = 'guardian' and {valid}
         and not exists (select from oneroster_guardian m where m.source = %(source)s and m.sourced_id = v.sourced_id)
    """)
    job.summary.count(
        "guardians",
        "inserted",
        job.x(
            "insert into guardian (id, email, display_name) select id, email, display_name from guardians_new"
            " where existing_id is null order by id"
        ),
    )
    job.summary.count(
        "guardian mappings",
        "inserted",
        job.x(
            "insert into oneroster_guardian (source, sourced_id, guardian_id, created)"
            " select %(source)s, sourced_id, id, existing_id is null from guardians_new"
        ),
    )


def links(job: Staging) -> None:
    """guardian_student from agentSourcedIds, in both directions; the links between this source's users are ours."""
    for table in ("oneroster_student", "oneroster_guardian"):
        job.x(f"analyze {table}")  # just written: the planner would take them for empty
    job.x("""
      create temp table links_wanted on commit drop as
      select distinct g.guardian_id, s.student_profile_id
        from (select case when v.kind = 'student' then v.sourced_id else btrim(a) end as student_key,
                     case when v.kind = 'student' then btrim(a) else v.sourced_id end as guardian_key
                from v_users v, unnest(string_to_array(v.agent_sourced_ids, ',')) a
               where v.reason is null and not v.deleting and v.kind in ('student', 'guardian')) l
        join oneroster_student s on s.source = %(source)s and s.sourced_id = l.student_key
        join oneroster_guardian g on g.source = %(source)s and g.sourced_id = l.guardian_key
    """)
    scope = (
        ""
        if job.bulk("users")
        else """
       and (s.sourced_id in (select sourced_id from v_users where reason is null)
            or g.sourced_id in (select sourced_id from v_users where reason is null))"""
    )
    job.summary.count(
        "guardian links",
        "deleted",
        job.x(f"""
      delete from guardian_student gs using oneroster_guardian g, oneroster_student s
       where g.source = %(source)s and s.source = %(source)s
         and gs.guardian_id = g.guardian_id and gs.student_profile_id = s.student_profile_id {scope}
         -- a student marked left keeps their links as they were until the purge erases them
         and not exists (select from student_profile sp where sp.id = s.student_profile_id and sp.left_at is not null)
         and not exists (select from links_wanted w
                          where w.guardian_id = gs.guardian_id and w.student_profile_id = gs.student_profile_id)
    """),
    )
    job.summary.count(
        "guardian links",
        "inserted",
        job.x("""
      insert into guardian_student (guardian_id, student_profile_id)
      select guardian_id, student_profile_id from links_wanted order by 1, 2
      on conflict do nothing
    """),
    )
