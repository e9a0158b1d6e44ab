"""What every section shares: the three write-path variants, timing, percentiles, the result shapes."""

from __future__ import annotations

import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

OURS, PLAIN, SEED_BASELINE = "ours", "no triggers", "seed baseline"
VARIANTS = (OURS, PLAIN, SEED_BASELINE)
DEFAULT_STUDENTS = 20_000
SOURCE_TABLES = ("quiz_attempt", "assignment_submission")
OUR_TRIGGERS = (
    "_500_maintain_weekly_after_insert",
    "_500_maintain_weekly_after_update",
    "_500_maintain_weekly_after_delete",
)
SEED_TRIGGER = "_600_seed_recalculate_week"
SEED_SQL = Path(__file__).with_name("seed_baseline.sql")


def log(message: str) -> None:
    # Progress goes to stderr so stdout holds only the result tables.
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def recreate_database(admin_url: str, name: str) -> str:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name)))
        conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
    return make_conninfo(admin_url, dbname=name)


def checkpoint(conn: psycopg.Connection) -> None:
    # Flushes the previous step's dirty pages now rather than during the next
    # timed statement. Needs superuser or pg_checkpoint; harmless to skip.
    try:
        conn.execute("checkpoint")
    except psycopg.errors.InsufficientPrivilege:
        pass


def install_seed_baseline(conn: psycopg.Connection) -> None:
    """The seed's row-level trigger and its index, installed disabled."""
    conn.execute(SEED_SQL.read_text())


def use_variant(conn: psycopg.Connection, variant: str) -> None:
    """Enable the triggers of one variant on both source tables: ours, none, or the seed's.

    The foreign-key and TRUNCATE triggers stay as they are, so the variants
    differ only by what maintains the weekly rows.
    """
    with conn.transaction():
        for table in SOURCE_TABLES:
            for trigger in OUR_TRIGGERS:
                action = "enable" if variant == OURS else "disable"
                conn.execute(
                    sql.SQL("alter table {} {} trigger {}").format(
                        sql.Identifier(table), sql.SQL(action), sql.Identifier(trigger)
                    )
                )
            action = "enable" if variant == SEED_BASELINE else "disable"
            conn.execute(
                sql.SQL("alter table {} {} trigger {}").format(
                    sql.Identifier(table), sql.SQL(action), sql.Identifier(SEED_TRIGGER)
                )
            )


def round_order(round_number: int, variants: tuple[str, ...] = VARIANTS) -> tuple[str, ...]:
    # ABBA: no variant always runs first (caches warm, a checkpoint due).
    return variants if round_number % 2 == 0 else variants[::-1]


def percentile(values: list[float], p: float) -> float:
    """The p-th percentile (0..100), interpolated between the closest ranks."""
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    rank = (len(ordered) - 1) * p / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def timed_call_ms(fn, *args) -> float:
    start = time.perf_counter()
    fn(*args)
    return (time.perf_counter() - start) * 1000


def fetch_all(conn: psycopg.Connection, query, params=None) -> None:
    cur = conn.execute(query, params)
    if cur.description is not None:
        cur.fetchall()


def timed_ms(conn: psycopg.Connection, query, params=None) -> float:
    """Milliseconds to run a query and fetch its rows (as a client would)."""
    return timed_call_ms(fetch_all, conn, query, params)


def median(values: list[float]) -> float:
    return statistics.median(values)


@dataclass
class Check:
    """One target of the issue: a measured ratio (or value) against its bound."""

    section: str
    name: str
    value: float
    bound: float
    unit: str = "×"
    at_least: bool = False  # True: the value must reach the bound (throughput)
    why: str = ""  # the measured cause, when missed

    @property
    def met(self) -> bool:
        return self.value >= self.bound if self.at_least else self.value <= self.bound

    def shown(self, value: float) -> str:
        if self.unit == "×":
            return f"{value:.2f}×"
        return f"{value:,.2f} {self.unit}" if value != int(value) else f"{value:,.0f} {self.unit}"

    @property
    def target(self) -> str:
        return ("≥ " if self.at_least else "≤ ") + self.shown(self.bound)


@dataclass
class Section:
    """One section of the report: a table, notes under it, and the targets it checks."""

    key: str
    title: str
    what: list[str]
    header: list[str]
    rows: list[list[str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    skipped: str = ""


def fmt_ms(value: float) -> str:
    return f"{value:,.3f} ms" if value < 1 else f"{value:,.2f} ms" if value < 100 else f"{value:,.0f} ms"


def fmt_ratio(value: float) -> str:
    return f"{value:.2f}×"
