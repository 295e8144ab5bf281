"""The core's errors as dialects render them."""

from __future__ import annotations

from zida.core.errors import MAX_MESSAGE_CHARS, InvalidArgument, NotFound


def test_a_message_is_rendered_with_the_dialects_parameter_name() -> None:
    err = InvalidArgument("{param} is required", reason="argument.missing", param="record")
    assert err.render({"record": "formInstanceId"}) == "formInstanceId is required"
    assert err.message == "record is required"


def test_a_message_never_comes_back_longer_than_the_cap() -> None:
    # Whatever a message quotes, a dialect never sends a client's megabyte back to it.
    err = NotFound("process " + "f" * 1_000_000 + " does not exist", reason="process.not_found")
    shown = err.message
    assert len(shown) < MAX_MESSAGE_CHARS + 40 and shown.endswith(f"({1_000_000 + 23} characters)")
    assert err.within("[1]").message.startswith("[1]: process fff")
