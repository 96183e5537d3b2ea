"""`https://id.oidc.se/param/userMessage` (Authentication Request Parameter Extensions 1.1 §2.1):
the text the e-service wants the citizen to see while authenticating, checked at /authorize.

The value is a JSON object: `message` and/or `message#<BCP 47 tag>`, each the standard Base64 of
UTF-8 text, and an optional `mime_type` (`text/plain` when absent, or `text/markdown`). Anything
else is `invalid_request` at /authorize, so that the e-service learns of its mistake at once
rather than the citizen meeting a login without its message. Early drafts' nested
`{"message": {"sv": ...}}` shape is not RPar 1.1's and is refused like any other.
"""

from __future__ import annotations

import base64
import binascii
import re
import unicodedata
from collections.abc import Mapping

from authlib.oauth2.rfc6749.errors import InvalidRequestError
from starlette.datastructures import ImmutableMultiDict

from gateway.oidc.error_text import quoted
from gateway.settings import ClientSettings
from providers.base import UserMessage
from providers.parsing import MalformedInput, bounded_json

USER_MESSAGE_PARAMETER = "https://id.oidc.se/param/userMessage"
MIME_TYPES = ("text/plain", "text/markdown")
DEFAULT_MIME_TYPE = "text/plain"
# BankID shows at most this much Base64 at /auth (bankid-rp-v6.md §2.1), and BankID is the
# strictest e-ID that shows the message (Sweden Connect's BankID IdP maps the SAML message to
# the same field). A longer text is refused here rather than cut short where it is shown.
MAX_ENCODED_LENGTH = 1_500
# BCP 47's shape (RFC 5646 §2.1), not its registry: language, then subtags of 1-8 letters/digits.
LANGUAGE_TAG = re.compile(r"[A-Za-z]{1,8}(?:-[A-Za-z0-9]{1,8})*", re.ASCII)
LINE_BREAKS_AND_TABS = frozenset("\r\n\t")


def valid_user_message(params: ImmutableMultiDict[str, str], _client: ClientSettings) -> None:
    """The AUTHORIZE_STEPS step: the parameter, when given, is well formed."""
    parse_user_message(params.get(USER_MESSAGE_PARAMETER))


def parse_user_message(raw: str | None) -> dict[str, str] | None:
    """The validated JSON object (what `AuthorizationParameters.user_message` keeps)."""
    if raw is None:
        return None
    try:
        value = bounded_json(raw)
    except MalformedInput as problem:
        raise _invalid(str(problem)) from None
    return checked_message(value)


def checked_message(
    value: object, where: str = USER_MESSAGE_PARAMETER, max_length: int = MAX_ENCODED_LENGTH
) -> dict[str, str]:
    """An object of RPar §2.1's userMessage shape, as JSON gave it; `where` names it in the
    error (the Signature Extension's `sign_message` has the same shape, other limits)."""
    if not isinstance(value, dict):
        raise _invalid("must be a JSON object", where)
    for name, member in value.items():
        _check_member(name, member, where, max_length)
    if not any(name != "mime_type" for name in value):
        raise _invalid("has no message (give message or message#<language tag>)", where)
    return value


def user_message_of(
    parameters: Mapping[str, str] | None, prompt: tuple[str, ...]
) -> UserMessage | None:
    """The decoded message a provider shows, from the validated object; None with
    `prompt=none` (RPar §2.1: never shown unless the citizen is actually authenticated)."""
    if not parameters or "none" in prompt:
        return None
    texts = {
        name.partition("#")[2]: _decoded(name, text)
        for name, text in parameters.items()
        if name != "mime_type"
    }
    return UserMessage(texts, parameters.get("mime_type", DEFAULT_MIME_TYPE))


def _check_member(name: object, member: object, where: str, max_length: int) -> None:
    if not isinstance(member, str):
        raise _invalid(
            f"{quoted(str(name))} must be a string (RPar 1.1 has no nested languages)", where
        )
    if name == "mime_type":
        if member not in MIME_TYPES:
            raise _invalid(f"mime_type must be one of {', '.join(MIME_TYPES)}", where)
        return
    if name != "message" and not (
        isinstance(name, str)
        and name.startswith("message#")
        and LANGUAGE_TAG.fullmatch(name.removeprefix("message#"))
    ):
        raise _invalid("members must be message, message#<language tag> or mime_type", where)
    _decoded(name, member, where, max_length)


def _decoded(
    name: str, text: str, where: str = USER_MESSAGE_PARAMETER, max_length: int | None = None
) -> str:
    """Standard Base64 of non-empty UTF-8 text, written the one way Base64 writes it (so that
    passing it on re-encoded changes nothing), without control characters but line breaks."""
    if max_length is not None and len(text) > max_length:
        raise _invalid(f"{name} is longer than {max_length} Base64 characters", where)
    try:
        data = base64.b64decode(text, validate=True)
        decoded = data.decode("utf-8")
    except (binascii.Error, ValueError):
        raise _invalid(f"{name} is not Base64 of UTF-8 text", where) from None
    if base64.b64encode(data).decode() != text:
        raise _invalid(f"{name} is not Base64 of UTF-8 text", where)
    if not decoded.strip():
        raise _invalid(f"{name} is empty", where)
    if any(unicodedata.category(c) == "Cc" and c not in LINE_BREAKS_AND_TABS for c in decoded):
        raise _invalid(f"{name} contains control characters", where)
    return decoded


def _invalid(problem: str, where: str = USER_MESSAGE_PARAMETER) -> InvalidRequestError:
    return InvalidRequestError(f"{where}: {problem}")
