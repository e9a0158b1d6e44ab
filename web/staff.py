"""Staff pages (/staff): find a student, read their weekly rows, recalculate one student.

Staff sign in with a token from issue_staff_token(); parents' tokens and
sessions open nothing here (and staff ones nothing on the parents' side).
Every query runs as the role weekly_trends_staff.
"""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for

from . import db
from .auth import STAFF, authenticate
from .params import bad_request, parse_bounded_int, parse_id
from .problems import ProblemError, html_errors
from .signin import add_sign_in_routes
from .students import log_read

bp = Blueprint("staff", __name__, url_prefix="/staff")
html_errors(bp, "staff.login", "staff.search", STAFF.session_key, staff=True)
add_sign_in_routes(bp, STAFF, db.staff, "staff.search", "staff_login.html")

MAX_QUERY = 200
MAX_RESULTS = 100


def like_pattern(text: str) -> str:
    """A LIKE pattern matching `text` anywhere, its own % and _ taken literally."""
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


@bp.get("/")
def search():
    query = request.args.get("q", "").strip()
    if len(query) > MAX_QUERY:
        raise bad_request(f"The search text must be at most {MAX_QUERY} characters.")
    with db.staff() as conn:
        authenticate(conn, STAFF, allow_navigation=True)
        students = []
        if query:
            students = conn.execute(
                """
                select sp.id, sp.display_name, sp.time_zone,
                       array_remove(array_agg(g.email order by g.email), null) as guardian_emails
                  from student_profile sp
                  left join guardian_student gs on gs.student_profile_id = sp.id
                  left join guardian g on g.id = gs.guardian_id
                 where sp.display_name ilike %(pattern)s
                    or sp.id in (select gs2.student_profile_id
                                   from guardian_student gs2
                                   join guardian g2 on g2.id = gs2.guardian_id
                                  where g2.email ilike %(pattern)s)
                 group by sp.id
                 order by sp.display_name, sp.id
                 limit %(limit)s
                """,
                {"pattern": like_pattern(query), "limit": MAX_RESULTS},
            ).fetchall()
    return render_template("staff_search.html", query=query, students=students, max_results=MAX_RESULTS)


def staff_student(conn, student_id: int) -> dict:
    row = conn.execute("select id, display_name, time_zone from student_profile where id = %s", (student_id,)).fetchone()
    if row is None:
        raise ProblemError(404, "Not Found", "No student with this id.")
    return row


@bp.get("/students/<student_id>")
def student(student_id: str):
    sid = parse_id(student_id)
    year = request.args.get("year") or None
    week = request.args.get("week") or None
    year = None if year is None else parse_bounded_int(year, "year", 1, 9999)
    week = None if week is None else parse_bounded_int(week, "week", 1, 53)
    with db.staff() as conn:
        authenticate(conn, STAFF, allow_navigation=True)
        profile = staff_student(conn, sid)
        log_read(conn, sid)
        rows = conn.execute(
            """
            select year, week_number, week_start_date, overall_average, quiz_average, quiz_count,
                   assignment_average, assignment_count, created_at, updated_at
              from student_weekly_performance
             where student_profile_id = %(sid)s
               and (%(year)s::integer is null or year = %(year)s)
               and (%(week)s::integer is null or week_number = %(week)s)
             order by week_start_date desc
            """,
            {"sid": sid, "year": year, "week": week},
        ).fetchall()
    return render_template("staff_student.html", student=profile, rows=rows, year=year, week=week)


@bp.post("/students/<student_id>/recalculate")
def recalculate(student_id: str):
    sid = parse_id(student_id)
    with db.staff() as conn:
        authenticate(conn, STAFF)
        staff_student(conn, sid)
        written = conn.execute("select refresh_weekly_performance(p_student_profile_id => %s)", (sid,)).fetchone()
    flash(f"Recalculated: {written['refresh_weekly_performance']} weekly row(s) written (0: they were already exact).")
    return redirect(url_for("staff.student", student_id=sid), code=303)
