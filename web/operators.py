"""What operators and their tools read: /healthz (each database's state), /metrics (Prometheus, for
METRICS_TOKEN or METRICS_ALLOW_FROM only) and the OpenAPI document. No student data: web/__init__.py
lists these endpoints as public (no private, no-store)."""

from __future__ import annotations

import json
from pathlib import Path

from flask import Blueprint, current_app, jsonify, send_file

from web import db, observability
from web.problems import UNAVAILABLE, problem

bp = Blueprint("operators", __name__)

OPENAPI_PATH = Path(__file__).resolve().parent / "openapi.json"


@bp.get("/api/openapi.json")
def openapi_document():
    # Hand-written and served as is; tests check the app's answers against it.
    return send_file(OPENAPI_PATH, mimetype="application/json", max_age=0)


@bp.get("/healthz")
def healthz():
    """Each database the app serves from, by name (primary; standby when DATABASE_READ_URL is set), with its
    state. 503 with Retry-After when one is down: the primary serves sign-in, the staff pages and every
    write; the standby serves the parents' reads, which do not fall back to the primary. The body says which."""
    databases = {}
    for name, which in db.serving_databases():
        try:
            db.check_database(which)
            databases[name] = {"state": "up"}
        except Exception as error:  # noqa: BLE001 - any failure to reach a database means it is down
            databases[name] = {"state": "down", "error": type(error).__name__}
    down = [name for name, state in databases.items() if state["state"] == "down"]
    if down:
        response = problem(
            503,
            "Service Unavailable",
            f"The database does not answer: {', '.join(down)}.",
            UNAVAILABLE.headers,
        )
        response.set_data(json.dumps(json.loads(response.get_data()) | {"databases": databases}))
        return response
    response = jsonify({"status": "ok", "databases": databases})
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/metrics")
def metrics():
    return observability.metrics_response(current_app._get_current_object())
