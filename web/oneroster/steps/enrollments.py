"""enrollments.csv: read and checked; its teacher rows become course_teacher (steps/course_teachers.py)."""

from __future__ import annotations

from web.oneroster.staging import Staging


def enrollments(job: Staging) -> None:
    # Read and checked; students' rows are not stored (a student's courses come from the results), teachers'
    # rows are: course_teachers() runs next.
    job.checked(
        "enrollments",
        "",
        """
      when s.class_sourced_id = '' then 'missing classSourcedId'
      when s.user_sourced_id = '' then 'missing userSourcedId'
    """,
    )
