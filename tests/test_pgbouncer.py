"""Behind a real PgBouncer in transaction mode (issue 22, finding 12): the parents' reads, three
concurrent digests, refresh, check and a OneRoster import, with 0 errors. Each transaction may run on
another server connection: no server-side prepared statement and no session state may outlive one."""

from __future__ import annotations

import re
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from pgbouncer import BINARY, PgBouncer
from psycopg.conninfo import conninfo_to_dict
from test_digest import digest_process, many_households, subprocess_env  # noqa: F401 - fixture

from web.ops.cli import main

from conftest import in_ci
from factories import assert_exact
from mailserver import smtp_server  # noqa: F401 - fixture
from oneroster_gen import expected_by_id, generate
from reference import stored_weeks

if not BINARY.exists():
    if in_ci():
        raise RuntimeError(f"CI=true: no PgBouncer at {BINARY} (.ci/run installs Debian's pgbouncer)")
    pytest.skip(f"no PgBouncer at {BINARY}", allow_module_level=True)

READS_PER_THREAD = 60
THREADS = 4


@pytest.fixture
def bouncer(request, server_url, db_url):
    """PgBouncer in front of the test server (2 server connections, or as many as the test's
    `pool_size` mark says); yields this test's database through it."""
    mark = request.node.get_closest_marker("pool_size")
    pgbouncer = PgBouncer(server_url, pool_size=mark.args[0] if mark else 2).start()
    try:
        yield pgbouncer.url(conninfo_to_dict(db_url)["dbname"])
    finally:
        log = pgbouncer.log()
        pgbouncer.stop()
        print(f"\npgbouncer log (last lines):\n{log[-1500:]}")


@pytest.fixture
def through_bouncer(bouncer, monkeypatch):
    """The CLI's settings: the database through PgBouncer, declared as a transaction-mode pooler."""
    monkeypatch.setenv("DATABASE_URL", bouncer)
    monkeypatch.setenv("WEEKLY_TRENDS_DB_POOLER", "transaction")
    return bouncer


def test_the_parents_reads_through_pgbouncer_in_transaction_mode(bouncer, family, conn):
    from web import create_app
    from web.db import close_pool

    # 4 pooled connections of the app share PgBouncer's 2 server connections; each app connection runs
    # far more than psycopg's 5 executions of a statement after which it would prepare it on the server.
    app = create_app({"DATABASE_URL": bouncer, "POOL_MIN_SIZE": 4, "POOL_MAX_SIZE": 4, "SECRET_KEY": "k"})
    auth = {"Authorization": f"Bearer {family['token']}"}
    paths = [
        f"/api/v1/students/{family['a']}/weekly-trend?end=2024-02-04",
        "/api/v1/me/students",
        f"/api/v1/students/{family['a']}/weekly-trend.csv?end=2024-02-04",
        f"/students/{family['a']}?end=2024-02-04",
    ]
    failures: list[str] = []
    lock = threading.Lock()

    def reads(n: int) -> int:
        client = app.test_client()
        done = 0
        for i in range(READS_PER_THREAD):
            path = paths[(n + i) % len(paths)]
            response = client.get(path, headers=auth)
            if response.status_code != 200:
                with lock:
                    failures.append(f"{path}: {response.status_code} {response.get_data(as_text=True)[:200]}")
            done += 1
        return done

    try:
        with ThreadPoolExecutor(THREADS) as pool:
            total = sum(pool.map(reads, range(THREADS)))
        # and the other family's child stays out of reach through the pooler too
        assert app.test_client().get(f"/api/v1/students/{family['b']}/weekly-trend", headers=auth).status_code == 404
    finally:
        close_pool(app)
    assert total == READS_PER_THREAD * THREADS
    assert failures == [], f"{len(failures)} of {total} reads failed: {failures[:5]}"
    # every read was logged, on the primary, through the pooler
    assert conn.execute("select count(*) from access_log").fetchone()[0] >= total // 2


# A digest run holds two server connections while it sends (its claim's lock in an open transaction,
# and its writes): three runs need at least four (docs/operations.md).
@pytest.mark.pool_size(4)
def test_three_concurrent_digests_through_pgbouncer(bouncer, smtp_server, many_households, conn):  # noqa: F811
    smtp_server.handler.on_message = lambda count: __import__("time").sleep(0.05)  # the runs overlap
    env = subprocess_env(bouncer, smtp_server.url, WEEKLY_TRENDS_DB_POOLER="transaction")
    runs = [digest_process(env) for _ in range(3)]
    results = [p.communicate(timeout=180) for p in runs]
    assert [p.returncode for p in runs] == [0, 0, 0], results
    assert sorted(m.recipients[0] for m in smtp_server.messages) == sorted(many_households)  # each exactly once
    assert sum(int(re.search(r"sent (\d+),", out)[1]) for out, _ in results) == 12
    assert conn.execute("select count(*), max(attempts) from digest_delivery where outcome = 'sent'").fetchone() == (
        12,
        1,
    )
    # no lock left behind on PgBouncer's server connections: a fourth run finds every digest sent, none busy
    fourth = digest_process(env)
    out, err = fourth.communicate(timeout=120)
    assert fourth.returncode == 0 and "sent 0, already sent 12" in out, (out, err)


def test_refresh_check_and_import_through_pgbouncer(through_bouncer, conn, tmp_path, capsys):
    s = generate(seed=5, students=40, version="1.2")
    path = s.write(tmp_path / "set")
    assert main(["import", "oneroster", str(path), "--quiet"]) == 0, capsys.readouterr().err
    assert "rows written" in capsys.readouterr().out
    assert {key: row[2:] for key, row in stored_weeks(conn).items()} == expected_by_id(conn, s)
    assert main(["import", "oneroster", str(path), "--quiet"]) == 0  # the reimport writes nothing
    assert "Nothing changed." in capsys.readouterr().out
    for _ in range(2):  # psycopg would prepare the batch's statement after 5 executions: 40 students, batches of 1
        assert main(["refresh", "--quiet", "--batch-size", "1"]) == 0, capsys.readouterr().err
        assert "Refreshed 40 student(s)" in capsys.readouterr().out
        assert main(["check"]) == 0, capsys.readouterr().err
        assert "No drift" in capsys.readouterr().out
    assert main(["backfill", "--dry-run", "--weeks", "2"]) == 0
    assert_exact(conn)
