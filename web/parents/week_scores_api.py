"""GET /api/v1/students/<id>/weeks/<YYYY>-W<ww>/scores: the scores behind one week, as JSON."""

from __future__ import annotations

from flask import Blueprint, jsonify

from web.parents.week_scores import week_scores

bp = Blueprint("scores", __name__)


@bp.get("/api/v1/students/<student_id>/weeks/<week>/scores")
def student_week_scores(student_id: str, week: str):
    answer = week_scores(student_id, week)
    answer.pop("display_name")
    return jsonify(answer)
