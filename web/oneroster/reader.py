"""Reading a OneRoster CSV set: a folder or a .zip, its manifest, and each file's rows with their line numbers.

Nothing here touches the database; staging.py COPYs the rows this yields.
"""

from __future__ import annotations

import csv
import io
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO

VERSIONS = ("1.1", "1.2")
MODES = ("bulk", "delta", "absent")
# The limit on the bytes the import reads (uncompressed), in MB; --max-size or $WEEKLY_TRENDS_IMPORT_MAX_MB.
DEFAULT_MAX_MEGABYTES = 2048
MAX_SIZE_HINT = "--max-size or WEEKLY_TRENDS_IMPORT_MAX_MB"
NUL_PROBLEM = "a NUL character (0x00) in a field"

# The files this importer reads, in the order it applies them, and the columns it takes from each:
# (our name, header names accepted (the first is the specification's), required).
FILES: dict[str, list[tuple[str, tuple[str, ...], bool]]] = {
    "categories": [
        ("sourced_id", ("sourcedId",), True),
        ("status", ("status",), False),
        ("title", ("title",), True),
    ],
    "classes": [
        ("sourced_id", ("sourcedId",), True),
        ("status", ("status",), False),
        ("title", ("title",), True),
    ],
    "roles": [
        ("sourced_id", ("sourcedId",), True),
        ("status", ("status",), False),
        ("user_sourced_id", ("userSourcedId",), True),
        ("role", ("role",), True),
    ],
    "users": [
        ("sourced_id", ("sourcedId",), True),
        ("status", ("status",), False),
        # 1.1 has the role here; 1.2 moved it to roles.csv.
        ("role", ("role",), False),
        ("given_name", ("givenName",), False),
        ("family_name", ("familyName",), False),
        ("preferred_given_name", ("preferredGivenName",), False),
        ("preferred_family_name", ("preferredFamilyName",), False),
        ("username", ("username",), False),
        ("email", ("email",), False),
        ("agent_sourced_ids", ("agentSourcedIds",), False),
        # A school's own extension column (OneRoster carries no time zone); --time-zone otherwise.
        ("time_zone", ("metadata.timeZone", "metadata.timezone", "metadata.time_zone"), False),
    ],
    "enrollments": [
        ("sourced_id", ("sourcedId",), True),
        ("status", ("status",), False),
        ("class_sourced_id", ("classSourcedId",), True),
        ("user_sourced_id", ("userSourcedId",), True),
        ("role", ("role",), True),
        ("begin_date", ("beginDate",), False),
        ("end_date", ("endDate",), False),
    ],
    "lineItems": [
        ("sourced_id", ("sourcedId",), True),
        ("status", ("status",), False),
        ("title", ("title",), False),
        ("class_sourced_id", ("classSourcedId", "class"), True),
        ("category_sourced_id", ("categorySourcedId", "category"), False),
        ("result_value_max", ("resultValueMax",), False),
        ("assign_date", ("assignDate",), False),
        ("due_date", ("dueDate",), False),
    ],
    "results": [
        ("sourced_id", ("sourcedId",), True),
        ("status", ("status",), False),
        ("line_item_sourced_id", ("lineItemSourcedId", "lineItem"), True),
        ("student_sourced_id", ("studentSourcedId", "student"), True),
        ("score_status", ("scoreStatus",), True),
        ("score", ("score",), True),
        ("score_date", ("scoreDate",), True),
    ],
}


class InputError(Exception):
    """A missing or malformed file, or a wrong manifest: nothing is imported (exit status 2)."""


@dataclass
class Manifest:
    version: str
    modes: dict[str, str]  # file name (without .csv) -> bulk | delta | absent, for the files we read
    system_name: str = ""
    system_code: str = ""
    ignored: list[str] = field(default_factory=list)  # files listed in the manifest that we do not read
    warnings: list[str] = field(default_factory=list)  # e.g. an empty mode of a file we do not read


class Counted(io.RawIOBase):
    """A file's bytes as read, counted against the set's limit (a zip's stated sizes are not trusted alone),
    noting whether a NUL byte went by (memchr on each chunk: the rows are searched only after one did)."""

    def __init__(self, raw: IO[bytes], files: CsvSet, name: str) -> None:
        self.raw, self.files, self.name = raw, files, name
        self.position = 0
        self.nul = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        try:
            data = self.raw.read(len(buffer))
        except (zipfile.BadZipFile, zlib.error, EOFError) as error:
            raise InputError(f"{self.name}: the zip is damaged ({error})") from None
        n = len(data)
        buffer[:n] = data
        self.position += n
        self.files.read_bytes += n
        if self.files.max_bytes is not None and self.files.read_bytes > self.files.max_bytes:
            raise InputError(
                f"{self.name}: more was read than the files state; over the limit of"
                f" {self.files.max_bytes // MB:,} MB uncompressed ({MAX_SIZE_HINT})"
            )
        if not self.nul and b"\0" in data:
            self.nul = True
        return n

    def close(self) -> None:
        self.raw.close()
        super().close()


MB = 1024 * 1024


class CsvSet:
    """A folder or a .zip holding manifest.csv and the data files (at its root, or in its one folder).

    max_bytes: the most it reads (uncompressed), counted as the files are read; None: no limit.
    """

    def __init__(self, path: Path, max_bytes: int | None = None) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.read_bytes = 0
        self.zip: zipfile.ZipFile | None = None
        if path.is_dir():
            self.names = {p.name: p for p in path.iterdir() if p.is_file()}
        elif path.is_file():
            try:
                self.zip = zipfile.ZipFile(path)
            except (zipfile.BadZipFile, OSError) as error:
                raise InputError(f"{path}: not a folder or a readable .zip file ({error})") from None
            members = [i.filename for i in self.zip.infolist() if not i.is_dir()]
            roots = {str(PurePosixPath(m).parent) for m in members if PurePosixPath(m).name == "manifest.csv"}
            prefix = "." if "." in roots else (roots.pop() if len(roots) == 1 else ".")
            self.names = {PurePosixPath(m).name: m for m in members if str(PurePosixPath(m).parent) == prefix}
        else:
            raise InputError(f"{path}: no such folder or file")

    def __enter__(self) -> CsvSet:
        return self

    def __exit__(self, *exc) -> None:
        if self.zip is not None:
            self.zip.close()

    def has(self, name: str) -> bool:
        return name in self.names

    def size(self, name: str) -> int:
        if self.zip is not None:
            return self.zip.getinfo(self.names[name]).file_size
        return self.names[name].stat().st_size

    def open_binary(self, name: str) -> IO[bytes]:
        if self.zip is not None:
            return self.zip.open(self.names[name])
        return open(self.names[name], "rb")

    def open_counted(self, name: str) -> Counted:
        return Counted(self.open_binary(name), self, name)

    def check_size(self, names: list[str]) -> None:
        """Refuses, before reading, a set whose files to read state more than the limit uncompressed."""
        total = sum(self.size(n) for n in names)
        if self.max_bytes is not None and total > self.max_bytes:
            raise InputError(
                f"the files to read hold {-(-total // MB):,} MB uncompressed, over the limit of"
                f" {self.max_bytes // MB:,} MB ({MAX_SIZE_HINT})"
            )


def text_of(stream: IO[bytes]) -> io.TextIOWrapper:
    # utf-8-sig: a byte order mark (as spreadsheet programs write) is dropped; strict: bad bytes are an error.
    return io.TextIOWrapper(stream, encoding="utf-8-sig", errors="strict", newline="")


def read_manifest(files: CsvSet) -> Manifest:
    if not files.has("manifest.csv"):
        raise InputError(f"{files.path}: no manifest.csv (a OneRoster CSV set needs one)")
    properties: dict[str, str] = {}
    try:
        with text_of(files.open_binary("manifest.csv")) as text:
            reader = csv.reader(text)
            header = next(reader, None)
            if header is None or [h.strip() for h in header[:2]] != ["propertyName", "value"] or len(header) != 2:
                raise InputError(f"manifest.csv: the header must be 'propertyName,value', found {header!r}")
            for row in reader:
                if not row:
                    continue
                if len(row) != 2:
                    raise InputError(f"manifest.csv line {reader.line_num}: expected 2 fields, found {len(row)}")
                properties[row[0].strip()] = row[1].strip()
    except (UnicodeDecodeError, csv.Error) as error:
        raise InputError(f"manifest.csv: unreadable ({error})") from None
    # The specification requires manifest.version; many exports leave it out, and 1.0 is the only one.
    if properties.get("manifest.version", "1.0") != "1.0":
        raise InputError(f"manifest.csv: manifest.version must be 1.0, found {properties.get('manifest.version')!r}")
    version = properties.get("oneroster.version")
    if version not in VERSIONS:
        raise InputError(f"manifest.csv: oneroster.version must be one of {', '.join(VERSIONS)}, found {version!r}")
    modes, ignored, warnings = {}, [], []
    for key, value in properties.items():
        if not key.startswith("file."):
            continue
        name, mode = key[len("file.") :], value.lower()
        if mode not in MODES and name not in FILES:
            # A file this import never reads (real exports leave e.g. file.scoreScales empty): it cannot
            # change what is imported, so it is taken as absent rather than refusing the whole set.
            warnings.append(f"manifest.csv: {key} is {value!r} (not bulk, delta or absent); not read, taken as absent")
            continue
        if mode not in MODES:
            raise InputError(f"manifest.csv: {key} must be bulk, delta or absent, found {value!r}")
        if name in FILES:
            modes[name] = mode
        elif mode != "absent":
            ignored.append(name)
    if version == "1.2" and "roles" not in modes and files.has("roles.csv"):
        modes["roles"] = modes.get("users", "absent")  # a manifest that forgot file.roles: read it with users.csv
    for name in FILES:
        modes.setdefault(name, "absent")
        if modes[name] != "absent" and not files.has(f"{name}.csv"):
            raise InputError(f"{name}.csv: the manifest lists it ({modes[name]}) but the set does not contain it")
    if version == "1.1" and modes["roles"] != "absent":
        modes["roles"] = "absent"  # no roles.csv in 1.1: the role is a column of users.csv
    return Manifest(
        version,
        modes,
        properties.get("source.systemName", ""),
        properties.get("source.systemCode", ""),
        ignored,
        warnings,
    )


@dataclass
class FileReader:
    """One data file's header, checked; rows come out as (line, problem or None, *our columns)."""

    name: str
    files: CsvSet
    columns: list[str] = field(default_factory=list)  # our column names, in FILES order
    present: set[str] = field(default_factory=set)  # our columns the header has

    def rows(self, advance) -> Iterator[tuple]:
        spec = FILES[self.name]
        file_name = f"{self.name}.csv"
        counted = self.files.open_counted(file_name)
        stream = io.BufferedReader(counted, buffer_size=1 << 16)
        try:
            with text_of(stream) as text:
                reader = csv.reader(text, strict=True)
                try:
                    header = next(reader)
                except StopIteration:
                    raise InputError(f"{file_name}: empty (no header line)") from None
                header = [h.replace("\0", "").strip() for h in header]
                index: list[int | None] = []
                for ours, names, required in spec:
                    found = next((header.index(n) for n in names if n in header), None)
                    if found is None and required:
                        raise InputError(f"{file_name}: the header has no {names[0]} column (found {','.join(header)})")
                    if found is not None:
                        self.present.add(ours)
                    index.append(found)
                self.columns = [s[0] for s in spec]
                width = len(header)
                previous = reader.line_num
                position = 0
                for row in reader:
                    first_line, previous = previous + 1, reader.line_num
                    if not row or row == [""]:
                        continue
                    if len(row) != width:
                        problem = f"expected {width} fields as in the header, found {len(row)}"
                        values = [row[i].strip() if i is not None and i < len(row) else "" for i in index]
                    else:
                        problem = None
                        values = ["" if i is None else row[i].strip() for i in index]
                    # PostgreSQL's text holds no NUL: such a row is a bad row (reported without its NULs), never
                    # a failed COPY. Searched only once the file's bytes held one.
                    if counted.nul and any("\0" in v for v in row):
                        problem = problem or NUL_PROBLEM
                        values = [v.replace("\0", "") for v in values]
                    yield (first_line, problem, *values)
                    if first_line % 4096 == 0:
                        advance(counted.position - position)
                        position = counted.position
                advance(max(self.files.size(file_name) - position, 0))
        except UnicodeDecodeError as error:
            raise InputError(f"{file_name}: not UTF-8 text ({error})") from None
        except csv.Error as error:
            raise InputError(f"{file_name}: malformed CSV ({error})") from None


# The two kinds a category may map to (--category-map).
KINDS = ("quiz", "assignment")


def read_category_map(path: Path) -> list[tuple[str, str]]:
    """The --category-map file (header category,kind): its (category, kind) pairs, lower-cased."""
    try:
        with open(path, encoding="utf-8-sig", newline="") as f:
            reader = csv.reader(f)
            header = [h.strip() for h in next(reader, [])]
            if header != ["category", "kind"]:
                raise InputError(f"{path}: the header must be 'category,kind', found {','.join(header)!r}")
            pairs = []
            for row in reader:
                if not row or row == [""]:
                    continue
                if len(row) != 2 or row[1].strip().lower() not in KINDS or not row[0].strip() or "\0" in row[0]:
                    raise InputError(
                        f"{path} line {reader.line_num}: expected a category and quiz or assignment, found {row!r}"
                    )
                pairs.append((row[0].strip().lower(), row[1].strip().lower()))
            return pairs
    except OSError as error:
        raise InputError(f"{path}: cannot read the category mapping ({error.strerror})") from None
    except (UnicodeDecodeError, csv.Error) as error:
        raise InputError(f"{path}: unreadable ({error})") from None
