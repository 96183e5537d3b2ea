"""The person the e-service names: a `login_hint` that is a Swedish identity number, or a
`claims` request of the personal identity number with a `value` (OIDC Core §5.5.1). Such a
login must end with that very person (the flow checks every provider's answer in one place),
and the upstream is told who it is where it can be (SAML PrincipalSelection, BankID's
`requirement.personalNumber`, an upstream OP's `login_hint` and `claims`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from authlib.oauth2.rfc6749.errors import InvalidRequestError

from gateway.oidc.claims import PERSONAL_IDENTITY_NUMBER
from providers.identity_numbers import InvalidIdentityNumber, parse_identity_number


@dataclass(frozen=True)
class NamedPerson:
    digits: str  # 12 digits
    claimed: bool  # named by a `claims` value, not only by login_hint


def named_person(
    login_hint: str | None, claims: Mapping[str, Mapping[str, Any] | None]
) -> NamedPerson | None:
    """Who the request names, if anyone; `invalid_request` for a `claims` value that is no
    identity number, or one that contradicts the login_hint's number."""
    hinted = _hinted(login_hint)
    claimed = _claimed(claims)
    if hinted and claimed and hinted != claimed:
        raise InvalidRequestError("login_hint and the claims value name different persons")
    if claimed:
        return NamedPerson(claimed, claimed=True)
    return NamedPerson(hinted, claimed=False) if hinted else None


def _hinted(login_hint: str | None) -> str | None:
    """A login_hint may be anything (an e-mail address, an opaque id): only a valid identity
    number names the person."""
    if not login_hint:
        return None
    try:
        return parse_identity_number(login_hint).digits
    except InvalidIdentityNumber:
        return None


def _claimed(claims: Mapping[str, Mapping[str, Any] | None]) -> str | None:
    values = set()
    for target in ("id_token", "userinfo"):
        request = (claims.get(target) or {}).get(PERSONAL_IDENTITY_NUMBER) or {}
        if "value" in request:
            try:
                values.add(parse_identity_number(str(request["value"])).digits)
            except InvalidIdentityNumber as invalid:
                raise InvalidRequestError(
                    f"claims: the personalIdentityNumber value is not valid: {invalid.reason}"
                ) from None
    if len(values) > 1:
        raise InvalidRequestError("claims: id_token and userinfo name different persons")
    return values.pop() if values else None
