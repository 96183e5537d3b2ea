"""`read_form` answers every body as Starlette's own form parser does: the same fields in the
same order, or the same 400; `login_form` lets through only a form with its login's CSRF token
(tests of the endpoints that use them are the rest)."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.types import Message

from providers.base import FormRejected
from providers.forms import READ_WHOLE_BYTES, login_form, read_form

URLENCODED = "application/x-www-form-urlencoded"
# The bytes that mean something to either parser, and a few that do not.
BODY_BYTES = st.sampled_from([*b"&=;+%2Fa0 \t\r\n", 0x00, 0xC3, 0xA5, 0xFF])
CONTENT_TYPES = st.sampled_from(
    [
        URLENCODED,
        "Application/X-WWW-Form-URLEncoded",
        f" {URLENCODED} ; charset=utf-8",
        f"{URLENCODED}x",
        "multipart/form-data; boundary=x",
        "text/plain",
        "",
    ]
)


def request(body: bytes, content_type: str, chunks: int = 1, length: str | None = None) -> Request:
    headers = [(b"content-length", (length or str(len(body))).encode())]
    if content_type:
        headers.append((b"content-type", content_type.encode("latin-1")))
    step = max(1, -(-len(body) // chunks))
    pieces = [body[i : i + step] for i in range(0, len(body), step)] or [b""]

    async def receive() -> Message:
        piece = pieces.pop(0) if pieces else b""
        return {"type": "http.request", "body": piece, "more_body": bool(pieces)}

    scope = {"type": "http", "method": "POST", "path": "/", "headers": headers, "app": None}
    return Request(scope, receive)


async def answer(form: asyncio.Future[FormData] | object) -> object:
    try:
        read = await form  # type: ignore[misc]
    except HTTPException as refused:
        return (refused.status_code, refused.detail)
    return list(read.multi_items())


def both(body: bytes, content_type: str, max_fields: int, chunks: int = 1) -> tuple[object, object]:
    async def run() -> tuple[object, object]:
        ours = await answer(read_form(request(body, content_type, chunks), max_fields))
        starlette = request(body, content_type, chunks).form(max_files=0, max_fields=max_fields)
        return ours, await answer(starlette)

    return asyncio.run(run())


@settings(max_examples=300, deadline=None)
@given(
    body=st.lists(BODY_BYTES, max_size=80).map(bytes),
    content_type=CONTENT_TYPES,
    max_fields=st.integers(1, 6),
    chunks=st.integers(1, 3),
)
def test_any_body_reads_as_starlette_reads_it(
    body: bytes, content_type: str, max_fields: int, chunks: int
) -> None:
    ours, starlette = both(body, content_type, max_fields, chunks)
    assert ours == starlette


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"a=1;b=2", [("a", "1;b=2")]),  # only & separates fields
        (b"&&a=%C3%A5+b&&c", [("a", "å b"), ("c", "")]),
        (b"a=1&a=2", [("a", "1"), ("a", "2")]),  # repeated names are kept, for the caller
    ],
)
def test_fields_of_a_usual_body(body: bytes, expected: list[tuple[str, str]]) -> None:
    assert both(body, URLENCODED, 8) == (expected, expected)


def test_too_many_fields_get_starlettes_400() -> None:
    ours, starlette = both(b"a=1&b=2&c=3", URLENCODED, 2)
    assert ours == starlette == (400, "Too many fields. Maximum number of fields is 2.")


def test_empty_fields_do_not_count() -> None:
    assert both(b"a=1&&&&&b=2", URLENCODED, 2) == ([("a", "1"), ("b", "2")],) * 2


def test_a_field_over_starlettes_part_size_gets_its_400() -> None:
    body = b"a=" + b"x" * READ_WHOLE_BYTES
    ours, starlette = both(body, URLENCODED, 4)
    assert ours == starlette == (400, "Field exceeded maximum size of 1024KB.")


def test_a_length_that_is_not_a_number_is_left_to_starlette() -> None:
    async def run() -> object:
        return await answer(read_form(request(b"a=1", URLENCODED, length="3 "), 4))

    assert asyncio.run(run()) == [("a", "1")]


class OneTokenGuard:
    """A FormGuard whose one valid token is `login_id` reversed (the real one binds it to the
    browser's cookie: tests/login/test_flow.py)."""

    def token(self, _request: Request, login_id: str) -> str:
        return login_id[::-1]

    def verify(self, _request: Request, login_id: str, token: str) -> bool:
        return bool(login_id) and token == login_id[::-1]


@pytest.mark.parametrize(
    "body",
    [b"login=abc&csrf=forged", b"login=abc", b"csrf=cba", b""],
    ids=["forged", "no-token", "no-login", "empty"],
)
def test_a_login_form_without_its_token_is_rejected(body: bytes) -> None:
    guarded = login_form(request(body, URLENCODED), OneTokenGuard(), "sandbox", 8, "the form")
    with pytest.raises(FormRejected) as rejected:
        asyncio.run(guarded)
    assert rejected.value.provider == "sandbox"
    assert "the form failed its CSRF check" in str(rejected.value)


def test_a_login_form_with_its_token_gives_the_login_and_fields() -> None:
    guarded = login_form(
        request(b"login=abc&csrf=cba&pnr=1", URLENCODED), OneTokenGuard(), "sandbox", 8, "form"
    )
    login_id, form = asyncio.run(guarded)
    assert login_id == "abc"
    assert form["pnr"] == "1"
