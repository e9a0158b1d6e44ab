"""A seeded generator of OneRoster CSV sets (1.1 or 1.2 headers), and the weekly figures the set means.

The expected figures are computed here from the generated records alone, by the issue's mapping rules
(percentage, only 'fully graded' counts, the week of scoreDate in the student's time zone), never from
the database: tests compare them with what the import and the triggers stored.
"""

from __future__ import annotations

import csv
import random
import zipfile
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

from reference import iso_week_start, rounded

HEADERS = {
    "1.1": {
        "users": "sourcedId,status,dateLastModified,enabledUser,orgSourcedIds,role,username,userIds,givenName,"
        "familyName,middleName,identifier,email,sms,phone,agentSourcedIds,grades,password",
        "classes": "sourcedId,status,dateLastModified,title,grades,courseSourcedId,classCode,classType,location,"
        "schoolSourcedId,termSourcedIds,subjects,subjectCodes,periods",
        "enrollments": "sourcedId,status,dateLastModified,classSourcedId,schoolSourcedId,userSourcedId,role,primary,"
        "beginDate,endDate",
        "categories": "sourcedId,status,dateLastModified,title",
        "lineItems": "sourcedId,status,dateLastModified,title,description,assignDate,dueDate,classSourcedId,"
        "categorySourcedId,gradingPeriodSourcedId,resultValueMin,resultValueMax",
        "results": "sourcedId,status,dateLastModified,lineItemSourcedId,studentSourcedId,scoreStatus,score,scoreDate,"
        "comment",
    },
    "1.2": {
        "users": "sourcedId,status,dateLastModified,enabledUser,username,userIds,givenName,familyName,middleName,"
        "identifier,email,sms,phone,agentSourcedIds,grades,password,userMasterIdentifier,"
        "resourceSourcedIds,preferredGivenName,preferredMiddleName,preferredFamilyName,"
        "primaryOrgSourcedId,pronouns",
        "roles": "sourcedId,status,dateLastModified,userSourcedId,roleType,role,beginDate,endDate,orgSourcedId,"
        "userProfileSourcedId",
        "classes": "sourcedId,status,dateLastModified,title,grades,courseSourcedId,classCode,classType,location,"
        "schoolSourcedId,termSourcedIds,subjects,subjectCodes,periods",
        "enrollments": "sourcedId,status,dateLastModified,classSourcedId,schoolSourcedId,userSourcedId,role,primary,"
        "beginDate,endDate",
        "categories": "sourcedId,status,dateLastModified,title,weight",
        "lineItems": "sourcedId,status,dateLastModified,title,description,assignDate,dueDate,classSourcedId,"
        "categorySourcedId,gradingPeriodSourcedId,academicSessionSourcedId,schoolSourcedId,"
        "resultValueMin,resultValueMax,scoreScaleSourcedId",
        "results": "sourcedId,status,dateLastModified,lineItemSourcedId,studentSourcedId,classSourcedId,"
        "scoreScaleSourcedId,scoreStatus,score,textScore,scoreDate,comment,learningObjectiveSetSourcedId,"
        "inProgress,incomplete,late,missing",
    },
}
ALL_FILES = (
    "academicSessions",
    "categories",
    "classes",
    "classResources",
    "courses",
    "courseResources",
    "demographics",
    "enrollments",
    "lineItems",
    "orgs",
    "resources",
    "results",
    "users",
)
TIME_ZONES = ("UTC", "Europe/London", "America/New_York", "Asia/Tokyo")
CATEGORIES = [
    ("cat-quiz", "Quizzes", "quiz"),
    ("cat-test", "Unit tests", "quiz"),
    ("cat-hw", "Homework", "assignment"),
    ("cat-proj", "Projects", "assignment"),
]
STATUSES = ["fully graded"] * 14 + ["submitted", "partially graded", "not submitted", "exempt"]


@dataclass
class OneRosterSet:
    """Records as dicts keyed by the specification's column names, per file."""

    version: str = "1.1"
    system_code: str = "gen-sis"
    users: list[dict] = field(default_factory=list)
    classes: list[dict] = field(default_factory=list)
    enrollments: list[dict] = field(default_factory=list)
    categories: list[dict] = field(default_factory=list)
    line_items: list[dict] = field(default_factory=list)
    results: list[dict] = field(default_factory=list)
    student_zones: dict[str, str] = field(default_factory=dict)
    modes: dict[str, str] = field(default_factory=dict)  # file -> bulk | delta (default bulk for files written)

    def files(self) -> dict[str, list[dict]]:
        files = {
            "users": self.users,
            "classes": self.classes,
            "enrollments": self.enrollments,
            "categories": self.categories,
            "lineItems": self.line_items,
            "results": self.results,
        }
        if self.version == "1.2":
            files["roles"] = [
                {
                    "sourcedId": f"role-{u['sourcedId']}",
                    "userSourcedId": u["sourcedId"],
                    "roleType": "primary",
                    "role": u["role"],
                    "orgSourcedId": "org-1",
                    "status": u.get("status", ""),
                }
                for u in self.users
            ]
        return files

    def write(self, directory: Path, *, only: tuple[str, ...] | None = None, zip_name: str | None = None) -> Path:
        """Writes manifest.csv and the files (all, or `only`); returns the folder, or the .zip when zip_name."""
        directory.mkdir(parents=True, exist_ok=True)
        files = {
            n: rows
            for n, rows in self.files().items()
            if only is None or n in only or (n == "roles" and "users" in only)
        }
        for name, rows in files.items():
            header = HEADERS[self.version][name].split(",")
            # Extension columns (metadata.*) go after the specification's, as OneRoster allows.
            header += sorted({k for row in rows for k in row if k.startswith("metadata.")})
            with open(directory / f"{name}.csv", "w", newline="", encoding="utf-8") as f:
                writer = csv.writer(f)
                writer.writerow(header)
                for row in rows:
                    writer.writerow([row.get(h, "") for h in header])
        manifest = [("manifest.version", "1.0"), ("oneroster.version", self.version)]
        names = list(ALL_FILES) + (["roles"] if self.version == "1.2" else [])
        for name in names:
            mode = self.modes.get(name, "bulk") if name in files else "absent"
            manifest.append((f"file.{name}", mode))
        manifest += [("source.systemName", "Generated SIS"), ("source.systemCode", self.system_code)]
        with open(directory / "manifest.csv", "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(["propertyName", "value"])
            writer.writerows(manifest)
        if zip_name is None:
            return directory
        archive = directory.parent / zip_name
        with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as z:
            for path in sorted(directory.iterdir()):
                z.write(path, path.name)
        return archive

    # -- what the set means ------------------------------------------------------------------------------

    def kind_of(self, line_item_id: str) -> str:
        li = next(li for li in self.line_items if li["sourcedId"] == line_item_id)
        category = next((c for c in self.categories if c["sourcedId"] == li.get("categorySourcedId")), None)
        title = (category or {}).get("title", "").lower()
        return "quiz" if ("quiz" in title or "test" in title) else "assignment"

    def expected_weeks(self) -> dict[tuple[str, date], tuple]:
        """{(student sourcedId, Monday): (quiz_count, quiz_avg, assignment_count, assignment_avg, overall_avg)}."""
        maxima = {
            li["sourcedId"]: li.get("resultValueMax", "") for li in self.line_items if li.get("status") != "tobedeleted"
        }
        students = {u["sourcedId"] for u in self.users if u["role"] == "student" and u.get("status") != "tobedeleted"}
        sums: dict[tuple[str, date], list] = defaultdict(lambda: [Decimal(0), 0, Decimal(0), 0])
        for r in self.results:
            if r.get("status") == "tobedeleted" or r["scoreStatus"] != "fully graded":
                continue
            if r["lineItemSourcedId"] not in maxima or r["studentSourcedId"] not in students:
                continue
            top = maxima[r["lineItemSourcedId"]]
            value = Decimal(r["score"]) if not top else Decimal(r["score"]) / Decimal(top) * 100
            value = value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
            zone = self.student_zones[r["studentSourcedId"]]
            week = iso_week_start(instant(r["scoreDate"], zone), zone)
            s = sums[(r["studentSourcedId"], week)]
            if self.kind_of(r["lineItemSourcedId"]) == "quiz":
                s[0] += value
                s[1] += 1
            else:
                s[2] += value
                s[3] += 1
        return {
            key: (qc, rounded(qs, qc), ac, rounded(as_, ac), rounded(qs + as_, qc + ac))
            for key, (qs, qc, as_, ac) in sums.items()
        }


def instant(text: str, zone: str) -> datetime:
    """The importer's documented reading of scoreDate, written again independently."""
    if "T" not in text:
        return datetime.combine(date.fromisoformat(text), time(12), ZoneInfo(zone))
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=ZoneInfo(zone))


def generate(
    seed: int = 1,
    *,
    students: int = 30,
    classes: int = 4,
    items_per_class: int = 8,
    version: str = "1.1",
    time_zone: str = "UTC",
    first_monday: date = date(2024, 10, 21),
    weeks: int = 12,
) -> OneRosterSet:
    """A small school: students with 0-2 guardians, classes, items of the 4 categories, results of every status.

    Score dates cross the end of daylight saving time and ISO week boundaries, in three forms: a date, a UTC
    time (Z) and a local time without offset. Students' time zones come from `time_zone` (the import setting)
    except every fifth student, whose users.csv row carries metadata.timeZone.
    """
    r = random.Random(seed)
    s = OneRosterSet(version=version)
    for i in range(students):
        sid = f"stu-{seed}-{i}"
        guardians = [f"par-{seed}-{i}-{k}" for k in range(r.choice((0, 1, 1, 2)))]
        user = {
            "sourcedId": sid,
            "status": "active",
            "enabledUser": "true",
            "role": "student",
            "username": f"s{i}",
            "givenName": r.choice(("Ana", "Ben", "Chloé", "Dev", "Émile", "Fatima")),
            "familyName": f"Family{i}",
            "agentSourcedIds": ",".join(guardians),
            "grades": "09",
        }
        zone = time_zone
        if i % 5 == 0:
            zone = r.choice(TIME_ZONES)
            user["metadata.timeZone"] = zone
        s.student_zones[sid] = zone
        s.users.append(user)
        for gid in guardians:
            s.users.append(
                {
                    "sourcedId": gid,
                    "status": "active",
                    "enabledUser": "true",
                    "role": r.choice(("parent", "guardian")),
                    "givenName": "Parent",
                    "familyName": f"Family{i}",
                    "email": f"{gid}@families.example.org",
                    "agentSourcedIds": sid,
                }
            )
    s.users.append(
        {
            "sourcedId": f"tea-{seed}",
            "status": "active",
            "role": "teacher",
            "givenName": "Terry",
            "familyName": "Teacher",
            "email": f"tea-{seed}@school.example.edu",
        }
    )
    for cid, title, _ in CATEGORIES:
        s.categories.append({"sourcedId": cid, "status": "active", "title": title})
    for c in range(classes):
        class_id = f"cls-{seed}-{c}"
        s.classes.append(
            {
                "sourcedId": class_id,
                "status": "active",
                "title": f"Class {c}",
                "classType": "scheduled",
                "schoolSourcedId": "org-1",
            }
        )
        members = sorted(r.sample(range(students), k=max(1, students * 2 // 3)))
        for m in members:
            s.enrollments.append(
                {
                    "sourcedId": f"enr-{seed}-{c}-{m}",
                    "status": "active",
                    "classSourcedId": class_id,
                    "schoolSourcedId": "org-1",
                    "userSourcedId": f"stu-{seed}-{m}",
                    "role": "student",
                    "beginDate": r.choice(("", first_monday.isoformat())),
                    "endDate": r.choice(("", "", (first_monday + timedelta(weeks=weeks)).isoformat())),
                }
            )
        for k in range(items_per_class):
            li_id = f"li-{seed}-{c}-{k}"
            top = r.choice(("10", "20", "50", "100", "", "25"))
            s.line_items.append(
                {
                    "sourcedId": li_id,
                    "status": "active",
                    "title": f"Item {k}",
                    "classSourcedId": class_id,
                    "categorySourcedId": r.choice(CATEGORIES)[0],
                    "resultValueMin": "0",
                    "resultValueMax": top,
                    "dueDate": "",
                }
            )
            top_value = Decimal(top or "100")
            day = first_monday + timedelta(days=r.randrange(weeks * 7))
            s.line_items[-1]["dueDate"] = r.choice(
                ("", day.isoformat(), f"{day.isoformat()}T17:00:00Z", f"{day.isoformat()}T23:30:00")
            )
            for m in members:
                status = r.choice(STATUSES)
                score = (
                    ""
                    if status in ("not submitted", "exempt")
                    else str((top_value * Decimal(r.randint(0, 1000)) / 1000).quantize(Decimal("0.1")))
                )
                if status == "submitted" and r.random() < 0.5:
                    score = ""
                hour = r.choice((0, 1, 7, 12, 18, 23))
                form = r.choice(("date", "utc", "local"))
                when = (
                    day.isoformat()
                    if form == "date"
                    else f"{day.isoformat()}T{hour:02d}:{r.randrange(60):02d}:00Z"
                    if form == "utc"
                    else f"{day.isoformat()}T{hour:02d}:{r.randrange(60):02d}:00"
                )
                s.results.append(
                    {
                        "sourcedId": f"res-{seed}-{c}-{k}-{m}",
                        "status": "active",
                        "lineItemSourcedId": li_id,
                        "studentSourcedId": f"stu-{seed}-{m}",
                        "scoreStatus": status,
                        "score": score,
                        "scoreDate": "" if status in ("not submitted", "exempt") else when,
                    }
                )
    return s


def expected_by_id(conn, oneroster_set: OneRosterSet, source: str = "gen-sis") -> dict[tuple[int, date], tuple]:
    """expected_weeks keyed by our student ids (through the import's own mapping table)."""
    ids = dict(
        conn.execute(
            "select sourced_id, student_profile_id from oneroster_student where source = %s", (source,)
        ).fetchall()
    )
    return {(ids[sid], week): figures for (sid, week), figures in oneroster_set.expected_weeks().items()}


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)
