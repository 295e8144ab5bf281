"""``zida users import``: users from a CSV file as an admin exports it, created and updated in one transaction, every
bad file refused with its line and nothing changed (on the database ``ZIDA_TEST_DATABASE`` names)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.conftest import fresh_database, opened
from tests.test_cli import zida
from zida.core.audit import list_audit
from zida.core.org.models import User
from zida.core.org.repository import find_corp, get_user
from zida.crypto import verify_secret
from zida.org_import import import_users, read_users_csv

CORP = "corpImport"
BUNDLE = {
    "corp": {"corpId": CORP, "name": "导入公司"},
    "departments": [
        {"deptId": 1, "name": "导入公司"},
        {"deptId": 2, "name": "研发部", "parentId": 1},
        {"deptId": 3, "name": "销售部", "parentId": 1},
    ],
    "users": [
        {"userId": "boss", "name": "老板", "departments": [1], "title": "CEO", "mobile": "13900000000"},
        {"userId": "taken", "name": "占用", "departments": [1], "username": "alice.w"},
    ],
}


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A fresh database with the import corp loaded."""
    with fresh_database(tmp_path_factory.mktemp("import")) as url:
        bundle = tmp_path_factory.mktemp("bundle") / "corp.yaml"
        bundle.write_text(yaml.safe_dump(BUNDLE, allow_unicode=True))
        loaded = zida("load", str(bundle), database=url)
        assert loaded.returncode == 0, loaded.stderr
        yield url


def users_of(url: str, *user_ids: str) -> dict[str, User | None]:
    async def go() -> dict[str, User | None]:
        async with opened(url) as db:
            corp = await find_corp(db, CORP)
            assert corp is not None
            return {u: await get_user(db, corp.pk, u) for u in user_ids}

    return asyncio.run(go())


def state(url: str) -> tuple[int, int, int]:
    """Users, audit rows and outbox events of the database: what a refused import must leave as it was."""

    async def go() -> tuple[int, int, int]:
        async with opened(url) as db:
            return (
                int(await db.fetchval("SELECT count(*) FROM org_user")),
                int(await db.fetchval("SELECT count(*) FROM audit_log")),
                int(await db.fetchval("SELECT count(*) FROM outbox_event")),
            )

    return asyncio.run(go())


def password_hash(url: str, user_id: str) -> str:
    async def go() -> str:
        async with opened(url) as db:
            value = await db.fetchval("SELECT password_hash FROM org_user WHERE user_id = :u", {"u": user_id})
            return str(value)

    return asyncio.run(go())


def write(tmp_path: Path, name: str, text: str, encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def test_an_excel_file_creates_then_updates_users(url: str, tmp_path: Path) -> None:
    # As Excel saves "CSV UTF-8": a byte-order mark, CRLF line ends, quotes around a cell with a comma.
    first = write(
        tmp_path,
        "staff.csv",
        "\ufeffuserId,name,mobile,email,departments,title,jobNumber,manager,password,active\r\n"
        "zhang,张三,+86-13800000001,zhang@example.com,2;1,工程师,0007,li,pass-zhang-1,\r\n"
        'li,"Li, Si",13800000002,,2,经理,0008,boss,,true\r\n'
        "\r\n"
        "wang,王五,,,3,,,,,false\r\n",
    )
    result = zida("users", "import", "--corp", CORP, str(first), database=url)
    assert result.returncode == 0, result.stderr
    assert "users: 3 created, 0 updated, 0 unchanged" in result.stdout
    assert "ignored columns (Zida does not keep them): jobNumber" in result.stderr
    found = users_of(url, "zhang", "li", "wang")
    zhang, li, wang = found["zhang"], found["li"], found["wang"]
    assert zhang is not None and li is not None and wang is not None
    assert (zhang.name, zhang.mobile, zhang.email, zhang.dept_ids, zhang.title) == (
        "张三",
        "+86-13800000001",
        "zhang@example.com",
        (2, 1),
        "工程师",
    )
    assert zhang.manager_user_id == "li" and li.manager_user_id == "boss"  # a manager on a later line is fine
    assert li.name == "Li, Si" and li.email is None and li.active and not wang.active
    assert verify_secret("pass-zhang-1", password_hash(url, "zhang"))

    async def audit() -> list[tuple[str, str, str | None]]:
        async with opened(url) as db:
            corp = await find_corp(db, CORP)
            assert corp is not None
            entries = await list_audit(db, corp.pk, kind="user", limit=1000)
            events = await db.fetch("SELECT event_type FROM outbox_event WHERE corp_pk = :c", {"c": corp.pk})
            assert sum(1 for e in events if e["event_type"] == "user.created") >= 3
            return [(e.object_id, e.action, e.actor) for e in entries]

    entries = asyncio.run(audit())
    for user_id in ("zhang", "li", "wang"):
        assert (user_id, "created", "csv:staff.csv") in entries
    assert "pass-zhang-1" not in str(entries)

    # The same file again changes nothing (the password is checked, not hashed again).
    before = state(url)
    again = zida("users", "import", "--corp", CORP, str(first), database=url)
    assert "users: 0 created, 0 updated, 3 unchanged" in again.stdout, again.stderr
    assert state(url) == before

    # Columns the file does not have keep their values; an empty cell clears the field; a new title is written.
    second = write(
        tmp_path, "update.csv", "userId,name,title,email,active\nzhang,张三,高级工程师,,\nwang,王五,,,true\n"
    )
    updated = zida("users", "import", "--corp", CORP, str(second), database=url)
    assert "users: 0 created, 2 updated, 0 unchanged" in updated.stdout, updated.stderr
    found = users_of(url, "zhang", "wang")
    zhang, wang = found["zhang"], found["wang"]
    assert zhang is not None and wang is not None
    assert zhang.title == "高级工程师" and zhang.email is None  # cleared
    assert zhang.mobile == "+86-13800000001" and zhang.dept_ids == (2, 1) and zhang.manager_user_id == "li"  # kept
    assert zhang.active and wang.active  # an empty active keeps; true reactivates
    assert verify_secret("pass-zhang-1", password_hash(url, "zhang"))  # no password column: kept


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("dept.csv", "userId,name,departments\nnew1,甲,2\nnew2,乙,9\n", "line 3: departments: department 9 does not"),
        ("dup.csv", "userId,name\nnew1,甲\nnew2,乙\nnew1,丙\n", "line 4: userId new1 is already on line 2"),
        ("mobile.csv", "userId,name,mobile\nnew1,甲,138-0000\nnew2,乙,call me\n", "line 3: mobile: 'call me' is not"),
        ("noname.csv", "userId,name\nnew1,甲\nnew2,  \n", "line 3: name of new2 is empty"),
        ("noid.csv", "userId,name\n,甲\n", "line 2: userId is empty"),
        ("quote.csv", 'userId,name\nnew1,甲\nnew2,"乙\nnew3,丙\n', "line 3: not valid CSV"),
        ("ragged.csv", "userId,name,title\nnew1,甲,a\nnew2,乙\n", "line 3: 2 cells where the first line names 3"),
        ("column.csv", "userId,name,emial\nnew1,甲,a@b.c\n", "line 1: unknown column 'emial'"),
        ("nocolumn.csv", "userId,title\nnew1,a\n", "line 1: the column name is required"),
        ("active.csv", "userId,name,active\nnew1,甲,maybe\n", "line 2: active: 'maybe' is not true or false"),
        ("manager.csv", "userId,name,manager\nnew1,甲,nobody\n", "line 2: manager: user nobody is neither"),
        (
            "cycle.csv",
            "userId,name,manager\nnew1,甲,new2\nnew2,乙,new1\n",
            "line 2: manager: the manager chain would have a cycle: new1 → new2 → new1",
        ),
        ("empty.csv", "", "the file is empty"),
        ("header.csv", "userId,name\n", "the file has no users"),
        # Found only when written (another user signs in as alice.w): the users before it are rolled back.
        ("taken.csv", "userId,name,username\nnew1,甲,\nnew2,乙,alice.w\n", "line 3: the sign-in name alice.w is"),
    ],
)
def test_a_bad_file_names_the_line_and_changes_nothing(
    url: str, tmp_path: Path, name: str, content: str, message: str
) -> None:
    path = write(tmp_path, name, content)
    before = state(url)
    result = zida("users", "import", "--corp", CORP, str(path), database=url)
    assert result.returncode != 0
    assert f"{path}: {message}" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    assert state(url) == before
    assert users_of(url, "new1")["new1"] is None


def test_a_file_that_is_not_utf8_is_refused_with_its_line(url: str, tmp_path: Path) -> None:
    path = write(tmp_path, "gbk.csv", "userId,name\nnew1,甲\nnew2,乙\n", encoding="gbk")
    before = state(url)
    result = zida("users", "import", "--corp", CORP, str(path), database=url)
    assert result.returncode != 0
    assert f'{path}: line 2: the file is not UTF-8 text: save it as "CSV UTF-8"' in result.stderr
    assert state(url) == before


def test_unknown_corp_and_missing_file(url: str, tmp_path: Path) -> None:
    path = write(tmp_path, "ok.csv", "userId,name\nnew1,甲\n")
    nobody = zida("users", "import", "--corp", "nobody", str(path), database=url)
    assert nobody.returncode != 0 and "corp nobody does not exist" in nobody.stderr
    missing = zida("users", "import", "--corp", CORP, str(tmp_path / "none.csv"), database=url)
    assert missing.returncode != 0 and "none.csv: cannot read the file" in missing.stderr
    assert users_of(url, "new1")["new1"] is None


def test_a_big_file_shows_a_progress_bar(url: str, tmp_path: Path) -> None:
    lines = ["userId,name,departments,manager"]
    lines += [f"bulk{n:05d},员工{n},{2 + n % 2},{'boss' if n < 10 else f'bulk{n // 10:05d}'}" for n in range(2500)]
    path = write(tmp_path, "bulk.csv", "\n".join(lines) + "\n")
    result = zida("users", "import", "--corp", CORP, str(path), database=url)
    assert result.returncode == 0, result.stderr
    assert "users: 2500 created" in result.stdout
    bars = [line for line in result.stderr.splitlines() if line.startswith("users ")]
    assert bars[-1].endswith("2,500/2,500") and "[" + "#" * 30 + "]" in bars[-1]
    assert len(bars) == 3  # not a terminal: a line per tenth reached (1,000, 2,000 and 2,500 of 2,500)
    found = users_of(url, "bulk02499")["bulk02499"]
    assert found is not None and found.manager_user_id == "bulk00249" and found.dept_ids == (3,)


def test_an_admins_change_made_while_the_import_waits_is_kept(url: str) -> None:
    """The import reads the users it keeps columns of inside its own transaction: a title an admin changed meanwhile
    (committed while the import waited for his transaction) is kept, not overwritten with the value before it."""
    rows, _ = read_users_csv("userId,name,mobile\nboss,老板,13911112222\n".encode())

    async def go() -> None:
        async with opened(url) as admin_db, opened(url) as import_db:
            corp = await find_corp(admin_db, CORP)
            assert corp is not None
            async with admin_db.transaction() as tx:
                await tx.execute(
                    "UPDATE org_user SET title = :t WHERE corp_pk = :c AND user_id = 'boss'", {"t": "CTO", "c": corp.pk}
                )
                importing = asyncio.ensure_future(import_users(import_db, corp, rows))
                await asyncio.sleep(0.5)
                assert not importing.done()  # it waits for the admin's transaction
            report = await importing
            assert report.outcomes["updated"] == 1
            boss = await get_user(admin_db, corp.pk, "boss")
            assert boss is not None and (boss.title, boss.mobile) == ("CTO", "13911112222")

    asyncio.run(go())
