"""SAML attributes (Sweden Connect attribute specification 1.8 §3) -> Identity.

A personalIdentityNumber becomes `personal_identity_number`, or `coordination_number` when its
day is 61-91 (SKV 707). An eIDAS login (the connector) has no Swedish number: its `prid` is the
person's key and the eIDAS attributes pass through as the Sweden Connect claims. A
mappedPersonalIdentityNumber stays a separate claim, never a personnummer (Attrs §3.3.2).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from providers.identity_numbers import InvalidIdentityNumber, parse_identity_number

IdentityField = Literal[
    "personal_identity_number",
    "given_name",
    "family_name",
    "name",
    "birthdate",
    "prid",
    "prid_persistence",
    "eidas_person_identifier",
    "country",
    "mapped_personal_identity_number",
]

DEFAULT_ATTRIBUTES: dict[IdentityField, str] = {
    "personal_identity_number": "urn:oid:1.2.752.29.4.13",
    "given_name": "urn:oid:2.5.4.42",
    "family_name": "urn:oid:2.5.4.4",
    "name": "urn:oid:2.16.840.1.113730.3.1.241",
    "birthdate": "urn:oid:1.3.6.1.5.5.7.9.1",
    "prid": "urn:oid:1.2.752.201.3.4",
    "prid_persistence": "urn:oid:1.2.752.201.3.5",
    "eidas_person_identifier": "urn:oid:1.2.752.201.3.7",
    "country": "urn:oid:2.5.4.6",
    "mapped_personal_identity_number": "urn:oid:1.2.752.201.3.16",
}

# Identity.extra keys are claim names (gateway/oidc/claims.py passes these through).
EXTRA_CLAIMS: dict[IdentityField, str] = {
    "prid_persistence": "https://id.swedenconnect.se/claim/pridPersistence",
    "eidas_person_identifier": "https://id.swedenconnect.se/claim/eidasPersonIdentifier",
    "country": "https://id.swedenconnect.se/claim/eidasCountry",
}


class UnacceptableAttribute(ValueError):
    """An attribute value that cannot be accepted (malformed number, several values)."""


def read_person(
    attributes: Mapping[str, tuple[str, ...]],
    overrides: Mapping[IdentityField, str],
) -> dict[str, object]:
    """Identity keyword arguments from the assertion's attributes (by attribute Name)."""
    names = {**DEFAULT_ATTRIBUTES, **overrides}

    def single(field: IdentityField) -> str | None:
        values = attributes.get(names[field], ())
        if len(values) > 1:
            raise UnacceptableAttribute(f"{field} has several values")
        return values[0] if values and values[0] else None

    person: dict[str, object] = {
        "given_name": single("given_name"),
        "family_name": single("family_name"),
        "birthdate": single("birthdate"),
        "prid": single("prid"),
    }
    display_name = single("name")
    if display_name is None and (person["given_name"] or person["family_name"]):
        display_name = " ".join(str(p) for p in (person["given_name"], person["family_name"]) if p)
    person["name"] = display_name
    number = single("personal_identity_number")
    if number is not None:
        try:
            parsed = parse_identity_number(number)
        except InvalidIdentityNumber as error:
            raise UnacceptableAttribute(f"personalIdentityNumber: {error}") from None
        key = "coordination_number" if parsed.is_coordination_number else "personal_identity_number"
        person[key] = parsed.digits
        person["birthdate"] = person["birthdate"] or parsed.birthdate
    extra = {claim: value for field, claim in EXTRA_CLAIMS.items() if (value := single(field))}
    person["extra"] = extra
    person["mapped_identity_number"] = single("mapped_personal_identity_number")  # evidence only
    return person
