"""Bundles: validation errors name the path, loads are idempotent and atomic, dumps round-trip without secrets."""

from __future__ import annotations

import copy
import secrets
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import FIXTURES, SECRET_KEY
from zida.bundle.dumper import dump_bundle
from zida.bundle.loader import BundleError, load_bundle, parse_bundle, read_bundle
from zida.core.access.tokens import TokenService
from zida.core.errors import Unauthenticated
from zida.crypto import SecretBox
from zida.db import Database

pytestmark = pytest.mark.anyio


def base(corp_id: str) -> dict[str, Any]:
    """A small valid bundle with a unique corp, app and form."""
    suffix = corp_id.upper()
    return {
        "corp": {"corpId": corp_id, "name": "测试", "taskApiCode": "code-1"},
        "departments": [{"deptId": 1, "name": "根"}, {"deptId": 2, "name": "子", "parentId": 1, "managers": ["m"]}],
        "users": [
            {"userId": "m", "name": "经理", "departments": [2]},
            {"userId": "e", "name": "员工", "departments": [2], "manager": "m", "password": "pw-123456"},
        ],
        "roles": [{"roleId": 1, "name": "角色", "members": ["e"]}],
        "credentials": [{"appKey": f"key-{corp_id}", "appSecret": "secret-0001", "scopes": ["Yida.Form.Read"]}],
        "apps": [
            {
                "appType": f"APP_{suffix}",
                "name": "应用",
                "systemToken": "ST-SECRET-0001",
                "admins": ["m"],
                "forms": [
                    {
                        "formUuid": f"FORM-{suffix}",
                        "title": "表单",
                        "fields": [
                            {"fieldId": "textField_a", "component": "TextField", "label": "A", "searchable": True},
                            {
                                "fieldId": "tableField_t",
                                "component": "TableField",
                                "label": "T",
                                "fields": [{"fieldId": "textField_r", "component": "TextField", "label": "R"}],
                            },
                        ],
                    }
                ],
            }
        ],
    }


def unique() -> str:
    return "c" + secrets.token_hex(4)


def mutate(bundle: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    out = copy.deepcopy(bundle)
    node: Any = out
    parts = path.replace("]", "").replace("[", ".").split(".")
    for part in parts[:-1]:
        node = node[int(part)] if part.isdigit() else node[part]
    last = parts[-1]
    if last.isdigit():
        node[int(last)] = value
    else:
        node[last] = value
    return out


@pytest.mark.parametrize(
    ("path", "value", "error_path", "words"),
    [
        (
            "apps[0].forms[0].fields[0].component",
            "FooField",
            "apps[0].forms[0].fields[0].component",
            "unknown component",
        ),
        (
            "apps[0].forms[0].fields[1].fields[0].component",
            "TableField",
            "apps[0].forms[0].fields[1].fields[0]",
            "nested",
        ),
        (
            "apps[0].forms[0].fields[1].fields[0].fieldId",
            "textField_a",
            "apps[0].forms[0].fields[1].fields[0].fieldId",
            "duplicate",
        ),
        ("departments[1].managers", ["ghost"], "departments[1].managers[0]", "unknown user"),
        ("users[1].departments", [99], "users[1].departments[0]", "unknown department"),
        ("users[0].manager", "e", "users[0].manager", "cycle"),
        ("roles[0].members", ["ghost"], "roles[0].members[0]", "unknown user"),
        ("apps[0].admins", ["ghost"], "apps[0].admins[0]", "unknown user"),
        ("apps[0].forms[0].process", {"nodes": []}, "apps[0].forms[0].process", "only process forms"),
        ("apps[0].forms[0].type", "process", "apps[0].forms[0].process", "needs a process block"),
        ("apps[0].forms[0].fields[0].fieldId", "1bad id", "apps[0].forms[0].fields[0].fieldId", "pattern"),
        ("apps[0].forms[0].fields[0].options", ["x"], "apps[0].forms[0].fields[0].options", "no options"),
        ("users[0].colour", "red", "users[0].colour", "Extra inputs"),
        ("apps[0].appType", "NOPE", "apps[0].appType", "pattern"),
        ("users[0].name", "a\x00b", "users[0].name", "NUL"),  # PostgreSQL refused it with a traceback
        ("apps[0].forms[0].fields[0].options", [1, 2], "apps[0].forms[0].fields[0].options[0]", "string"),
    ],
)
def test_invalid_bundles_name_the_path(path: str, value: Any, error_path: str, words: str) -> None:
    with pytest.raises(BundleError) as err:
        parse_bundle(mutate(base(unique()), path, value), source="org.yaml")
    assert err.value.path.startswith(error_path), err.value.message
    assert words in err.value.message
    assert err.value.message.startswith("org.yaml: ")


def test_missing_corp_and_bad_files(tmp_path: Path) -> None:
    with pytest.raises(BundleError) as err:
        parse_bundle({"users": []})
    assert err.value.path == "corp"
    bad = tmp_path / "bad.yaml"
    bad.write_text("corp: [unclosed\n")
    with pytest.raises(BundleError) as err:
        read_bundle(bad)
    assert "not valid YAML" in err.value.message and str(bad) in err.value.message
    with pytest.raises(BundleError):
        read_bundle(tmp_path / "missing.yaml")
    for name, content, words in (
        ("deep.yaml", "[" * 100_000, "nested too deeply"),  # a RecursionError traceback before
        ("deep.json", "[" * 100_000, "nested too deeply"),
        ("binary.yaml", b"\xff\xfe corp", "not UTF-8"),
        # A key named twice: the later one would win without a word.
        ("twice.yaml", "corp: {corpId: c1, name: H, name: H2}\n", "the key 'name' appears twice"),
        ("twice.json", '{"corp": {"corpId": "c1", "name": "H", "name": "H2"}}', "the key 'name' appears twice"),
        # Aliases that multiply the bundle ("billion laughs": 387 million values) or hold themselves.
        (
            "laughs.yaml",
            "l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"
            + "".join(f"l{n}: &l{n} [{', '.join([f'*l{n - 1}'] * 9)}]\n" for n in range(1, 9))
            + "corp: {corpId: c1, name: *l8}\n",
            "its aliases (*name) expand its",
        ),
        ("loop.yaml", "corp: &c {corpId: c1, name: x, again: *c}\n", "refers to the value that holds it"),
    ):
        path = tmp_path / name
        path.write_bytes(content.encode() if isinstance(content, str) else content)
        with pytest.raises(BundleError) as err:
            read_bundle(path)
        assert words in err.value.message and str(path) in err.value.message


async def counts(db: Database, corp_id: str) -> dict[str, int]:
    tables = {
        "users": "SELECT count(*) FROM org_user u JOIN corp c ON c.id = u.corp_pk WHERE c.corp_id = :c",
        "forms": "SELECT count(*) FROM form f JOIN app a ON a.id = f.app_pk JOIN corp c ON c.id = a.corp_pk"
        " WHERE c.corp_id = :c",
        "versions": "SELECT count(*) FROM form_version v JOIN form f ON f.id = v.form_pk JOIN app a ON a.id = f.app_pk"
        " JOIN corp c ON c.id = a.corp_pk WHERE c.corp_id = :c",
    }
    return {k: int(await db.fetchval(q, {"c": corp_id})) for k, q in tables.items()}


async def test_load_is_idempotent_and_updates_what_changed(db: Database) -> None:
    corp = unique()
    bundle = base(corp)
    box = SecretBox(SECRET_KEY)
    first = await load_bundle(db, box, parse_bundle(bundle))
    assert first.created["users"] == 2 and first.created["forms"] == 1
    again = await load_bundle(db, box, parse_bundle(bundle))
    assert not again.created and not again.updated
    assert await counts(db, corp) == {"users": 2, "forms": 1, "versions": 1}

    changed = mutate(bundle, "apps[0].forms[0].fields[0].label", "A2")
    changed = mutate(changed, "users[1].name", "新名字")
    third = await load_bundle(db, box, parse_bundle(changed))
    assert third.updated["users"] == 1 and third.created["form versions"] == 1
    assert await counts(db, corp) == {"users": 2, "forms": 1, "versions": 2}
    current = await db.fetchval(
        "SELECT f.current_version FROM form f WHERE f.form_uuid = :u", {"u": f"FORM-{corp.upper()}"}
    )
    assert current == 2


async def test_a_failing_load_writes_nothing(db: Database) -> None:
    box = SecretBox(SECRET_KEY)
    owner = base(unique())
    await load_bundle(db, box, parse_bundle(owner))
    thief_corp = unique()
    thief = base(thief_corp)
    thief["apps"][0]["appType"] = owner["apps"][0]["appType"]  # belongs to another corp: found mid-load
    with pytest.raises(BundleError) as err:
        await load_bundle(db, box, parse_bundle(thief))
    assert err.value.path == "apps[0].appType"
    assert await db.fetchval("SELECT count(*) FROM corp WHERE corp_id = :c", {"c": thief_corp}) == 0


async def test_secrets_are_stored_hashed_or_encrypted_and_never_dumped(db: Database) -> None:
    corp = unique()
    bundle = base(corp)
    await load_bundle(db, SecretBox(SECRET_KEY), parse_bundle(bundle))
    cred = await db.fetchrow("SELECT secret_hash FROM credential WHERE app_key = :k", {"k": f"key-{corp}"})
    assert cred is not None and cred["secret_hash"].startswith("scrypt$") and "secret-0001" not in cred["secret_hash"]
    app = await db.fetchrow(
        "SELECT secret_enc, secret_digest FROM app WHERE app_type = :t", {"t": f"APP_{corp.upper()}"}
    )
    assert app is not None and "ST-SECRET-0001" not in app["secret_enc"] + app["secret_digest"]
    assert SecretBox(SECRET_KEY).decrypt(app["secret_enc"]) == "ST-SECRET-0001"
    with pytest.raises(ValueError, match="cannot be decrypted"):
        SecretBox("another-key").decrypt(app["secret_enc"])

    dumped = await dump_bundle(db, corp)
    text = repr(dumped)
    for secret in ("secret-0001", "ST-SECRET-0001", "code-1", "pw-123456"):
        assert secret not in text
    # A dump loads back (secrets already stored are kept) and changes nothing.
    report = await load_bundle(db, SecretBox(SECRET_KEY), parse_bundle(dumped))
    assert not report.created and not report.updated
    assert dumped["apps"][0]["forms"][0]["fields"][1]["fields"][0]["fieldId"] == "textField_r"


async def test_secrets_are_kept_as_written_and_texts_lose_their_blanks(db: Database) -> None:
    corp = unique()
    bundle = mutate(base(corp), "credentials[0].appSecret", "  padded secret  ")
    bundle = mutate(bundle, "apps[0].name", "  应用  ")
    box = SecretBox(SECRET_KEY)
    await load_bundle(db, box, parse_bundle(bundle))
    tokens = TokenService(db, box, ttl_seconds=60)
    assert (await tokens.verify(f"key-{corp}", "  padded secret  ")).client_id == f"key-{corp}"
    with pytest.raises(Unauthenticated):
        await tokens.verify(f"key-{corp}", "padded secret")
    assert await db.fetchval("SELECT name FROM app WHERE app_type = :t", {"t": f"APP_{corp.upper()}"}) == "应用"


async def test_two_users_with_one_union_id_are_refused(db: Database) -> None:
    corp = unique()
    bundle = mutate(base(corp), "users[0].unionId", "u-same")
    bundle = mutate(bundle, "users[1].unionId", "u-same")
    with pytest.raises(BundleError) as err:
        await load_bundle(db, SecretBox(SECRET_KEY), parse_bundle(bundle))
    assert err.value.path == "users[1].unionId" and "already user m's" in err.value.message
    assert await db.fetchval("SELECT count(*) FROM corp WHERE corp_id = :c", {"c": corp}) == 0


def test_fixture_bundles_are_valid() -> None:
    for name in ("corp_a.yaml", "corp_b.yaml"):
        parse_bundle(read_bundle(FIXTURES / name))
    parse_bundle(read_bundle(Path(__file__).parents[3] / "demo" / "bundle.yaml"))


AES = "Yue0EfdN5900c1ce5cf6A152c63DDe1808a60c5ecd7"


async def test_callbacks_load_encrypted_dump_without_secrets_and_load_back(db: Database) -> None:
    corp = unique()
    bundle = base(corp)
    key = f"key-{corp}"
    bundle["callbacks"] = [
        {"appKey": key, "kind": "http", "url": "https://erp.example.com/cb", "token": "cb-token-01", "aesKey": AES,
         "tags": ["bpms_instance_change"]},
        {"appKey": key, "kind": "stream", "tags": ["*"]},
    ]  # fmt: skip
    report = await load_bundle(db, SecretBox(SECRET_KEY), parse_bundle(bundle))
    assert report.created["callbacks"] == 2
    rows = await db.fetch("SELECT token_enc, aes_key_enc FROM event_subscription WHERE url IS NOT NULL"
                          " AND corp_pk = (SELECT id FROM corp WHERE corp_id = :c)", {"c": corp})  # fmt: skip
    assert len(rows) == 1 and "cb-token-01" not in rows[0]["token_enc"] and AES not in rows[0]["aes_key_enc"]
    assert SecretBox(SECRET_KEY).decrypt(rows[0]["token_enc"]) == "cb-token-01"
    dumped = await dump_bundle(db, corp)
    assert dumped["callbacks"] == [
        {"appKey": key, "kind": "http", "url": "https://erp.example.com/cb", "tags": ["bpms_instance_change"],
         "schedule": "persistent"},
        {"appKey": key, "kind": "stream", "tags": ["*"], "schedule": "persistent"},
    ]  # fmt: skip
    assert "cb-token-01" not in repr(dumped) and AES not in repr(dumped)
    report = await load_bundle(db, SecretBox(SECRET_KEY), parse_bundle(dumped))
    assert not report.created and not report.updated
    assert await load_bundle(db, SecretBox(SECRET_KEY), parse_bundle(bundle))  # the same again: unchanged


@pytest.mark.parametrize(
    ("callback", "error_path", "words"),
    [
        ({"appKey": "nobody", "tags": ["*"], "kind": "stream"}, "callbacks[0].appKey", "unknown credential"),
        ({"tags": ["nope"], "kind": "stream"}, "callbacks[0].tags", "unknown event type"),
        (
            {"tags": ["*"], "url": "https://x.example/cb", "token": "tok-1234", "aesKey": AES[:42]},
            "callbacks[0].aesKey",
            "aesKey must be exactly 43",
        ),
        ({"tags": ["*"], "url": "https://x.example/cb"}, "callbacks[0]", "token"),
    ],
)
async def test_bad_callbacks_name_the_path(db: Database, callback: dict[str, Any], error_path: str, words: str) -> None:
    corp = unique()
    bundle = base(corp)
    bundle["callbacks"] = [{"appKey": f"key-{corp}", **callback}]
    with pytest.raises(BundleError) as err:
        await load_bundle(db, SecretBox(SECRET_KEY), parse_bundle(bundle))
    assert err.value.path.startswith(error_path) and words in str(err.value), str(err.value)
    assert await db.fetchval("SELECT count(*) FROM corp WHERE corp_id = :c", {"c": corp}) == 0


def test_two_query_templates_of_one_name_are_refused() -> None:
    """A template's name is unique in the corp: two of one name in a bundle loaded, the last one silently winning."""
    bundle = base(unique())
    template = {"name": "byKind", "model": "m", "where": {}}
    bundle["weda"] = {"envId": "env-" + secrets.token_hex(3), "queryTemplates": [template, {**template, "limit": 7}]}
    with pytest.raises(BundleError) as err:
        parse_bundle(bundle, source="org.yaml")
    assert err.value.path == "weda.queryTemplates[0].name" and "duplicate name 'byKind'" in err.value.message
