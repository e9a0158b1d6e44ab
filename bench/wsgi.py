"""The app as the HTTP benchmark serves it: the product app plus a bench-only endpoint without database.

    gunicorn bench.wsgi:app

/bench/ceiling goes through the same server, Flask, headers and JSON encoding
as the weekly-trend endpoint, and reads nothing: the stack's own ceiling.
It exists only in this module, never in the product app.
"""

from __future__ import annotations

from flask import Blueprint, jsonify

from web import create_app

ceiling = Blueprint("bench_ceiling", __name__)


@ceiling.get("/bench/ceiling")
def no_database():
    return jsonify({"status": "ok"})


app = create_app()
app.register_blueprint(ceiling)
