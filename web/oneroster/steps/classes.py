"""classes.csv: checked, then each class is a course (oneroster_class maps one to the other)."""

from __future__ import annotations

from web.oneroster.staging import Staging


def classes(job: Staging) -> None:
    job.checked("classes", "", "when s.title = '' then 'missing title'\n" + job.printable({"title": "title"}))
    gone = job.x(f"""
      create temp table classes_gone on commit drop as
      select m.course_id from oneroster_class m
       where m.source = %(source)s and m.sourced_id in (select sourced_id from {job.leaving("classes", "oneroster_class")})
    """)
    if gone:
        # Scores keep their rows; their course_id becomes null (on delete set null).
        job.summary.count(
            "courses", "deleted", job.x("delete from course where id in (select course_id from classes_gone)")
        )
    job.summary.count(
        "courses",
        "updated",
        job.x("""
      update course c set name = v.title
        from v_classes v join oneroster_class m on m.source = %(source)s and m.sourced_id = v.sourced_id
       where c.id = m.course_id and v.reason is null and not v.deleting and c.name is distinct from v.title
    """),
    )
    new = job.x("""
      create temp table classes_new on commit drop as
      select v.sourced_id, v.title, nextval(pg_get_serial_sequence('course', 'id')) as id
        from v_classes v
       where v.reason is null and not v.deleting
         and not exists (select from oneroster_class m where m.source = %(source)s and m.sourced_id = v.sourced_id)
    """)
    if new:
        job.summary.count(
            "courses", "inserted", job.x("insert into course (id, name) select id, title from classes_new")
        )
        job.summary.count(
            "class mappings",
            "inserted",
            job.x(
                "insert into oneroster_class (source, sourced_id, course_id)"
                " select %(source)s, sourced_id, id from classes_new"
            ),
        )
