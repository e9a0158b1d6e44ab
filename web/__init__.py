"""Weekly Trends web app: read-only JSON for parents (`flask --app web run`)."""

from __future__ import annotations

import os

from flask import Flask


def create_app(test_config: dict | None = None) -> Flask:
    app = Flask(__name__)
    app.config.from_mapping(
        # None: resolved on first use (DATABASE_URL, else the embedded server).
        DATABASE_URL=os.environ.get("DATABASE_URL"),
        POOL_MIN_SIZE=int(os.environ.get("WEEKLY_TRENDS_POOL_MIN_SIZE", "1")),
        POOL_MAX_SIZE=int(os.environ.get("WEEKLY_TRENDS_POOL_MAX_SIZE", "10")),
        POOL_OPEN_TIMEOUT=float(os.environ.get("WEEKLY_TRENDS_POOL_OPEN_TIMEOUT", "10")),
        READER_ROLE="weekly_trends_reader",
    )
    if test_config is not None:
        app.config.update(test_config)

    from . import api, db, problems

    db.init_app(app)
    problems.init_app(app)
    app.register_blueprint(api.bp)
    return app
