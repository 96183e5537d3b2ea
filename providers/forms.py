"""A posted form, read as Starlette reads it, at half the cost for the usual body.

Every form the gateway and its providers accept is small and URL-encoded: an OAuth request,
a SAML Response, a citizen's choice. Starlette parses such a body with python-multipart's
streaming parser, one callback per piece of a field; the standard library's `parse_qsl` over
the whole body gives the same fields (tests/providers/test_forms.py compares the two on any
body) for about half the CPU of a `/token` request's form (13-16 µs against 26-32). Any body
that is not the usual one, by its Content-Type, its missing or large Content-Length or its
count of separators, is Starlette's to read, so that its limits (fields, part size, no files)
answer exactly as before. (A SAML Response's 10 KB cost both about the same: the unquoting.)
In `providers`, so that the gateway and the providers share it; `login_form` is the CSRF step
of every provider page that posts back.
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from python_multipart.multipart import parse_options_header
from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request

from providers.base import FormGuard, FormRejected

URLENCODED = b"application/x-www-form-urlencoded"
# Starlette's own limit on one field; a body no larger cannot hold a field over it.
READ_WHOLE_BYTES = 1024 * 1024


async def read_form(request: Request, max_fields: int) -> FormData:
    """The request's form fields; never a file. Starlette's answer for the same body: the same
    fields in order, and the same 400 when the body breaks a limit."""
    if not _usual(request):
        return await request.form(max_files=0, max_fields=max_fields)
    body = await request.body()
    if body.count(b"&") >= max_fields:  # more fields than allowed, unless some are empty
        return await request.form(max_files=0, max_fields=max_fields)
    fields: list[tuple[str, str | UploadFile]] = [
        *parse_qsl(body.decode("latin-1"), keep_blank_values=True)
    ]
    return FormData(fields)


async def login_form(
    request: Request, guard: FormGuard, provider: str, max_fields: int, what: str
) -> tuple[str, FormData]:
    """A provider's page posted back: the pending login it names and its fields, once its CSRF
    token proves the page was given to this browser for that login; else `FormRejected`."""
    form = await read_form(request, max_fields)
    login_id = str(form.get("login", ""))
    if not guard.verify(request, login_id, str(form.get("csrf", ""))):
        raise FormRejected(provider, login_id, f"{what} failed its CSRF check")
    return login_id, form


def _usual(request: Request) -> bool:
    """URL-encoded, of a stated length small enough to read whole."""
    content_type, _ = parse_options_header(request.headers.get("content-type"))
    if content_type != URLENCODED:
        return False
    length = request.headers.get("content-length", "")
    return length.isascii() and length.isdigit() and int(length) <= READ_WHOLE_BYTES
