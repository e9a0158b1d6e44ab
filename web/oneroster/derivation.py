"""Derivation: the app's score tables written from the mapped rows of the source.

After the per-file steps (web/oneroster/steps/) have applied categories, classes, users and line
items, line_item_kinds() decides each line item's kind (quiz or assignment: the category mapping,
else the category's title) for the results step; derive() then makes quiz_attempt and
assignment_submission match every result of the source by a few set-based statements that touch only
rows that change (IS DISTINCT FROM), so the triggers see a few large statements and a reimport writes
nothing. sequences() and delete_targets() are the score tables' ids and deletes, shared with the
results step.
"""

from __future__ import annotations

from web.oneroster.reader import read_category_map
from web.oneroster.staging import Staging

# The default rule: a category whose title contains one of these words is a quiz.
DEFAULT_QUIZ_PATTERN = "quiz|test"


def line_item_kinds(job: Staging) -> None:
    """li_kind: each line item of the source, its class, its maximum and whether it is a quiz."""
    job.x("create temp table kind_map (key text primary key, kind text not null) on commit drop")
    if job.options.category_map:
        with job.conn.cursor().copy("copy kind_map from stdin") as copy:
            seen = set()
            for key, kind in read_category_map(job.options.category_map):
                if key not in seen:
                    seen.add(key)
                    copy.write_row((key, kind))
    job.x(
        """
      create temp table li_kind on commit drop as
      select li.sourced_id, li.class_sourced_id, li.result_value_max,
             coalesce(by_id.kind, by_title.kind,
                      case when c.title ~* %(pattern)s then 'quiz' else 'assignment' end) as kind
        from oneroster_line_item li
        left join oneroster_category c on c.source = li.source and c.sourced_id = li.category_sourced_id
        left join kind_map by_id on by_id.key = lower(li.category_sourced_id)
        left join kind_map by_title on by_title.key = lower(c.title)
       where li.source = %(source)s
    """,
        {"pattern": DEFAULT_QUIZ_PATTERN},
    )
    job.x("alter table li_kind add primary key (sourced_id)")
    job.x("analyze li_kind")


def sequences(job: Staging) -> dict[str, str]:
    """The id sequences of the two score tables, as regclass literals (looked up once, not per row)."""
    if not job.seq:
        for kind, table in (("quiz", "quiz_attempt"), ("assignment", "assignment_submission")):
            name = job.one("select pg_get_serial_sequence(%(t)s, 'id')", {"t": table})[0]
            job.seq[kind] = "'" + name.replace("'", "''") + "'::regclass"
    return job.seq


def delete_targets(job: Staging, table: str, condition: str) -> None:
    """Deletes the quiz_attempt and assignment_submission rows that table's target_id names where condition holds."""
    for kind, target in (("quiz", "quiz_attempt"), ("assignment", "assignment_submission")):
        job.summary.count(
            target,
            "deleted",
            job.x(
                f"delete from {target} where id in (select target_id from {table} where kind = '{kind}' and {condition})"
            ),
        )


def course_work(job: Staging) -> None:
    """Makes course_work match every line item of the source (oneroster_course_work maps one to the other):
    title, kind (li_kind), course, due_at from dueDate (with an offset: that instant; a time without one:
    local time in the import's --time-zone; a date alone: the end of that day there), writing only
    differences. A line item moved to another class gets new work (its scores' links follow in derive())."""
    job.x(
        """
      create temp table work_plan on commit drop as
      select li.sourced_id, c.course_id, lk.kind,
             left(coalesce(nullif(li.title, ''), li.sourced_id), 500) as title,
             case when li.due_date is null then null
                  when li.due_date !~ '[T ]' then (li.due_date::date + time '23:59:59') at time zone %(zone)s
                  else oneroster_instant(li.due_date, %(zone)s) end as due_at,
             m.course_work_id, w.course_id as old_course_id
        from oneroster_line_item li
        join li_kind lk on lk.sourced_id = li.sourced_id
        join oneroster_class c on c.source = li.source and c.sourced_id = li.class_sourced_id
        left join oneroster_course_work m on m.source = li.source and m.sourced_id = li.sourced_id
        left join course_work w on w.id = m.course_work_id
       where li.source = %(source)s
    """,
        {"zone": job.options.time_zone},
    )
    job.summary.count(
        "course_work",
        "deleted",
        job.x("""
      delete from course_work where id in (
        select m.course_work_id from oneroster_course_work m
         where m.source = %(source)s
           and not exists (select from work_plan p where p.sourced_id = m.sourced_id and p.course_id = p.old_course_id))
    """),
    )
    job.summary.count(
        "course_work",
        "updated",
        job.x("""
      update course_work w set title = p.title, kind = p.kind, due_at = p.due_at
        from work_plan p
       where w.id = p.course_work_id and p.course_id = p.old_course_id
         and (w.title, w.kind, w.due_at) is distinct from (p.title, p.kind, p.due_at)
    """),
    )
    new = job.x("""
      create temp table work_new on commit drop as
      select p.sourced_id, p.course_id, p.title, p.kind, p.due_at,
             nextval(pg_get_serial_sequence('course_work', 'id')) as id
        from work_plan p
       where not exists (select from oneroster_course_work m where m.source = %(source)s and m.sourced_id = p.sourced_id)
    """)
    if new:
        job.summary.count(
            "course_work",
            "inserted",
            job.x(
                "insert into course_work (id, course_id, title, kind, due_at)"
                " select id, course_id, title, kind, due_at from work_new"
            ),
        )
        job.summary.count(
            "course_work mappings",
            "inserted",
            job.x(
                "insert into oneroster_course_work (source, sourced_id, course_work_id)"
                " select %(source)s, sourced_id, id from work_new"
            ),
        )
    job.x("analyze oneroster_course_work")


def excusals(job: Staging) -> None:
    """A result scored exempt excuses its student from its line item's work; a result of the source that is
    no longer exempt takes that excusal away (the source decides for its own line items)."""
    job.x("""
      create temp table excusal_plan on commit drop as
      select distinct m.course_work_id, sm.student_profile_id, r.score_status = 'exempt' as exempt
        from oneroster_result r
        join oneroster_course_work m on m.source = r.source and m.sourced_id = r.line_item_sourced_id
        join oneroster_student sm on sm.source = r.source and sm.sourced_id = r.student_sourced_id
       where r.source = %(source)s
    """)
    job.summary.count(
        "course_work_excusal",
        "deleted",
        job.x("""
      delete from course_work_excusal x using excusal_plan p
       where (x.course_work_id, x.student_profile_id) = (p.course_work_id, p.student_profile_id) and not p.exempt
         and not exists (select from excusal_plan e
                          where (e.course_work_id, e.student_profile_id) = (p.course_work_id, p.student_profile_id)
                            and e.exempt)
    """),
    )
    job.summary.count(
        "course_work_excusal",
        "inserted",
        job.x("""
      insert into course_work_excusal (course_work_id, student_profile_id)
      select course_work_id, student_profile_id from excusal_plan where exempt
      on conflict do nothing
    """),
    )


def derive(job: Staging) -> None:
    """Makes quiz_attempt and assignment_submission match every result of the source, writing only differences;
    first the line items' course_work, last the excusals of exempt results."""
    course_work(job)
    # Fresh statistics for the joins below (written in this transaction, or never analysed yet): without them
    # the planner takes the mapping tables for a few rows and loops over them for every result.
    for table in ("oneroster_student", "oneroster_class", "oneroster_result"):
        job.x(f"analyze {table}")
    job.x("""
      create temp table plan on commit drop as
      select r.sourced_id, r.kind, r.target_id, lk.kind as want_kind, st.id as student_id, c.course_id,
             cw.course_work_id,
             r.score_status = 'fully graded' as graded,
             case when lk.result_value_max is null then round(r.score, 2)
                  else round(r.score / lk.result_value_max * 100, 2) end as value,
             case when r.score_date is not null then oneroster_instant(r.score_date, st.time_zone) end as at,
             coalesce(q.id, a.id) is not null as present,
             lk.sourced_id is not null and st.id is not null
               and r.score_status in ('fully graded', 'partially graded', 'submitted') as wanted
        from oneroster_result r
        left join li_kind lk on lk.sourced_id = r.line_item_sourced_id
        left join oneroster_student sm on sm.source = r.source and sm.sourced_id = r.student_sourced_id
        left join student_profile st on st.id = sm.student_profile_id
        left join oneroster_class c on c.source = r.source and c.sourced_id = lk.class_sourced_id
        left join oneroster_course_work cw on cw.source = r.source and cw.sourced_id = r.line_item_sourced_id
        left join quiz_attempt q on r.kind = 'quiz' and q.id = r.target_id
        left join assignment_submission a on r.kind = 'assignment' and a.id = r.target_id
       where r.source = %(source)s
    """)
    # A line item's maximum may have changed since a result was checked: out of range now means not imported.
    for row in job.cur.execute(
        "select sourced_id, value from plan where wanted and value not between 0 and 999.99 order by 1 limit 20"
    ):
        job.summary.warnings.append(
            f"result {row[0]}: {row[1]}% is outside 0 to 999.99 after its line item changed; not imported"
        )
    job.x("update plan set wanted = false where wanted and value not between 0 and 999.99")
    delete_targets(job, "plan", "present and not (wanted and want_kind = kind)")
    # A line item whose category now maps to the other kind: its results move table, under new ids.
    seq = sequences(job)
    flipped = job.x(f"""
      update plan set kind = want_kind, present = false,
             target_id = case when want_kind = 'quiz' then nextval({seq["quiz"]})
                              else nextval({seq["assignment"]}) end
       where wanted and want_kind <> kind
    """)
    if flipped:
        job.summary.count(
            "result mappings",
            "updated",
            job.x("""
          update oneroster_result r set kind = p.kind, target_id = p.target_id from plan p
           where r.source = %(source)s and r.sourced_id = p.sourced_id and (r.kind, r.target_id) <> (p.kind, p.target_id)
        """),
        )
    job.summary.count(
        "quiz_attempt",
        "updated",
        job.x("""
      update quiz_attempt q
         set student_profile_id = p.student_id, course_id = p.course_id, score = p.value,
             completed_at = case when p.graded then p.at end, course_work_id = p.course_work_id
        from plan p
       where p.kind = 'quiz' and p.wanted and p.present and q.id = p.target_id
         and (q.student_profile_id, q.course_id, q.score, q.completed_at, q.course_work_id)
             is distinct from (p.student_id, p.course_id, p.value, case when p.graded then p.at end, p.course_work_id)
    """),
    )
    job.summary.count(
        "quiz_attempt",
        "inserted",
        job.x("""
      insert into quiz_attempt (id, student_profile_id, course_id, score, completed_at, course_work_id)
      select target_id, student_id, course_id, value, case when graded then at end, course_work_id
        from plan where kind = 'quiz' and wanted and not present
       order by student_id, target_id
    """),
    )
    job.summary.count(
        "assignment_submission",
        "updated",
        job.x("""
      update assignment_submission a
         set student_profile_id = p.student_id, course_id = p.course_id, percentage = p.value,
             is_graded = p.graded, graded_at = case when p.graded then p.at end,
             submitted_at = case when not p.graded then p.at end, course_work_id = p.course_work_id
        from plan p
       where p.kind = 'assignment' and p.wanted and p.present and a.id = p.target_id
         and (a.student_profile_id, a.course_id, a.percentage, a.is_graded, a.graded_at, a.submitted_at,
              a.course_work_id)
             is distinct from (p.student_id, p.course_id, p.value, p.graded, case when p.graded then p.at end,
                               case when not p.graded then p.at end, p.course_work_id)
    """),
    )
    job.summary.count(
        "assignment_submission",
        "inserted",
        job.x("""
      insert into assignment_submission (id, student_profile_id, course_id, percentage, is_graded, submitted_at,
                                         graded_at, course_work_id)
      select target_id, student_id, course_id, value, graded, case when not graded then at end,
             case when graded then at end, course_work_id
        from plan where kind = 'assignment' and wanted and not present
       order by student_id, target_id
    """),
    )
    excusals(job)
