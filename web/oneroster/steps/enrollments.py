"""enrollments.csv: read and checked, nothing stored."""

from __future__ import annotations

from web.oneroster.staging import Staging


def enrollments(job: Staging) -> None:
    # Read and checked, not stored: the product has no enrollments (a student's courses come from the results).
    job.checked(
        "enrollments",
        "",
        """
      when s.class_sourced_id = '' then 'missing classSourcedId'
      when s.user_sourced_id = '' then 'missing userSourcedId'
    """,
    )
