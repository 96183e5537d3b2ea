"""A verified PID as the gateway's `Identity` (shared/reference/eudi-wallet-rp.md §5.2).

The person is identified by the PID's `issuing_country` and `personal_administrative_number`
(PID Rulebook 1.7 §4.1), never by names and a birth date alone, and only as a PID provider of
that country states it: the signing certificate's country (C) must be the `issuing_country`,
or one state's provider could name another state's citizens (a personnummer included):
- Sweden (`SE`): the number must be a personnummer (12 digits, a real date, the Luhn digit) or a
  samordningsnummer (day + 60); anything else from a Swedish PID is ambiguous and refused.
- Every other country: a Sweden Connect provisional identifier, `prid`, made from the country
  and the number by the `default-eIDAS` algorithm of "eIDAS Constructed Attributes
  Specification for the Swedish eID Framework" 1.1 §2.3.1, with `pridPersistence` B: the
  number is stable within its PID provider but not promised for life (PIDRB §2.3).

`given_name`, `family_name` and `birthdate` (PIDRB §4.1) pass through when disclosed; a
disclosed value of the wrong type or form refuses the presentation.
"""

from __future__ import annotations

import datetime
import hashlib
import re
import unicodedata
from collections.abc import Mapping
from typing import Any

from providers.base import Evidence, Identity
from providers.eudi_wallet.errors import InvalidPresentation, NoIdentifier, UntrustedIssuer
from providers.eudi_wallet.pid import VerifiedPid
from providers.identity_numbers import IdentityNumber, parse_identity_number

PRID_PERSISTENCE = "https://id.swedenconnect.se/claim/pridPersistence"
EIDAS_COUNTRY = "https://id.swedenconnect.se/claim/eidasCountry"
SWEDEN = "SE"
MAX_NUMBER_LENGTH = 256
MAX_NAME_LENGTH = 256
_COUNTRY = re.compile(r"[A-Z]{2}")
_TWELVE_DIGITS = re.compile(r"[0-9]{12}")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_NOT_ID_CHARACTERS = re.compile(r"[^a-z0-9]+")
# SC-PRID §2.3.1: the identifier component is 10 to 30 characters, at least 8 of them not "-".
PRID_MIN, PRID_MAX, PRID_MIN_DISTINCT = 10, 30, 8


def pid_identity(provider: str, pid: VerifiedPid, loa: str, auth_time: int) -> Identity:
    """NoIdentifier when the PID names no person unambiguously; InvalidPresentation when a
    disclosed name or birth date is not what PIDRB §4.1 says it is."""
    claims = pid.claims
    country = _issuing_country(claims)
    if pid.issuer_country != country:  # a PID provider names the people of its own state only
        raise UntrustedIssuer("the PID provider's certificate is not of the issuing country")
    number = _administrative_number(claims)
    given_name = _name(claims, "given_name")
    family_name = _name(claims, "family_name")
    names = [n for n in (given_name, family_name) if n is not None]
    person = _person(country, number)
    return Identity(
        provider=provider,
        subject=person["subject"],
        loa=loa,
        auth_time=auth_time,
        personal_identity_number=person.get("personal_identity_number"),
        coordination_number=person.get("coordination_number"),
        prid=person.get("prid"),
        given_name=given_name,
        family_name=family_name,
        name=" ".join(names) if names else None,
        birthdate=_birthdate(claims),
        extra={} if country == SWEDEN else {PRID_PERSISTENCE: "B", EIDAS_COUNTRY: country},
        evidence=Evidence(upstream=pid.issuer),
        authn_provider=pid.issuer,
    )


def _person(country: str, number: str) -> dict[str, str]:
    """The Identity fields that say who it is; `subject` is the personnummer or the prid."""
    if country == SWEDEN:
        swedish = _swedish_number(number)
        field = (
            "coordination_number" if swedish.is_coordination_number else "personal_identity_number"
        )
        return {"subject": swedish.digits, field: swedish.digits}
    prid = default_eidas_prid(country, number)
    return {"subject": prid, "prid": prid}


def _issuing_country(claims: Mapping[str, Any]) -> str:
    country = claims.get("issuing_country")
    if not isinstance(country, str) or not _COUNTRY.fullmatch(country):
        raise NoIdentifier("the PID has no issuing_country of two capital letters")
    return country


def _administrative_number(claims: Mapping[str, Any]) -> str:
    number = claims.get("personal_administrative_number")
    if not isinstance(number, str) or not 0 < len(number) <= MAX_NUMBER_LENGTH:
        raise NoIdentifier("the PID has no usable personal_administrative_number")
    return number


def _swedish_number(number: str) -> IdentityNumber:
    """§5.2: a Swedish PID identifies by a personnummer or samordningsnummer in its 12-digit
    form; any other number from SE is ambiguous (it could be another person's by format)."""
    if not _TWELVE_DIGITS.fullmatch(number):
        raise NoIdentifier("a Swedish PID's number is not 12 digits")
    try:
        return parse_identity_number(number)
    except ValueError as error:
        raise NoIdentifier(f"a Swedish PID's number is not valid: {error}") from None


def default_eidas_prid(country: str, number: str) -> str:
    """SC-PRID §2.3.1 `default-eIDAS` on `number` (our input has no "XX/SE/" prefix to strip):
    whitespace and non-printables removed; lower case; each run of other characters than a-z
    and 0-9 one "-", none at either end; padded with leading zeros to 10; over 30 characters,
    the first 30 hex digits of SHA-256 of the stripped number (Java's BigInteger.toString(16),
    so without leading zeros). NoIdentifier when fewer than 8 characters remain."""
    stripped = "".join(c for c in number if c.isprintable() and not c.isspace())
    normalized = _NOT_ID_CHARACTERS.sub("-", stripped.lower()).strip("-")
    if len(normalized.replace("-", "")) < PRID_MIN_DISTINCT:
        raise NoIdentifier("the PID's number has fewer than 8 identifying characters")
    if len(normalized) > PRID_MAX:
        digest = hashlib.sha256(stripped.encode("utf-8")).digest()
        normalized = format(int.from_bytes(digest, "big"), "x")[:PRID_MAX]
    return f"{country}:{normalized.rjust(PRID_MIN, '0')}"


def _name(claims: Mapping[str, Any], claim: str) -> str | None:
    value = claims.get(claim)
    if value is None:
        return None
    if not isinstance(value, str) or not 0 < len(value.strip()) <= MAX_NAME_LENGTH:
        raise InvalidPresentation(f"the PID's {claim} is not a name")
    if any(unicodedata.category(c) in ("Cc", "Cs") for c in value):  # controls, surrogates
        raise InvalidPresentation(f"the PID's {claim} holds control characters")
    return value


def _birthdate(claims: Mapping[str, Any]) -> str | None:
    """PIDRB §4.1: `birthdate` as YYYY-MM-DD, a real date."""
    value = claims.get("birthdate")
    if value is None:
        return None
    if not isinstance(value, str) or not _DATE.fullmatch(value):
        raise InvalidPresentation("the PID's birthdate is not YYYY-MM-DD")
    try:
        datetime.date.fromisoformat(value)
    except ValueError:
        raise InvalidPresentation("the PID's birthdate is not a real date") from None
    return value
