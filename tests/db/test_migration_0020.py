"""Migration 0020: the serial-number counters' table, and the records saved before it with a value in their form's
first SerialNumberField (an import, an API client) get it as their own serial number (``serialNo``), as the records
saved after it do."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from tests.conftest import engine_at, fresh_database, load_fixture_bundle
from zida.db.migrate import upgrade


@pytest.fixture
def at_0019(tmp_path: Path) -> Iterator[str]:
    """A database migrated to 0019 with corpSerials loaded."""
    with fresh_database(tmp_path, "0019") as url:
        load_fixture_bundle(url, "corp_serials.yaml")
        yield url


_RECORD = (
    "INSERT INTO form_instance (instance_id, corp_pk, app_pk, form_pk, form_version, title, originator_user_id,"
    " modifier_user_id, created_at, modified_at, data, data_version)"
    " SELECT :id, a.corp_pk, f.app_pk, f.id, f.current_version, 't', 'li', 'li', 1, 1, :data, 1"
    " FROM form f JOIN app a ON a.id = f.app_pk WHERE f.form_uuid = :form"
)


def test_records_saved_before_get_their_first_serial_fields_value_as_their_serial_number(at_0019: str) -> None:
    with engine_at(at_0019) as engine:
        with engine.begin() as conn:
            cast = "CAST(:data AS jsonb)" if conn.dialect.name == "postgresql" else ":data"
            record = _RECORD.replace(":data, 1", f"{cast}, 1")
            for instance_id, form, data in (
                ("FINST-OLD-1", "FORM-SERIAL-CLAIM", '{"serialNumberField_no": "BX-OLD-1", "textField_note": "a"}'),
                ("FINST-OLD-2", "FORM-SERIAL-CLAIM", '{"serialNumberField_plain": "9", "textField_note": "b"}'),
                ("FINST-OLD-3", "FORM-SERIAL-TRIP", '{"serialNumberField_trip": "CC0042"}'),
            ):
                conn.execute(text(record), {"id": instance_id, "form": form, "data": data})
        upgrade(at_0019)
        with engine.begin() as conn:
            rows = conn.execute(text("SELECT instance_id, serial_no FROM form_instance ORDER BY instance_id"))
            assert [tuple(r) for r in rows] == [
                ("FINST-OLD-1", "BX-OLD-1"),
                ("FINST-OLD-2", None),
                ("FINST-OLD-3", "CC0042"),
            ]
            assert conn.execute(text("SELECT count(*) FROM serial_counter")).scalar() == 0
