"""``zida users import``: create and update a corp's users from a CSV file, all of it or nothing.

The file (README "Importing users"):

* **Encoding** UTF-8, with or without the byte-order mark Excel writes ("CSV UTF-8"); anything else is refused
  with the line of the first byte that is not UTF-8 (save the sheet as "CSV UTF-8"). Cells are separated by commas
  and quoted as Excel and RFC 4180 quote them; a quote that is never closed or stray text after one is refused.
* **The first line names the columns**, in any order, by the bundle's user keys (``docs/bundle.md``): ``userId``
  and ``name`` are required; ``nameEn``, ``mobile``, ``email``, ``departments`` (department ids separated by
  ``;``, the main department first), ``title``, ``manager`` (a userId), ``unionId``, ``password``, ``active``
  (``true``/``false``, also ``1``/``0``, ``yes``/``no``), ``username`` (the WeDa sign-in name) are optional. The
  columns of a DingTalk contacts export that Zida does not keep (``jobNumber``, ``hiredDate``, ``telephone``,
  ``workPlace``, ``remark``, ``extension``) are read and ignored (the command says so); any other column is an
  error, so a misspelt one cannot be dropped silently.
* **Each further line is one user**, created when the corp does not have the userId yet, else updated. A column
  the file does not have keeps what the user has; an empty cell clears the field (``nameEn``, ``mobile``,
  ``email``, ``departments``, ``title``, ``manager``, ``username``) or keeps it where clearing means nothing
  (``password``, ``unionId``, ``active``; a new user is active). Blank lines are skipped.

Nothing is written until the whole file is checked: every cell's format, a userId given twice, a department or a
manager the corp (or the file, for managers) does not have, a manager chain that would loop. Then every user is
written in one transaction through ``zida.core.org.actions.upsert_user``, the action a bundle load uses (each
change has its audit row and ``user`` event, actor ``csv:<file name>``), and a refusal there (a sign-in name
another user has, deactivating a user who holds open tasks) rolls everything back. Every error names the line.

One transaction holds SQLite's write lock for the whole import: measured, 100,000 new users take about a minute
(README), during which a running server's writes wait (and fail with a retryable busy error after 30 s). Import
large files when the directory is quiet, or in several files. Each password costs one scrypt hash (about 50 ms,
on purpose): a file of 100,000 passwords takes over an hour.
"""

from __future__ import annotations

import csv
import io
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from zida.clock import now_ms
from zida.core.errors import InvalidArgument, ZidaError
from zida.core.org.actions import (
    BULK_DIRECTORY_ROWS,
    MAX_ID,
    UserSpec,
    find_cycle,
    lock_corp,
    read_user_batch,
    refresh_directory_statistics,
    upsert_user,
)
from zida.core.org.models import CorpRef, User
from zida.core.org.repository import list_departments, list_users
from zida.db import Connection, Database

__all__ = ["COLUMNS", "IGNORED_COLUMNS", "CsvUser", "ImportReport", "UsersCsvError", "import_users", "read_users_csv"]

# Column → UserSpec field.
COLUMNS = {
    "userId": "user_id",
    "name": "name",
    "nameEn": "name_en",
    "mobile": "mobile",
    "email": "email",
    "departments": "departments",
    "title": "title",
    "manager": "manager",
    "unionId": "union_id",
    "password": "password",
    "active": "active",
    "username": "username",
}
REQUIRED_COLUMNS = ("userId", "name")
# A DingTalk contacts export's columns that Zida does not keep: read and ignored.
IGNORED_COLUMNS = ("jobNumber", "hiredDate", "telephone", "workPlace", "remark", "extension")
# Empty cells of these keep the stored value: a password, a unionId or a state cannot be "cleared".
_KEPT_WHEN_EMPTY = frozenset({"password", "union_id", "active"})
# The mobile numbers the contacts API accepts (zida.dialects.dingtalk.contacts): digits and dashes, an optional +.
_MOBILE = re.compile(r"\+?[0-9][0-9\-]{2,19}")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+")
_TRUE = ("true", "1", "yes")
_FALSE = ("false", "0", "no")
_PAGE = 1000

# How far the import got: (section, users written, users in the file).
Progress = Callable[[str, int, int], None]


class UsersCsvError(InvalidArgument):
    """A file that cannot be imported: names the file, the line and what is wrong."""

    default_reason = "users_csv.invalid"

    def __init__(self, source: str, line: int | None, problem: str) -> None:
        super().__init__(f"{source}: line {line}: {problem}" if line else f"{source}: {problem}")
        self.line = line
        self.problem = problem


@dataclass(frozen=True, slots=True)
class CsvUser:
    """One line of the file: the cells given, by ``UserSpec`` field (None: an empty cell)."""

    line: int
    user_id: str
    cells: dict[str, object]


@dataclass
class ImportReport:
    """What an import did, and the columns it ignored."""

    outcomes: Counter[str] = field(default_factory=Counter)
    ignored_columns: tuple[str, ...] = ()

    def summary(self) -> str:
        """One line: users created, updated, unchanged."""
        o = self.outcomes
        return f"users: {o['created']} created, {o['updated']} updated, {o['unchanged']} unchanged"


def _decode(data: bytes, source: str) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise UsersCsvError(
            source, line, 'the file is not UTF-8 text: save it as "CSV UTF-8" (Excel) or convert it to UTF-8'
        ) from None


def _header(cells: list[str], source: str) -> tuple[list[str | None], tuple[str, ...]]:
    """The ``UserSpec`` field of each column (None: an ignored one) and the ignored columns' names."""
    names = [c.strip() for c in cells]
    fields: list[str | None] = []
    ignored: list[str] = []
    for name in names:
        if names.count(name) > 1:
            raise UsersCsvError(source, 1, f"the column {name!r} is there twice")
        if name in COLUMNS:
            fields.append(COLUMNS[name])
        elif name in IGNORED_COLUMNS:
            fields.append(None)
            ignored.append(name)
        else:
            known = ", ".join([*COLUMNS, *IGNORED_COLUMNS])
            raise UsersCsvError(source, 1, f"unknown column {name!r} (the columns are {known})")
    for name in REQUIRED_COLUMNS:
        if name not in names:
            raise UsersCsvError(source, 1, f"the column {name} is required (the first line names the columns)")
    return fields, tuple(ignored)


def _cell(name: str, value: str, line: int, source: str) -> object:
    """A cell's value for ``UserSpec`` field ``name`` (None: empty), or the error naming the line."""
    value = value.strip()
    if not value:
        return None
    if name == "departments":
        ids: list[int] = []
        for part in (p.strip() for p in value.split(";")):
            if not part:
                continue
            if not part.isascii() or not part.isdigit() or not 1 <= int(part) <= MAX_ID:
                raise UsersCsvError(source, line, f"departments: {part!r} is not a department id")
            if int(part) in ids:
                raise UsersCsvError(source, line, f"departments: department {part} is there twice")
            ids.append(int(part))
        return tuple(ids)
    if name == "active":
        if value.lower() in _TRUE:
            return True
        if value.lower() in _FALSE:
            return False
        raise UsersCsvError(source, line, f"active: {value!r} is not true or false")
    if name == "mobile" and not _MOBILE.fullmatch(value):
        raise UsersCsvError(source, line, f"mobile: {value[:40]!r} is not a mobile number")
    if name == "email" and not _EMAIL.fullmatch(value):
        raise UsersCsvError(source, line, f"email: {value[:60]!r} is not an email address")
    if name == "user_id" and (len(value) > 64 or not value.isprintable()):
        raise UsersCsvError(source, line, "userId must be 1 to 64 printable characters")
    return value


def read_users_csv(data: bytes, source: str = "<csv>") -> tuple[list[CsvUser], tuple[str, ...]]:
    """Parse and check a users file on its own (no database): its users and the columns it ignores."""
    text = _decode(data, source)
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    line = 0  # the last line of the last complete row
    try:
        header = next(reader, None)
        if header is None or not any(c.strip() for c in header):
            raise UsersCsvError(source, None, "the file is empty: its first line names the columns")
        fields, ignored = _header(header, source)
        users: list[CsvUser] = []
        first_line: dict[str, int] = {}
        line = reader.line_num
        for row in reader:
            start, line = line + 1, reader.line_num
            if not any(c.strip() for c in row):
                continue
            if len(row) != len(fields):
                raise UsersCsvError(source, start, f"{len(row)} cells where the first line names {len(fields)} columns")
            if any("\x00" in cell for cell in row):
                raise UsersCsvError(source, start, "a cell contains a NUL character")
            cells = {f: _cell(f, v, start, source) for f, v in zip(fields, row, strict=True) if f is not None}
            user_id = cells["user_id"]
            if not isinstance(user_id, str):
                raise UsersCsvError(source, start, "userId is empty")
            if cells["name"] is None:
                raise UsersCsvError(source, start, f"name of {user_id} is empty")
            if user_id in first_line:
                raise UsersCsvError(source, start, f"userId {user_id} is already on line {first_line[user_id]}")
            first_line[user_id] = start
            if cells.get("manager") == user_id:
                raise UsersCsvError(source, start, f"user {user_id} cannot be his own manager")
            users.append(CsvUser(start, user_id, cells))
    except csv.Error as exc:
        # The row that failed starts after the last complete one (an unclosed quote fails at the end of the file).
        raise UsersCsvError(source, line + 1, f"not valid CSV: {exc}") from None
    if not users:
        raise UsersCsvError(source, None, "the file has no users (only the line naming the columns)")
    return users, ignored


async def _existing_users(conn: Connection, corp: CorpRef) -> dict[str, User]:
    """Every user of the corp, deactivated ones too."""
    found: dict[str, User] = {}
    after = ""
    while True:
        page = await list_users(conn, corp.pk, after=after, limit=_PAGE)
        found.update((u.user_id, u) for u in page)
        if len(page) < _PAGE:
            return found
        after = page[-1].user_id


def _spec(row: CsvUser, stored: User | None) -> UserSpec:
    """The user as the line wants him: the given cells over what he has (a new user: over nothing)."""
    kept: dict[str, object] = {}
    if stored is not None:
        kept = {
            "name": stored.name,
            "name_en": stored.name_en,
            "mobile": stored.mobile,
            "email": stored.email,
            "departments": stored.dept_ids,
            "title": stored.title,
            "manager": stored.manager_user_id,
            "union_id": stored.union_id,
            "active": stored.active,
            "username": stored.username,
        }
    values = dict(kept)
    for name, value in row.cells.items():
        if value is None and name in _KEPT_WHEN_EMPTY:
            continue
        values[name] = value
    values["user_id"] = row.user_id
    values["departments"] = tuple(values.get("departments") or ())  # type: ignore[arg-type]
    return UserSpec(**values)  # type: ignore[arg-type]


def _check_references(
    rows: list[CsvUser], specs: list[UserSpec], existing: dict[str, User], dept_ids: set[int], source: str
) -> None:
    """Departments and managers the corp or the file has; no manager chain loops once the file is written."""
    managers = {u.user_id: u.manager_user_id for u in existing.values()}
    managers.update((s.user_id, s.manager) for s in specs)
    for row, spec in zip(rows, specs, strict=True):
        for dept in spec.departments:
            if dept not in dept_ids:
                raise UsersCsvError(source, row.line, f"departments: department {dept} does not exist in this corp")
        if spec.manager is not None and spec.manager not in managers:
            raise UsersCsvError(
                source, row.line, f"manager: user {spec.manager} is neither in this corp nor in the file"
            )
    for row, spec in zip(rows, specs, strict=True):
        cycle = find_cycle(managers, spec.user_id)
        if cycle is not None:
            chain = " → ".join(cycle)
            raise UsersCsvError(source, row.line, f"manager: the manager chain would have a cycle: {chain}")


def _line_error(row: CsvUser, exc: ZidaError, source: str) -> UsersCsvError:
    names = {**{v: k for k, v in COLUMNS.items()}, "user": "userId", "hand_over_to": "active"}
    problem = exc.render(names)
    if exc.reason == "user.holds_tasks":
        problem = (
            f"cannot deactivate {row.user_id}, who holds {exc.details.get('tasks')} open task(s): hand them over"
            " first (POST /admin/v1/users/{userId}/deactivate with handOverTo)"
        )
    return UsersCsvError(source, row.line, problem)


async def import_users(
    db: Database,
    corp: CorpRef,
    rows: list[CsvUser],
    *,
    source: str = "<csv>",
    progress: Progress | None = None,
    progress_step: int = 1000,
) -> ImportReport:
    """Check the file's users against the corp, then create or update them all, in one transaction.

    What a line leaves empty is kept from the stored user as the transaction reads him: the corp's users are read
    inside it (on PostgreSQL locked first, so an admin's change made meanwhile waits for the import instead of being
    overwritten with what was read before it; SQLite's writer holds them already).
    """
    report = ImportReport()
    actor = f"csv:{Path(source).name}"
    now = now_ms()
    total = len(rows)
    async with db.transaction() as tx:
        await lock_corp(tx, corp)  # first, as every user write that checks names takes it: corp, then users
        if tx.sql.name == "postgresql":
            await tx.execute("SELECT 1 FROM org_user WHERE corp_pk = :c ORDER BY id FOR UPDATE", {"c": corp.pk})
        existing = await _existing_users(tx, corp)
        dept_ids = {d.dept_id for d in await list_departments(tx, corp.pk)}
        specs = [_spec(row, existing.get(row.user_id)) for row in rows]
        _check_references(rows, specs, existing, dept_ids, source)
        batch = await read_user_batch(tx, corp, (s.user_id for s in specs), (d for s in specs for d in s.departments))
        for n, (row, spec) in enumerate(zip(rows, specs, strict=True), 1):
            try:
                outcome = await upsert_user(
                    tx, corp, spec, actor=actor, now=now, references_checked=True, batch=batch, corp_locked=True
                )
            except ZidaError as exc:
                raise _line_error(row, exc, source) from None
            report.outcomes[outcome.value] += 1
            if progress is not None and (n % progress_step == 0 or n == total):
                progress("users", n, total)
    if report.outcomes["created"] + report.outcomes["updated"] >= BULK_DIRECTORY_ROWS:
        await refresh_directory_statistics(db)
    return report
