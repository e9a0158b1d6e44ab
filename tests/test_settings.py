"""Every setting is checked once at start, by the app factory and by the CLI: a bad value stops them with a
message naming the variable and what it accepts (web/settings.py), never a 500 on every request later."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from web.settings import SPECS, SettingError, Settings

ROOT = Path(__file__).resolve().parent.parent
ALL_VARIABLES = sorted({name for spec in SPECS for name in spec.env})

# (variable, bad value, what the message says it accepts), by kind of setting.
BAD = [
    # integers in a range
    ("WEEKLY_TRENDS_ALERT_DROP_POINTS", "abc", "an integer from 1 to 100"),
    ("WEEKLY_TRENDS_ALERT_DROP_POINTS", "0", "an integer from 1 to 100"),
    ("WEEKLY_TRENDS_ALERT_DROP_POINTS", "-5", "an integer from 1 to 100"),
    ("WEEKLY_TRENDS_ALERT_MIN_SCORES", "abc", "an integer from 1 to 1000"),
    ("WEEKLY_TRENDS_ALERT_MIN_SCORES", "3000000000", "an integer from 1 to 1000"),
    ("WEEKLY_TRENDS_AUTH_FAILURE_LIMIT", "0", "an integer from 1 to 2147483647"),
    ("WEEKLY_TRENDS_AUTH_FAILURE_WINDOW", "-5", "an integer from 1 to 604800"),
    ("WEEKLY_TRENDS_DIGEST_LINK_DAYS", "0", "an integer from 1 to 30"),
    ("WEEKLY_TRENDS_DIGEST_LINK_DAYS", "99999999", "an integer from 1 to 30"),
    ("WEEKLY_TRENDS_DIGEST_MAX_ATTEMPTS", "0", "an integer from 1 to 100"),
    ("WEEKLY_TRENDS_CLASS_AVERAGE_MIN_STUDENTS", "3", "an integer from 5 to 100000"),
    ("WEEKLY_TRENDS_TRUSTED_PROXIES", "-1", "an integer from 0 to 10"),
    ("WEEKLY_TRENDS_POOL_MAX_SIZE", "0", "an integer from 1 to 1000"),
    ("WEEKLY_TRENDS_POOL_MIN_SIZE", "1.5", "an integer from 0 to 1000"),
    # numbers (seconds)
    ("WEEKLY_TRENDS_POOL_TIMEOUT", "abc", "a number of seconds above 0 and at most 3600"),
    ("WEEKLY_TRENDS_POOL_TIMEOUT", "nan", "a number of seconds above 0 and at most 3600"),
    ("WEEKLY_TRENDS_POOL_TIMEOUT", "inf", "a number of seconds above 0 and at most 3600"),
    ("WEEKLY_TRENDS_POOL_TIMEOUT", "0", "a number of seconds above 0 and at most 3600"),
    ("WEEKLY_TRENDS_POOL_OPEN_TIMEOUT", "-1", "a number of seconds above 0 and at most 3600"),
    # one of a list
    ("WEEKLY_TRENDS_LOG_FORMAT", "xml", "one of json, text"),
    ("MAIL_BACKEND", "pigeon", "one of smtp, maildir"),
    # a shipped language
    ("WEEKLY_TRENDS_DEFAULT_LOCALE", "fr", "one of the shipped languages"),
    # a time zone
    ("WEEKLY_TRENDS_SCHOOL_TIME_ZONE", "Mars/Olympus_Mons", "an IANA time zone name"),
    ("WEEKLY_TRENDS_IMPORT_TIME_ZONE", "../../etc/passwd", "an IANA time zone name"),
    # addresses
    ("DATABASE_URL", "nonsense", "a libpq connection URI"),
    ("DATABASE_URL", "postgresql://app:sekret@db.example:port/weekly", "a libpq connection URI"),
    ("DATABASE_READ_URL", "http://replica", "a libpq connection URI"),
    ("PUBLIC_BASE_URL", "trends.school.example", "an http(s) address"),
    ("WEEKLY_TRENDS_PUBLIC_BASE_URL", "ftp://trends.school.example", "an http(s) address"),
    ("SMTP_URL", "http://mail.example", "must start with smtp:// or smtps://"),
    ("MAIL_FROM", "nobody", "an email address"),
    ("WEEKLY_TRENDS_METRICS_ALLOW_FROM", "10.0.0.0/8, intranet", "comma-separated addresses or networks"),
    # text
    ("WEEKLY_TRENDS_SCHOOL_CONTACT", "the office\x1b[2J", "text without control characters"),
    # staff sign-in with the school's accounts
    ("WEEKLY_TRENDS_OIDC_ISSUER", "accounts.google.com", "the OpenID provider's issuer URL"),
    ("WEEKLY_TRENDS_OIDC_ISSUER", "https://idp.example/?tenant=1", "the OpenID provider's issuer URL"),
    ("WEEKLY_TRENDS_OIDC_CLIENT_SECRET", "s3cret\n", "text without control characters"),
    ("WEEKLY_TRENDS_OIDC_ALLOWED_DOMAINS", "school.example, not a domain", "comma-separated mail domains"),
    ("WEEKLY_TRENDS_OIDC_ALLOWED_DOMAINS", "@school.example", "comma-separated mail domains"),
]
IDS = [f"{variable}={value!r}" for variable, value, _ in BAD]


@pytest.fixture
def clean_env(monkeypatch):
    """No setting of the developer's or CI's own leaks into these tests."""
    for name in ALL_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def child_env(**settings) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ALL_VARIABLES}
    return env | settings


@pytest.mark.parametrize(("variable", "value", "accepts"), BAD, ids=IDS)
def test_the_app_factory_refuses_a_bad_setting_naming_it(clean_env, variable, value, accepts):
    from web import create_app

    clean_env.setenv(variable, value)
    with pytest.raises(SettingError) as refused:
        create_app({"SECRET_KEY": "x"})
    message = str(refused.value)
    assert message.startswith(variable) and accepts in message
    assert "sekret" not in message  # a database URL's password is not repeated


@pytest.mark.parametrize(("variable", "value", "accepts"), BAD, ids=IDS)
def test_the_cli_refuses_a_bad_setting_naming_it_exit_2(variable, value, accepts):
    """Any command (here `check`, which would otherwise open the database): exit status 2, one line, no traceback."""
    run = subprocess.run(
        [sys.executable, "-m", "web.ops.cli", "check"],
        cwd=ROOT,
        env=child_env(**{variable: value}),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 2, run.stderr
    assert run.stderr.startswith(f"weekly-trends: {variable}") and accepts in run.stderr
    assert "Traceback" not in run.stderr and "sekret" not in run.stderr and run.stdout == ""


def test_typed_values_from_create_app_are_checked_too(clean_env):
    from web import create_app

    for key, value in {
        "POOL_TIMEOUT": "10",
        "AUTH_FAILURE_LIMIT": 0,
        "ALERT_DROP_POINTS": True,
        "DIGEST_LINK_DAYS": 31,
        "SCHOOL_TIME_ZONE": "Nowhere",
    }.items():
        with pytest.raises(SettingError, match=f"WEEKLY_TRENDS_{key}"):
            create_app({"SECRET_KEY": "x", key: value})


def test_good_values_are_read_as_their_type(clean_env, tmp_path):
    settings = Settings.load(
        {
            "WEEKLY_TRENDS_POOL_TIMEOUT": "2.5",
            "WEEKLY_TRENDS_ALERT_DROP_POINTS": " 15 ",
            "MAIL_BACKEND": "MailDir",
            "WEEKLY_TRENDS_DIGEST_LINK_DAYS": "30",
            "MAILDIR": str(tmp_path / "box"),
            "PUBLIC_BASE_URL": "https://t.example/",
            "WEEKLY_TRENDS_SCHOOL_TIME_ZONE": "Europe/London",
            "DATABASE_URL": "postgresql://u:p@db:6432/weekly",
            "WEEKLY_TRENDS_METRICS_ALLOW_FROM": "127.0.0.1, 10.0.0.0/8",
            "WEEKLY_TRENDS_AUTH_FAILURE_WINDOW": "1",
        }
    )
    assert (settings.pool_timeout, settings.alert_drop_points, settings.mail_backend, settings.digest_link_days) == (
        2.5,
        15,
        "maildir",
        30,
    )
    assert settings.maildir == tmp_path / "box" and settings.public_base_url == "https://t.example"
    assert settings.school_zone.key == "Europe/London" and settings.auth_failure_window == 1
    defaults = Settings.load({})
    assert (
        defaults.alert_drop_points,
        defaults.alert_min_scores,
        defaults.digest_link_days,
        defaults.pool_timeout,
    ) == (10, 2, 14, 10.0)
    # the WEEKLY_TRENDS_ name of a mail setting wins over the short one
    assert (
        Settings.load({"WEEKLY_TRENDS_MAIL_FROM": "a@b.example", "MAIL_FROM": "c@d.example"}).mail_from == "a@b.example"
    )
    with pytest.raises(SettingError, match="WEEKLY_TRENDS_POOL_MIN_SIZE .* at most WEEKLY_TRENDS_POOL_MAX_SIZE"):
        Settings.load({"WEEKLY_TRENDS_POOL_MIN_SIZE": "5", "WEEKLY_TRENDS_POOL_MAX_SIZE": "2"})


def test_the_app_reads_the_settings_it_was_built_with_not_the_environment_later(clean_env, db_url):
    """Checked once: the thresholds a request uses are the start's, whatever the environment says later."""
    from web import create_app
    from web.db import close_pool

    clean_env.setenv("WEEKLY_TRENDS_ALERT_DROP_POINTS", "15")
    app = create_app({"TESTING": True, "DATABASE_URL": db_url, "SECRET_KEY": "x"})
    clean_env.setenv("WEEKLY_TRENDS_ALERT_DROP_POINTS", "abc")
    assert app.config["SETTINGS"].alert_drop_points == 15
    assert app.test_client().get("/healthz").status_code == 200
    close_pool(app)


@pytest.mark.parametrize("command", [["digest", "--week", "2024-W05"], ["invite", "--all-without-link"], ["demo-mail"]])
def test_a_maildir_that_cannot_be_written_stops_the_mail_commands_at_start(clean_env, tmp_path, capsys, command):
    from web.ops.cli import main

    (tmp_path / "file").write_text("not a directory")
    clean_env.setenv("MAIL_BACKEND", "maildir")
    clean_env.setenv("MAILDIR", str(tmp_path / "file" / "maildir"))
    clean_env.setenv("DATABASE_URL", "postgresql://nobody@/never?host=/nonexistent")  # never reached
    assert main(command) == 2
    err = capsys.readouterr().err
    assert "MAILDIR must be a maildir this user can write to" in err and str(tmp_path / "file" / "maildir") in err


def test_serve_refuses_to_start_with_a_bad_setting():
    run = subprocess.run(
        [sys.executable, "-m", "web.ops.cli", "serve", "--bind", "127.0.0.1:0"],
        cwd=ROOT,
        env=child_env(WEEKLY_TRENDS_AUTH_FAILURE_LIMIT="0"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 2 and "WEEKLY_TRENDS_AUTH_FAILURE_LIMIT must be an integer from 1" in run.stderr
    assert "Booting worker" not in run.stderr and "Traceback" not in run.stderr


def test_flask_run_refuses_to_start_with_a_bad_setting():
    run = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "web", "run", "--port", "0"],
        cwd=ROOT,
        env=child_env(WEEKLY_TRENDS_POOL_TIMEOUT="abc"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode != 0 and "Running on" not in run.stderr
    assert "WEEKLY_TRENDS_POOL_TIMEOUT must be a number of seconds" in run.stderr.strip().splitlines()[-1]


def test_the_readme_lists_every_setting_with_its_default_and_range():
    readme = (ROOT / "README.md").read_text()
    table = readme[readme.index("| setting | default | accepts | what |") :]
    table = table[: table.index("\n\n")]
    for spec in SPECS:
        row = next((line for line in table.splitlines() if f"`{spec.env[-1]}`" in line), None)
        assert row is not None, f"{spec.env[-1]} is not in README's settings table"
    for name in re.findall(r"^\| `([A-Z_]+)`", table, re.M):
        assert name in ALL_VARIABLES, f"README lists {name}, which the app does not read"


def test_an_issuer_needs_the_apps_client_id_and_secret(clean_env):
    issuer = {"WEEKLY_TRENDS_OIDC_ISSUER": "https://accounts.google.com"}
    for partial in ({}, {"WEEKLY_TRENDS_OIDC_CLIENT_ID": "app"}, {"WEEKLY_TRENDS_OIDC_CLIENT_SECRET": "s"}):
        with pytest.raises(SettingError, match="WEEKLY_TRENDS_OIDC_CLIENT_ID and WEEKLY_TRENDS_OIDC_CLIENT_SECRET"):
            Settings.load(issuer | partial)
    settings = Settings.load(
        issuer
        | {
            "WEEKLY_TRENDS_OIDC_CLIENT_ID": "app",
            "WEEKLY_TRENDS_OIDC_CLIENT_SECRET": "s",
            "WEEKLY_TRENDS_OIDC_ALLOWED_DOMAINS": " School.Example,staff.school.example ,",
        }
    )
    assert settings.oidc_issuer == "https://accounts.google.com"  # exactly: it is compared with the tokens' iss
    assert settings.oidc_allowed_domains == ("school.example", "staff.school.example")
    assert Settings.load({}).oidc_issuer is None and Settings.load({}).oidc_allowed_domains == ()
