"""The tables on stdout and docs/benchmarks.md."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from .common import DEFAULT_STUDENTS, Section

# Where a missed target's measured cause and its fix are written up.
ANALYSIS = "docs/benchmark-analysis.md"


def markdown_table(header: list[str], rows: list[list[str]]) -> list[str]:
    return [
        "| " + " | ".join(header) + " |",
        "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|",
        *("| " + " | ".join(row) + " |" for row in rows),
    ]


def print_sections(sections: list[Section]) -> None:
    for section in sections:
        print(f"\n== {section.title}")
        if section.skipped:
            print(section.skipped)
            continue
        cells = [section.header, *section.rows]
        widths = [max(len(line[i]) for line in cells) for i in range(len(section.header))]
        for n, line in enumerate(cells):
            print("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(line, widths))))
            if n == 0:
                print("  ".join("-" * w for w in widths))
    checks = [c for s in sections for c in s.checks]
    if checks:
        print("\n== Targets")
        for c in checks:
            print(f"{'met   ' if c.met else 'MISSED'} {c.name}: {c.shown(c.value)} (target {c.target})")


def data_lines(loaded: dict) -> list[str]:
    rows = loaded["quiz_rows"] + loaded["assignment_rows"]
    return [
        f"{loaded['students']:,} students over 4 time zones (UTC, Europe/London, America/New_York, Asia/Tokyo),",
        f"{loaded['courses']:,} courses of about 25 students (new classes each school year), 3 school years:",
        f"{loaded['school_weeks']} school weeks from {loaded['first_week']} to {loaded['last_day']} (holidays left out),",
        "about 11 pieces of work (course_work: 8 quizzes, 3 assignments) set per student and week, each handed in",
        "as a score linked to it but 1.5% (5% absent weeks: excused; 4% absent days), 5% teacher overrides, 10% of",
        "the scores ungraded when written and three quarters of that graded later by an UPDATE",
        "(`bench/district.py`, seeded: the same arguments give the same rows).",
        "",
        f"- loaded by COPY with our triggers on, one transaction per 100 students, {loaded.get('writers', 1)}"
        f" connections in parallel: {loaded['quiz_rows']:,} quiz",
        f"  attempts and {loaded['assignment_rows']:,} assignment submissions ({rows:,} rows, "
        f"{loaded['graded_later']:,} graded afterwards) in {loaded['seconds']:,.1f} s:"
        f" **{loaded['rows_per_second']:,.0f} rows/s** (generation in Python included);",
        f"- the triggers made {loaded['weekly_rows']:,} weekly rows; the class view holds"
        f" {loaded.get('class_view_rows', 0):,} course weeks;",
        f"- the seed baseline's index (bench/seed_baseline.sql) was then built in {loaded['seed_index_seconds']:.1f} s.",
    ] + (
        [
            f"- {loaded['course_work_rows']:,} pieces of course work, {loaded['enrollment_rows']:,} enrollments,"
            f" {loaded['excusal_rows']:,} excusals; of the {loaded['work_set']:,} pieces set to students"
            f" {loaded['missing']:,} are missing ({loaded['missing'] / loaded['work_set']:.1%}).",
        ]
        if "work_set" in loaded
        else []
    )


def target_rows(sections: list[Section]) -> list[list[str]]:
    rows = []
    for section in sections:
        for c in section.checks:
            verdict = (
                "yes"
                if c.met
                else "**NO**" + (f": {c.why}" if c.why else "") + (f" ([why and the fix]({Path(ANALYSIS).name}))")
            )
            rows.append([section.title, c.name, c.shown(c.value), c.target, verdict])
    return rows


def write_report(
    path: Path,
    args,
    sections: list[Section],
    loaded: dict,
    machine: dict,
    command: str,
    started: datetime,
    elapsed: float,
) -> None:
    small = args.students != DEFAULT_STUDENTS
    lines = [
        "# Benchmarks",
        "",
        "Our statement-level triggers (db/functions/210_source_triggers.sql) against the same schema without",
        "them and against the seed's design (a row-level trigger that recomputes the week), at school-district",
        "scale, all measured in one run on one server. Produced by `bench/run.py`; rerun with `make bench`",
        "(`BENCH_ARGS=...` passes options). Overwritten by a run of every section; a run of some (`--only write,read`)",
        "rewrites only their sections and their rows of the targets, with the scale and command they ran with.",
        "Ratios measured in one run count; absolute times on a shared 2-core machine do not.",
        "",
    ]
    if small:
        lines += [
            f"> **This report comes from a run at --students {args.students:,}, not the default"
            f" {DEFAULT_STUDENTS:,}** (see Command below). Rerun `make bench` for the default scale.",
            "",
        ]
    lines += [
        "## Targets",
        "",
        *markdown_table(["section", "target", "measured", "bound", "met?"], target_rows(sections)),
        "",
    ]
    lines += ["## Data", "", *data_lines(loaded), ""]
    for section in sections:
        lines += [f"## {section.title}", ""]
        if section.skipped:
            lines += [section.skipped, ""]
            continue
        lines += [*section.what, "", *markdown_table(section.header, section.rows), ""]
        if section.notes:
            lines += [*section.notes, ""]
    lines += [
        "## Machine",
        "",
        *(f"- {key}: {value}" for key, value in machine.items()),
        f"- date: {started.strftime('%Y-%m-%d %H:%M %Z')}",
        f"- total run time: {elapsed / 60:.1f} min",
        "",
        "## Command",
        "",
        "```",
        command,
        "```",
        "",
        '`make bench BENCH_ARGS="..."` runs the same with the arguments after `bench.run`.',
        "",
    ]
    for title in (PREPARED_SECTION, PIECES_SECTION):
        if title in (f"## {s.title}" for s in sections):
            continue
        kept = kept_section(path, title)
        if kept:  # measured by bench/prepared.py or an earlier run, not by this one: carried over
            at = lines.index("## Machine")
            lines[at:at] = [*kept, ""]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines))


PREPARED_SECTION = "## Prepared statements"
PIECES_SECTION = "## Named pieces: the SQL splits before and after"


def section_lines(section: Section, args, command: str) -> list[str]:
    """One section on its own (a run of that section alone), with the scale and command it ran with."""
    lines = [f"## {section.title}", ""]
    if section.skipped:
        return [*lines, section.skipped]
    lines += [*section.what, "", *markdown_table(section.header, section.rows), ""]
    lines += [*section.notes, "", f"Run at --students {args.students:,}: `{command}`."]
    return lines


def kept_section(path: Path, title: str) -> list[str]:
    """The lines of section `title` (up to the next "## ") in the report at path, if any."""
    if not path.exists():
        return []
    lines = path.read_text().splitlines()
    if title not in lines:
        return []
    start = lines.index(title)
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
    while end > start and not lines[end - 1].strip():
        end -= 1
    return lines[start:end]


def replace_section(path: Path, title: str, section: list[str]) -> None:
    """Write section `title` into the report at path: in place of its old text, else before the machine."""
    lines = path.read_text().splitlines() if path.exists() else []
    old = kept_section(path, title)
    if old:
        start = lines.index(title)
        lines[start : start + len(old)] = section
    else:
        at = lines.index("## Machine") if "## Machine" in lines else len(lines)
        lines[at:at] = [*section, ""]
    path.write_text("\n".join(lines) + "\n")


def replace_targets(path: Path, sections: list[Section]) -> None:
    """The rows of the targets table for `sections`: in place of their old rows, else at the table's end."""
    lines = path.read_text().splitlines()
    if "## Targets" not in lines:
        return
    start = lines.index("## Targets")
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
    first = next((i for i in range(start + 1, end) if lines[i].startswith("|")), None)
    if first is None:
        return
    last = first
    while last + 1 < len(lines) and lines[last + 1].startswith("|"):
        last += 1
    rows = lines[first + 2 : last + 1]  # after the header and its rule
    for section in sections:
        new = ["| " + " | ".join(row) + " |" for row in target_rows([section])]
        old = [n for n, row in enumerate(rows) if row.startswith(f"| {section.title} |")]
        at = old[0] if old else len(rows)
        rows = [row for n, row in enumerate(rows) if n not in old]
        rows[at:at] = new
    lines[first + 2 : last + 1] = rows
    path.write_text("\n".join(lines) + "\n")


def replace_sections(path: Path, sections: list[Section], args, command: str) -> None:
    """A run of some sections (--only): each rewrites its section of the report at path (in place, else before
    the machine) and its rows of the targets table; every other section stays as it was."""
    for section in sections:
        replace_section(path, f"## {section.title}", section_lines(section, args, command))
    replace_targets(path, sections)
