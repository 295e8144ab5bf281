"""``query_params``: the query split by hand when it has nothing to decode gives exactly Starlette's pairs, and
Starlette's ``request.query_params`` reads what it kept."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from starlette.datastructures import QueryParams
from starlette.requests import Request

from zida.dialects.http import query_params, query_values


def request(query: bytes) -> Request:
    return Request({"type": "http", "method": "GET", "path": "/x", "headers": [], "query_string": query})


@given(st.lists(st.sampled_from(["a", "b", "=", "&", ";", "%", "+", "2", "0", "é", " ", "%41", "%zz"]), max_size=30))
def test_the_pairs_are_starlettes(pieces: list[str]) -> None:
    raw = "".join(pieces).encode()
    assert query_params(request(raw)).multi_items() == QueryParams(raw).multi_items()


@given(st.lists(st.sampled_from(["a", "b", "=", "&", "%", "+", "2", "é", "%41", "%zz"]), max_size=30))
def test_the_values_are_starlettes_mapping(pieces: list[str]) -> None:
    raw = "".join(pieces).encode()
    assert query_values(request(raw)) == dict(QueryParams(raw))  # a repeated name: its last value


def test_a_yida_read_query() -> None:
    req = request(b"appType=APP_X&systemToken=ST-1&userId=u1&&flag&=v&userId=u2")
    params = query_params(req)
    assert params.multi_items() == [
        ("appType", "APP_X"),
        ("systemToken", "ST-1"),
        ("userId", "u1"),
        ("flag", ""),
        ("", "v"),
        ("userId", "u2"),
    ]
    assert params["userId"] == "u2"  # the last one, as Starlette's mapping gives it
    assert req.query_params is params  # kept where Starlette looks: parsed once per request


def test_encoded_queries_are_decoded_by_starlette() -> None:
    params = query_params(request(b"name=%E5%BC%A0+%E4%B8%89&x=a%26b"))
    assert params["name"] == "张 三"
    assert params["x"] == "a&b"
