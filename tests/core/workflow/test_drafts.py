"""Process drafts at the core level: saved, changed and listed per user; submitting one starts its process and
deletes it in the same transaction, and one whose values fail the form's rules stays a draft."""

from __future__ import annotations

import uuid

import pytest

from tests.core.corp import FLOW, LEAVE, CorpCoreMain
from zida.core.errors import Conflict, InvalidArgument, NotFound
from zida.core.records.filters import Page
from zida.core.workflow import drafts

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("consistent_workflow")]


class Corp(CorpCoreMain):
    default_app = FLOW


async def test_a_draft_is_the_user_s_until_it_is_submitted(corp: Corp) -> None:
    li, sun = await corp.actor("li"), await corp.actor("sun")
    reason = uuid.uuid4().hex[:8]
    draft = await drafts.save_draft(corp.db, li, LEAVE, {"textField_reason": reason})
    assert draft.draft_id.startswith("DRAFT-") and draft.values == {"textField_reason": reason}
    changed = await drafts.save_draft(
        corp.db, li, None, {"textField_reason": reason, "numberField_days": "x"}, draft_id=draft.draft_id
    )
    assert changed.values["numberField_days"] == "x"
    total, mine = await drafts.list_drafts(corp.db, corp.corp_pk, "li", Page(1, 100))
    assert draft.draft_id in [d.draft_id for d in mine] and total >= 1
    with pytest.raises(NotFound):
        await drafts.find_draft(corp.db, sun, draft.draft_id)  # another user's draft does not exist for him
    with pytest.raises(NotFound):
        await drafts.submit_draft(corp.db, sun, draft.draft_id)
    with pytest.raises(InvalidArgument):
        await drafts.save_draft(corp.db, li, LEAVE, {"nope": 1})
    with pytest.raises(Conflict):
        await drafts.save_draft(corp.db, li, "FORM-CORE-PLAIN", {})  # a plain form has no drafts

    with pytest.raises(InvalidArgument):  # days is not a number: the start refuses, the draft stays
        await drafts.submit_draft(corp.db, li, draft.draft_id)
    assert (await drafts.find_draft(corp.db, li, draft.draft_id)).values["numberField_days"] == "x"
    inst = await drafts.submit_draft(corp.db, li, draft.draft_id, {"numberField_days": 2})
    assert inst.originator_user_id == "li" and inst.record.data == {"textField_reason": reason, "numberField_days": 2}
    with pytest.raises(NotFound):
        await drafts.find_draft(corp.db, li, draft.draft_id)
    with pytest.raises(NotFound):
        await drafts.submit_draft(corp.db, li, draft.draft_id)
