"""docs/operations.md is a tested runbook (issue 24): every block an operator runs carries a marker
`<!-- runbook: NAME -->`, and a test here runs it as written.

A cluster of this module's own (a scratch server of the test server's major version: 18 on the embedded
pass, 15 on CI's second pass) is installed by the documented blocks: the roles as a superuser through
psql, the first migrate through the environment file, CREATEROLE taken away, the writers' grants as the
owner. The other tests run the staff, backup/restore, crontab, nginx, PgBouncer, upgrade and pg_cron
blocks against it (pg_cron: a PostgreSQL 15 cluster with the documented configuration). Shell blocks run
with `env -i` and the documented environment file written to a temporary directory; crontab lines as
cron runs them. Only the placeholders docs/operations.md names are substituted (PLACEHOLDERS below).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import psycopg
import pytest

from conftest import in_ci
from live import free_port
from scratch_server import ScratchServer

ROOT = Path(__file__).resolve().parent.parent
OPERATIONS = ROOT / "docs" / "operations.md"
VENV_BIN = Path(sys.executable).parent
# Fenced blocks of these kinds are what an operator runs or installs: each must carry a marker.
OPERATOR_KINDS = {"sh", "sql", "crontab", "nginx", "conf", "ini"}
MARKER = re.compile(r"^\s*<!-- runbook: ([a-z0-9-]+) -->\s*$")
FENCE = re.compile(r"^(\s*)```(\S*)\s*$")
PG15_BIN = Path("/usr/lib/postgresql/15/bin")
PG_CRON = Path("/usr/lib/postgresql/15/lib/pg_cron.so")
NGINX = Path("/usr/sbin/nginx")
BLOCK_TIMEOUT = 300


@dataclass(frozen=True)
class Block:
    name: str | None
    kind: str
    text: str
    line: int


def blocks() -> list[Block]:
    """Every fenced block of docs/operations.md with the marker on the line before it (None when none)."""
    lines = OPERATIONS.read_text().splitlines()
    found, index = [], 0
    while index < len(lines):
        fence = FENCE.match(lines[index])
        if not fence:
            index += 1
            continue
        indent, kind = len(fence.group(1)), fence.group(2)
        start = index
        body = []
        index += 1
        while index < len(lines) and lines[index].strip() != "```":
            body.append(lines[index][indent:])
            index += 1
        previous = next((lines[i] for i in range(start - 1, -1, -1) if lines[i].strip()), "")
        marker = MARKER.match(previous)
        found.append(Block(marker.group(1) if marker else None, kind, "\n".join(body) + "\n", start + 1))
        index += 1
    return found


def block(name: str) -> str:
    [found] = [b for b in blocks() if b.name == name]
    return found.text


# Each marked block and the test that runs it. A marker without an entry here, or an entry whose block
# is gone, fails test_every_marked_block_is_run.
RUN_BY = {
    "install": "test_install_block_makes_a_working_virtualenv",
    "env-file": "installed (every shell block and cron line loads it)",
    "roles": "installed",
    "first-migrate": "installed",
    "owner-nocreaterole": "installed",
    "writer-grants": "installed; test_the_roles_are_what_the_table_says",
    "staff": "test_staff_block_adds_a_staff_member_and_issues_a_token",
    "serve": "test_nginx_block_in_front_of_serve; test_upgrade_block_from_0004",
    "nginx": "test_nginx_block_in_front_of_serve",
    "pgbouncer-ini": "test_pgbouncer_blocks",
    "pgbouncer-env": "test_pgbouncer_blocks",
    "backup": "test_backup_and_restore_blocks",
    "restore": "test_backup_and_restore_blocks",
    "crontab": "test_every_crontab_line_runs_as_cron_runs_it",
    "pg-cron-install": "test_pg_cron_blocks_run_a_job",
    "pg-cron-conf": "test_pg_cron_blocks_run_a_job",
    "pg-cron-extension": "test_pg_cron_blocks_run_a_job",
    "pg-cron-jobs": "test_pg_cron_blocks_run_a_job",
    "upgrade": "test_upgrade_block_from_0004",
}


def test_every_operator_block_is_marked():
    unmarked = [f"line {b.line} ({b.kind})" for b in blocks() if b.kind in OPERATOR_KINDS and b.name is None]
    assert not unmarked, f"docs/operations.md: operator blocks without <!-- runbook: NAME -->: {unmarked}"
    unknown = [f"line {b.line} ({b.kind or 'no kind'})" for b in blocks() if b.kind not in OPERATOR_KINDS]
    assert not unknown, f"docs/operations.md: blocks of a kind the runbook test does not know: {unknown}"


def test_every_marked_block_is_run():
    names = [b.name for b in blocks() if b.name]
    assert len(names) == len(set(names)), "a runbook name used twice"
    assert set(names) == set(RUN_BY), (
        f"marked, run by no test: {sorted(set(names) - set(RUN_BY))}; "
        f"run, no longer in the docs: {sorted(set(RUN_BY) - set(names))}"
    )
    source = Path(__file__).read_text()
    for name, runner in RUN_BY.items():
        for test in re.findall(r"test_\w+|installed", runner):
            assert f"def {test}(" in source, f"{name}: {test} does not exist"


# --- the installed cluster ------------------------------------------------------------------------------


def server_bin(server_url: str) -> Path:
    from db.schema_dump import pg_dump_binary

    with psycopg.connect(server_url) as conn:
        major = conn.info.server_version // 10000
    return Path(pg_dump_binary(major)).parent


class Host:
    """A scratch cluster and a temporary root standing in for the documented paths."""

    def __init__(self, bin_dir: Path, *, conf: str = ""):
        self.root = Path(tempfile.mkdtemp(prefix="wt-runbook-"))
        self.root.chmod(0o755)
        self.server = ScratchServer(self.root / "pg")
        self.server.directory.mkdir()
        self.server.bin = bin_dir
        self.server.init()
        if conf:
            with open(self.server.data / "postgresql.conf", "a") as config:
                config.write(conf)
        self.server.start()
        for name in ("etc", "lib", "backups", "run", "home"):
            (self.root / name).mkdir()
            (self.root / name).chmod(0o777)
        self.srv = ROOT

    @property
    def socket(self) -> Path:
        return self.server.socket

    def url(self, user: str = "postgres", dbname: str = "weekly_trends") -> str:
        return f"postgresql://{user}@/{dbname}?host={self.socket}"

    @property
    def path(self) -> str:
        """The server's client programs first (pg_dump refuses a newer server), then psql, then the system's."""
        return f"{self.server.bin}:{PG15_BIN}:/usr/bin:/bin"

    def localize(self, text: str, **extra: str) -> str:
        """The documented placeholders: the install directory and the other paths, then extra ones."""
        replacements = {
            "/srv/weekly-trends": str(self.srv),
            "/etc/weekly-trends": str(self.root / "etc"),
            "/var/lib/weekly-trends": str(self.root / "lib"),
            "/var/backups/weekly-trends": str(self.root / "backups"),
            "/run/weekly-trends": str(self.root / "run"),
            **extra,
        }
        for old, new in replacements.items():
            text = text.replace(old, new)
        return text

    def write_env(self, dbname: str = "weekly_trends", **values: str) -> None:
        """The documented environment file, its database URLs pointing at this cluster (their host is the
        placeholder); values: other lines to replace (KEY=value)."""
        text = block("env-file").replace("@db.school.example/weekly_trends", f"@/{dbname}?host={self.socket}")
        for key, value in values.items():
            text = re.sub(rf"^{key}=.*$", f"{key}={value}", text, flags=re.M)
        (self.root / "etc" / "env").write_text(text)

    def sh(self, script: str, *, timeout: int = BLOCK_TIMEOUT, cwd: Path | None = None, **extra):
        """A shell block as an operator's login shell runs it: env -i, HOME and PATH only."""
        return subprocess.run(
            [
                "env",
                "-i",
                f"HOME={self.root / 'home'}",
                f"PATH={self.path}",
                "LANG=C.UTF-8",
                *pip_config(),
                "/bin/sh",
                "-ec",
                self.localize(script, **extra),
            ],
            cwd=cwd or self.root / "home",
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def psql(self, sql_text: str, url: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(PG15_BIN / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", url, "-f", "-"],
            input=sql_text,
            capture_output=True,
            text=True,
            timeout=BLOCK_TIMEOUT,
        )

    def cleanup(self) -> None:
        self.server.cleanup()
        shutil.rmtree(self.root, ignore_errors=True)


def pip_config() -> list[str]:
    """The host's pip configuration (an index or wheel directory): `make install` needs it, as on a server."""
    config = [f"{k}={v}" for k, v in os.environ.items() if k.startswith("PIP_")]
    user_config = Path.home() / ".config" / "pip" / "pip.conf"
    if "PIP_CONFIG_FILE" not in os.environ and user_config.exists():
        config.append(f"PIP_CONFIG_FILE={user_config}")
    return config


def ok(done: subprocess.CompletedProcess, what: str) -> subprocess.CompletedProcess:
    assert done.returncode == 0, f"{what} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    assert "Traceback" not in done.stderr, f"{what}:\n{done.stderr}"
    return done


@pytest.fixture(scope="module")
def installed(server_url):
    """A cluster installed by the documented blocks: roles (superuser, psql), first migrate (env file, as
    the owner), CREATEROLE taken away, the writers' grants (as the owner)."""
    host = Host(server_bin(server_url))
    try:
        host.write_env()
        ok(host.psql(block("roles"), host.url(dbname="postgres")), "roles")
        ok(host.sh(block("first-migrate")), "first-migrate")
        ok(host.psql(block("owner-nocreaterole"), host.url()), "owner-nocreaterole")
        ok(host.psql(block("writer-grants"), host.url("weekly_trends_owner")), "writer-grants")
        yield host
    finally:
        host.cleanup()


def test_the_roles_are_what_the_table_says(installed):
    with psycopg.connect(installed.url()) as su:
        owner = su.execute(
            "select rolsuper, rolcreaterole, rolbypassrls from pg_roles where rolname = 'weekly_trends_owner'"
        ).fetchone()
        assert owner == (False, False, False)  # CREATEROLE only while migrating
        app = su.execute(
            "select rolsuper, rolcreaterole, rolbypassrls from pg_roles where rolname = 'weekly_trends_app'"
        ).fetchone()
        assert app == (False, False, False)
        assert (
            su.execute("select count(*) from pg_class where relowner = 'weekly_trends_app'::regrole").fetchone()[0] == 0
        )
        version = su.execute("select current_setting('server_version_num')::int / 10000").fetchone()[0]
    # The writer: UPDATE … WHERE … RETURNING and DELETE … WHERE need SELECT as well.
    with psycopg.connect(installed.url("weekly_trends_writer"), autocommit=True) as writer:
        sid = writer.execute(
            "insert into student_profile (display_name, time_zone) values ('W', 'UTC') returning id"
        ).fetchone()[0]
        cid = writer.execute("insert into course (name) values ('Writers') returning id").fetchone()[0]
        qid = writer.execute(
            "insert into quiz_attempt (student_profile_id, course_id, score, completed_at)"
            " values (%s, %s, 70, '2024-01-16 10:00Z') returning id",
            (sid, cid),
        ).fetchone()[0]
        assert (
            writer.execute("update quiz_attempt set score = 80 where id = %s returning score", (qid,)).fetchone()[0]
            == 80
        )
        writer.execute("delete from quiz_attempt where id = %s", (qid,))
        writer.execute("delete from student_profile where id = %s", (sid,))
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            writer.execute("select * from access_log")
    assert version >= 15


def test_staff_block_adds_a_staff_member_and_issues_a_token(installed):
    first = ok(installed.sh(block("staff")), "staff")
    assert "added" in first.stdout and re.search(r"^wts_\w+$", first.stdout, re.M)
    again = ok(installed.sh(block("staff")), "staff, again")
    assert "already present" in again.stdout
    with psycopg.connect(installed.url()) as su:
        assert su.execute("select email, display_name from staff_member").fetchall() == [
            ("head.of.year@school.example", "Head of Year")
        ]
        assert su.execute("select count(*) from staff_token").fetchone()[0] == 2


def test_a_command_as_the_app_role_says_which_role_it_needs(installed):
    """The environment file's DATABASE_URL is the app's: a job line that forgot the owner's URL stops
    with a message (exit 1), no traceback."""
    for command in ("check", "digest --dry-run"):
        done = installed.sh(
            f"set -a; . /etc/weekly-trends/env; set +a\n/srv/weekly-trends/.venv/bin/weekly-trends {command}"
        )
        assert done.returncode == 1, done.stderr
        assert "docs/operations.md" in done.stderr and "Traceback" not in done.stderr


def family(url: str) -> dict:
    """Six students in a course (a class average over 6), a guardian of the first with a token."""
    with psycopg.connect(url, autocommit=True) as conn:
        course = conn.execute("insert into course (name) values ('Maths') returning id").fetchone()[0]
        students = []
        for n in range(6):
            sid = conn.execute(
                "insert into student_profile (display_name, time_zone) values (%s, 'UTC') returning id", (f"S{n}",)
            ).fetchone()[0]
            conn.execute(
                "insert into quiz_attempt (student_profile_id, course_id, score, completed_at)"
                " values (%s, %s, %s, '2024-01-16 10:00Z')",
                (sid, course, 60 + 5 * n),
            )
            students.append(sid)
        guardian = conn.execute(
            "insert into guardian (email, display_name) values (%s, 'P') returning id",
            (f"parent{students[0]}@example.org",),
        ).fetchone()[0]
        conn.execute(
            "insert into guardian_student (guardian_id, student_profile_id) values (%s, %s)", (guardian, students[0])
        )
        token = conn.execute("select issue_guardian_token(%s)", (guardian,)).fetchone()[0]
    return {"student": students[0], "token": token}


def test_backup_and_restore_blocks(installed):
    """The backup block as the owner, the restore block into an empty database the owner owns (created as
    the roles block creates the first one): the restored app's parent JSON answers with its class average."""
    people = family(installed.url())
    ok(installed.sh(block("backup")), "backup")
    assert (installed.root / "backups" / "weekly_trends.dump").stat().st_size > 0
    with psycopg.connect(installed.url(dbname="postgres"), autocommit=True) as su:
        su.execute("create database weekly_trends_restored owner weekly_trends_owner")
    try:
        installed.write_env(dbname="weekly_trends_restored")
        done = ok(installed.sh(block("restore")), "restore")
        assert "Class view: populated" in done.stdout
        from web import create_app
        from web.db import close_pool

        app = create_app(
            {
                "DATABASE_URL": installed.url("weekly_trends_app", "weekly_trends_restored"),
                "SECRET_KEY": "k",
                "CLASS_AVERAGE_MIN_STUDENTS": 5,
                "POOL_MAX_SIZE": 2,
            }
        )
        try:
            answer = app.test_client().get(
                f"/api/v1/students/{people['student']}/weekly-trend",
                headers={"Authorization": f"Bearer {people['token']}"},
                query_string={"end": "2024-01-21", "weeks": 2},
            )
        finally:
            close_pool(app)
        assert answer.status_code == 200
        weeks = [w for c in answer.get_json()["courses"] for w in c["weeks"] if w["quiz_count"]]
        assert [w["class_average"] for w in weeks] == [72.5]
    finally:
        installed.write_env()
        with psycopg.connect(installed.url(dbname="postgres"), autocommit=True) as su:
            su.execute("drop database if exists weekly_trends_restored with (force)")


def crontab_lines() -> list[tuple[str, str, str]]:
    """(schedule, user, command) of each job line of the crontab block (comments and blanks skipped)."""
    jobs = []
    for line in block("crontab").splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        fields = line.split(None, 6)
        assert len(fields) == 7, f"not 'm h dom mon dow user command': {line}"
        for field in fields[:5]:
            assert re.fullmatch(r"[\d*,/-]+", field), f"not a cron time field: {field!r} in {line}"
        assert "%" not in fields[6], f"cron turns % into a newline: {line}"
        jobs.append((" ".join(fields[:5]), fields[5], fields[6]))
    return jobs


def as_cron(host: Host, command: str, **extra: str) -> subprocess.CompletedProcess:
    """As cron runs a line: /bin/sh -c with cron's environment only (HOME, LOGNAME, SHELL, PATH)."""
    env = {
        "HOME": str(host.root / "home"),
        "LOGNAME": "weekly-trends",
        "SHELL": "/bin/sh",
        # cron's PATH, then the server's client programs (postgresql-client of the server's version).
        "PATH": f"{host.server.bin}:/usr/bin:/bin",
    }
    return subprocess.run(
        ["env", "-i", *[f"{k}={v}" for k, v in env.items()], "/bin/sh", "-c", host.localize(command, **extra)],
        cwd=host.root / "home",
        capture_output=True,
        text=True,
        timeout=BLOCK_TIMEOUT,
    )


def test_every_crontab_line_runs_as_cron_runs_it(installed):
    """Each job line, as cron runs it: exit status 0, quiet unless something is wrong (cron mails output).
    The digest line is also run with its --at set to this hour of the school's time zone: it sends."""
    from mailserver import SmtpServer
    from oneroster_gen import generate

    jobs = crontab_lines()
    commands = " ".join(command for _, _, command in jobs)
    for job in (
        "digest --at",
        "refresh --class-view",
        "check",
        "prune_access_log",
        "import oneroster",
        "pg_dump",
        "alerts",
        "purge",
    ):
        assert job in commands, f"no cron line runs {job}"
    assert all(user == "weekly-trends" for _, user, _ in jobs)
    assert "CRON_TZ" not in block("crontab")
    written = generate(seed=3, students=12).write(installed.root / "set", zip_name="oneroster.zip")
    shutil.move(written, installed.root / "lib" / "oneroster.zip")
    with psycopg.connect(installed.url()) as su:
        su.execute("refresh materialized view course_weekly_performance with no data")  # as a failed restore
        su.commit()
    smtp = SmtpServer().start()
    try:
        installed.write_env(SMTP_URL=smtp.url)
        for schedule, _, command in jobs:
            done = as_cron(installed, command)
            assert done.returncode == 0, f"{schedule} {command}:\n{done.stdout}\n{done.stderr}"
            assert "Traceback" not in done.stderr
            if "import oneroster" in command:
                assert "rows written" in done.stdout
            elif "digest" not in command:
                assert done.stdout == "" and done.stderr == "", f"{command} printed:\n{done.stdout}{done.stderr}"
        with psycopg.connect(installed.url()) as su:
            assert su.execute("select class_view_populated()").fetchone()[0] is True  # the refresh line
            guardians = su.execute("select count(*) from guardian").fetchone()[0]
        # Not the school's digest hour (unless it is, below); the hourly alerts may have mailed.
        digests = [m for m in smtp.messages if "new alert" not in m.message["Subject"]]
        assert guardians > 0 and digests == []
        before = len(smtp.messages)
        now = datetime.now(UTC).astimezone(ZoneInfo("Europe/London"))
        [digest] = [command for _, _, command in jobs if "digest --at" in command]
        this_hour = now.strftime("'%a %H'")
        done = as_cron(installed, digest.replace("'Mon 07'", this_hour))
        assert done.returncode in (0, 1), done.stderr  # 1: a generated guardian no mail can go to
        assert "Traceback" not in done.stderr
        if now.minute < 59:  # the hour did not turn during the run
            sent = re.search(r"^Digest \S+: sent (\d+)", done.stdout, re.M)
            assert sent, done.stdout + done.stderr
            assert len(smtp.messages) - before == int(sent.group(1)) > 0
    finally:
        smtp.stop()
        installed.write_env()


def test_pgbouncer_blocks(installed):
    """The documented pgbouncer.ini (its database pointing at this cluster, a port and log of the test's own)
    and the environment lines: the app's role reads through it with WEEKLY_TRENDS_DB_POOLER=transaction."""
    from pgbouncer import BINARY, PgBouncer

    if not BINARY.exists():
        if in_ci():
            pytest.fail(f"{BINARY} missing")
        pytest.skip(f"{BINARY} missing")
    bouncer = PgBouncer(installed.url(dbname="postgres"))
    ini = bouncer.dir / "pgbouncer.ini"
    ours = ini.read_text().split("[pgbouncer]", 1)[1]
    ours = "\n".join(line for line in ours.splitlines() if not line.startswith(("pool_mode", "default_pool_size")))
    text = block("pgbouncer-ini").replace("host=db port=5432", f"host={installed.socket}")
    # The test's own: the database its start-up probe connects to, and the app's role in the auth file.
    text = text.replace("[databases]\n", f"[databases]\npostgres = host={installed.socket} user=postgres\n")
    ini.write_text(text + ours + "\n")
    with open(bouncer.dir / "userlist.txt", "a") as users:
        users.write('"weekly_trends_app" ""\n')
    try:
        bouncer.start()  # inside: a start that fails still stops it
        script = block("pgbouncer-env").replace(
            "@pgbouncer:6432/weekly_trends", f"@127.0.0.1:{bouncer.port}/weekly_trends"
        )
        done = ok(
            installed.sh(
                script + '/srv/weekly-trends/.venv/bin/python -c "'
                "from web.settings import Settings; from web.connection import connect; "
                "s = Settings.load(); assert s.db_pooler == 'transaction', s.db_pooler; "
                "c = connect(s, 'runbook'); "
                "print(c.execute('select current_user, count(*) from course').fetchone())\"\n"
            ),
            "pgbouncer-env",
        )
        assert "weekly_trends_app" in done.stdout
    finally:
        bouncer.stop()


# --- nginx ----------------------------------------------------------------------------------------------


def start_serve(host: Host, port: int, **extra: str) -> subprocess.Popen:
    script = block("serve").replace("127.0.0.1:8000", f"127.0.0.1:{port}")
    log = open(host.root / "serve.log", "a")  # noqa: SIM115 - the server's stderr, closed with it
    process = subprocess.Popen(
        [
            "env",
            "-i",
            f"HOME={host.root / 'home'}",
            f"PATH={host.path}",
            "/bin/sh",
            "-ec",
            host.localize(script, **extra),
        ],
        stdout=log,
        stderr=log,
        start_new_session=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert process.poll() is None, (host.root / "serve.log").read_text()
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2).close()
            return process
        except (urllib.error.URLError, OSError):
            time.sleep(0.3)
    raise AssertionError((host.root / "serve.log").read_text())


def stop_serve(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(30)


def self_signed(directory: Path) -> tuple[Path, Path]:
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return cert, key


def test_nginx_block_in_front_of_serve(installed):
    """Debian's nginx with the documented server block (its port, certificate and log paths the test's) in
    front of the documented serve: a sign-in and a same-origin POST on a port other than 443 work, a forged
    X-Forwarded-For does not reach /metrics, and the access log holds no token."""
    if not NGINX.exists():
        if in_ci():
            pytest.fail(f"{NGINX} missing (nginx-light)")
        pytest.skip(f"{NGINX} missing")
    people = family(installed.url())
    app_port, proxy_port = free_port(), free_port()
    nginx_dir = installed.root / "nginx"
    (nginx_dir / "logs").mkdir(parents=True)
    cert, key = self_signed(nginx_dir)
    server = (
        block("nginx")
        .replace("listen 443 ssl;", f"listen 127.0.0.1:{proxy_port} ssl;")
        .replace("/etc/ssl/certs/trends.school.example.pem", str(cert))
        .replace("/etc/ssl/private/trends.school.example.key", str(key))
        .replace("/var/log/nginx/weekly-trends.access.log", str(nginx_dir / "access.log"))
        .replace("127.0.0.1:8000", f"127.0.0.1:{app_port}")
    )
    user = "user root;\n" if os.geteuid() == 0 else ""
    (nginx_dir / "nginx.conf").write_text(
        f"{user}daemon off;\nworker_processes 1;\nerror_log {nginx_dir / 'error.log'};\npid {nginx_dir / 'nginx.pid'};\n"
        f"events {{ worker_connections 64; }}\nhttp {{\n  access_log off;\n"
        f"  client_body_temp_path {nginx_dir}/body; proxy_temp_path {nginx_dir}/proxy;\n"
        f"  fastcgi_temp_path {nginx_dir}/fastcgi; uwsgi_temp_path {nginx_dir}/uwsgi; scgi_temp_path {nginx_dir}/scgi;\n"
        f"{server}\n}}\n"
    )
    checked = subprocess.run(
        [str(NGINX), "-t", "-p", str(nginx_dir), "-c", str(nginx_dir / "nginx.conf")],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert checked.returncode == 0, checked.stderr
    installed.write_env(WEEKLY_TRENDS_METRICS_ALLOW_FROM="10.9.9.9")
    app = start_serve(installed, app_port)
    proxy = subprocess.Popen(
        [str(NGINX), "-p", str(nginx_dir), "-c", str(nginx_dir / "nginx.conf")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        base = f"https://127.0.0.1:{proxy_port}"
        context = ssl.create_default_context(cafile=str(cert))
        context.check_hostname = False

        class NoRedirect(urllib.request.HTTPRedirectHandler):
            def redirect_request(self, *args, **kwargs):
                return None

        opener = urllib.request.build_opener(urllib.request.HTTPSHandler(context=context), NoRedirect)
        deadline = time.monotonic() + 30
        while True:
            try:
                opener.open(base + "/healthz", timeout=5).close()
                break
            except (urllib.error.URLError, OSError):
                assert time.monotonic() < deadline, (nginx_dir / "error.log").read_text()
                time.sleep(0.2)

        def call(path: str, method: str = "GET", headers: dict | None = None, data: bytes | None = None):
            request = urllib.request.Request(base + path, method=method, headers=headers or {}, data=data)
            try:
                with opener.open(request, timeout=10) as response:
                    return response.status, dict(response.headers), response.read()
            except urllib.error.HTTPError as error:
                return error.code, dict(error.headers), error.read()

        status, headers, _ = call(f"/login?token={people['token']}")
        assert status == 303, status
        cookie = headers["Set-Cookie"].split(";", 1)[0]
        assert "Secure" in headers["Set-Cookie"]  # X-Forwarded-Proto reached the app
        status, headers, body = call(f"/students/{people['student']}", headers={"Cookie": cookie})
        assert status == 200 and "Strict-Transport-Security" in headers
        # A same-origin POST through the proxy on a port other than 443: Host carries the port.
        status, _, body = call(
            "/language",
            "POST",
            {"Cookie": cookie, "Origin": base, "Content-Type": "application/x-www-form-urlencoded"},
            b"language=es&next=/",
        )
        assert status in (302, 303), (status, body[:300])
        # A forged X-Forwarded-For is replaced by the proxy: /metrics stays closed to the forger.
        assert call("/metrics", headers={"X-Forwarded-For": "10.9.9.9"})[0] == 404
    finally:
        proxy.send_signal(signal.SIGQUIT)
        proxy.wait(30)
        stop_serve(app)
        installed.write_env()
    log = (nginx_dir / "access.log").read_text()
    assert "/login" in log and "token=" not in log and people["token"] not in log
    assert people["token"] not in (installed.root / "serve.log").read_text()


# --- the upgrade ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def clone(installed):
    """The install block: a clone of this repository (committed HEAD) and `make install` in it."""
    srv = installed.root / "srv"
    done = installed.sh(
        block("install"),
        timeout=900,
        **{
            "https://git.example.org/school/weekly-trends.git": str(ROOT),
            "/srv/weekly-trends": str(srv / "weekly-trends"),
        },
    )
    path = srv / "weekly-trends"
    if done.returncode == 0 and (path / ".git").exists():
        # `git pull` in the upgrade block needs a branch with an upstream (the repository may be on a detached
        # HEAD, as CI checks out): the clone follows the HEAD of the repository it came from.
        for args in (
            ["checkout", "-q", "-B", "release"],
            ["config", "branch.release.remote", "origin"],
            ["config", "branch.release.merge", "HEAD"],
        ):
            subprocess.run(["git", "-C", str(path), *args], check=True, capture_output=True, timeout=60)
    return path, done


@pytest.mark.slow
def test_install_block_makes_a_working_virtualenv(clone):
    path, done = clone
    ok(done, "install")
    assert (path / ".venv" / "bin" / "weekly-trends").exists()


@pytest.mark.slow
def test_upgrade_block_from_0004(installed, clone):
    """A database at revision 0004 with data, upgraded by the documented block (git pull, make install,
    migrate, HUP, check) under a running serve: no 5xx after the roll-out, check clean, the token works."""
    path, done = clone
    ok(done, "install")
    installed.srv = path
    with psycopg.connect(installed.url(dbname="postgres"), autocommit=True) as su:
        su.execute("create database weekly_trends_old owner weekly_trends_owner")
        su.execute("alter role weekly_trends_owner createrole")  # 0001 and 0002 comment on the roles
    try:
        installed.write_env(dbname="weekly_trends_old")
        ok(
            installed.sh(
                "set -a; . /etc/weekly-trends/env; set +a\n"
                "DATABASE_URL=$OWNER_DATABASE_URL /srv/weekly-trends/.venv/bin/weekly-trends migrate 0004"
            ),
            "migrate 0004",
        )
        people = family(installed.url(dbname="weekly_trends_old"))
        port = free_port()
        serve = start_serve(installed, port)
        try:
            ok(installed.sh(block("upgrade")), "upgrade")
            time.sleep(3)  # the old workers finish; the new ones boot on the new code
            statuses = []
            for _ in range(20):
                request = urllib.request.Request(
                    f"http://127.0.0.1:{port}/api/v1/students/{people['student']}/weekly-trend?end=2024-01-21",
                    headers={"Authorization": f"Bearer {people['token']}"},
                )
                try:
                    with urllib.request.urlopen(request, timeout=10) as response:
                        statuses.append(response.status)
                        body = json.loads(response.read())
                except urllib.error.HTTPError as error:
                    statuses.append(error.code)
            assert statuses == [200] * 20
            assert body["weeks_with_data"] == 1
            # The figure written at 0004 (S0's one quiz, 60) came through every revision.
            assert [
                (w["week_start"], w["quiz_avg"]) for w in body["weekly_stats"]["weekly_trend"] if w["quiz_count"]
            ] == [("2024-01-15", 60.0)]
        finally:
            stop_serve(serve)
    finally:
        installed.srv = ROOT
        installed.write_env()
        with psycopg.connect(installed.url(dbname="postgres"), autocommit=True) as su:
            su.execute("alter role weekly_trends_owner nocreaterole")
            su.execute("drop database if exists weekly_trends_old with (force)")


# --- pg_cron --------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_pg_cron_blocks_run_a_job(tmp_path):
    """On a PostgreSQL 15 cluster of its own: the documented configuration, roles, migrate, extension and
    jobs; the class-view job, rescheduled to every minute, runs as the owner and succeeds."""
    if not PG_CRON.exists():
        if in_ci():
            pytest.fail(f"{PG_CRON} missing (postgresql-15-cron)")
        pytest.skip(f"{PG_CRON} missing (postgresql-15-cron)")
    if os.geteuid() == 0:
        install = subprocess.run(
            ["/bin/sh", "-ec", block("pg-cron-install")],
            capture_output=True,
            text=True,
            timeout=300,
            env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
        )
        assert install.returncode == 0, install.stderr
    host = Host(PG15_BIN, conf="\n" + block("pg-cron-conf"))
    try:
        host.write_env()
        ok(host.psql(block("roles"), host.url(dbname="postgres")), "roles")
        ok(host.sh(block("first-migrate")), "first-migrate")
        ok(host.psql(block("pg-cron-extension"), host.url()), "pg-cron-extension")
        ok(host.psql(block("pg-cron-jobs"), host.url("weekly_trends_owner")), "pg-cron-jobs")
        with psycopg.connect(host.url("weekly_trends_owner"), autocommit=True) as owner:
            jobs = dict(owner.execute("select jobname, jobid from cron.job").fetchall())
            assert set(jobs) == {
                "weekly-trends-class-view",
                "weekly-trends-check",
                "weekly-trends-access-log",
                "weekly-trends-purge",
            }
            owner.execute("refresh materialized view course_weekly_performance with no data")
            # The same name again replaces the job's schedule: every minute, pg_cron's finest in 1.4.
            owner.execute(
                "select cron.schedule('weekly-trends-class-view', '* * * * *',"
                " 'select refresh_course_weekly_performance()')"
            )
            deadline = time.monotonic() + 150
            runs = []
            while time.monotonic() < deadline:
                runs = owner.execute(
                    "select status, return_message from cron.job_run_details where jobid = %s",
                    (jobs["weekly-trends-class-view"],),
                ).fetchall()
                if runs and runs[0][0] in ("succeeded", "failed"):  # not while starting or running
                    break
                time.sleep(2)
            assert runs and runs[0][0] == "succeeded", (runs, host.server.log()[-2000:])
            assert owner.execute("select class_view_populated()").fetchone()[0] is True
    finally:
        host.cleanup()


def test_the_digest_line_of_docs_mail_md_is_the_runbooks():
    """docs/mail.md repeats the digest's cron line: it must be the one run here, word for word."""
    mail = (ROOT / "docs" / "mail.md").read_text()
    repeated = [line for line in mail.splitlines() if "weekly-trends digest --at" in line and line.startswith("0 ")]
    jobs = [line for line in block("crontab").splitlines() if "digest --at" in line]
    assert repeated and [" ".join(line.split()) for line in repeated] == [" ".join(line.split()) for line in jobs]
