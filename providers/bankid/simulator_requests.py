"""What BankID's RP API v6.0 accepts in `/auth`, `/sign` and `/phone/*` bodies, for the simulator
(shared/reference/bankid-rp-v6.md §2.1, §2.2, §2.4, with the limits BankID's own sample RP and the
DEV texts copied into ActiveLogin give). Anything else is refused with `invalidParameters`, as
BankID does: keys v6.0 does not know (the v5.1 ones included), wrong types, empty or too long
texts, digits that are not ASCII.

`/sign` follows RP API v6.0 as BankID's SampleCode (@b6cc93d, 2025-03-20) and the DEV texts
copied into ActiveLogin (2026-02) state it (bankid-2026-and-ciba.md §1.9; developers.bankid.com
itself was not read): `userVisibleData` required, Base64 of UTF-8 text, at most 40 000
characters; `userNonVisibleData` optional, Base64 of any bytes, at most 200 000;
`userVisibleDataFormat` only `simpleMarkdownV1`."""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
from dataclasses import dataclass
from typing import Any

START_KEYS = frozenset(
    {
        "endUserIp",
        "requirement",
        "userVisibleData",
        "userNonVisibleData",
        "userVisibleDataFormat",
        "returnUrl",
        "returnRisk",
        "web",
        "app",
    }
)
PHONE_KEYS = frozenset(
    {
        "personalNumber",
        "callInitiator",
        "requirement",
        "userVisibleData",
        "userNonVisibleData",
        "userVisibleDataFormat",
    }
)
REQUIREMENT_KEYS = frozenset(
    {"pinCode", "mrtd", "cardReader", "certificatePolicies", "personalNumber"}
)
# bankid-2026-and-ciba.md §0, §1.10: GOB adds cardReader, ANYFIN cardReader and mrtd, and BankID
# has offered the MRTD check in phone calls since 2025-05; never personalNumber (the body has it).
PHONE_REQUIREMENT_KEYS = frozenset({"pinCode", "mrtd", "cardReader", "certificatePolicies"})
WEB_LIMITS = {"referringDomain": (3, 253), "userAgent": (1, 256), "deviceIdentifier": (1, 64)}
# §2.1: lengths for `app` are not documented in our sources except deviceIdentifier (as web's).
APP_LIMITS = {
    "appIdentifier": (1, 256),
    "deviceOS": (1, 256),
    "deviceModelName": (1, 256),
    "deviceIdentifier": (1, 64),
}
REFERRING_DOMAIN = re.compile(r"[0-9a-z.-]+")  # the length: WEB_LIMITS
CARD_READERS = ("class1", "class2")
CALL_INITIATORS = ("user", "RP")
PERSONAL_NUMBER = re.compile(r"[0-9]{12}")  # ASCII only, unlike str.isdigit()
# §2.2: an OID, or an OID prefix of at least four arcs ending in one "*" (1.2.752.78.*).
POLICY = re.compile(r"[0-9]+(\.[0-9]+)*|[0-9]+(\.[0-9]+){3,}\.\*")


class ApiError(Exception):
    def __init__(self, code: str, details: str) -> None:
        super().__init__(details)
        self.code = code
        self.details = details


def invalid(details: str) -> ApiError:
    return ApiError("invalidParameters", details)


@dataclass(frozen=True)
class StartRequest:
    end_user_ip: str
    requirement: dict[str, Any]
    user_visible_data: str | None
    return_url: str | None
    user_visible_data_format: str | None = None
    user_non_visible_data: str | None = None  # the Base64 as sent
    return_risk: bool = False


@dataclass(frozen=True)
class PhoneRequest:
    personal_number: str
    requirement: dict[str, Any]
    user_visible_data: str | None
    user_non_visible_data: str | None  # the Base64 as sent
    call_initiator: str = "user"  # exactly `user` or `RP`
    user_visible_data_format: str | None = None


def checked_start(body: dict[str, Any], sign: bool) -> StartRequest:
    """§2.1: `/auth` (`sign` False) and `/sign`."""
    _known_keys(body, START_KEYS, "")
    raw_ip = body.get("endUserIp")
    try:
        end_user_ip = str(ipaddress.ip_address(raw_ip if isinstance(raw_ip, str) else ""))
    except ValueError:
        raise invalid("endUserIp must be an IPv4 or IPv6 address") from None
    visible = _texts(body, sign, visible_limit=40_000 if sign else 1_500)
    non_visible = _non_visible(body, 200_000 if sign else 1_500)
    return_url = body.get("returnUrl")
    if return_url is not None and not _text_within(return_url, 1, 512):
        raise invalid("returnUrl must be 1-512 characters")
    if not isinstance(body.get("returnRisk", False), bool):
        raise invalid("returnRisk must be a boolean")
    if "web" in body and "app" in body:
        raise invalid("web and app are mutually exclusive")
    _device(body.get("web"), "web", WEB_LIMITS)
    _device(body.get("app"), "app", APP_LIMITS)
    referring = (body.get("web") or {}).get("referringDomain")
    if referring is not None and not REFERRING_DOMAIN.fullmatch(referring):
        raise invalid("web.referringDomain may hold only 0-9, a-z, '.' and '-' (IDN as punycode)")
    requirement = checked_requirement(body.get("requirement", {}), REQUIREMENT_KEYS)
    visible_format = body.get("userVisibleDataFormat")  # _texts checked its one value
    return StartRequest(
        end_user_ip,
        requirement,
        visible,
        return_url,
        visible_format,
        non_visible,
        body.get("returnRisk", False),
    )


def checked_phone(body: dict[str, Any], sign: bool) -> PhoneRequest:
    """§2.4 and bankid-2026-and-ciba.md §1.10: `/phone/auth` and `/phone/sign`. `callInitiator`
    required, exact case; `personalNumber` 12 ASCII digits; none of the web/app fields
    (`endUserIp`, `returnUrl`, `returnRisk`, `web`, `app`); `userVisibleData` required for
    `/phone/sign`."""
    _known_keys(body, PHONE_KEYS, "")
    number = body.get("personalNumber")
    if not (isinstance(number, str) and PERSONAL_NUMBER.fullmatch(number)):
        raise invalid("personalNumber must be 12 digits")
    if body.get("callInitiator") not in CALL_INITIATORS:
        raise invalid("callInitiator must be user or RP")
    visible = _texts(body, sign, visible_limit=40_000 if sign else 1_500)
    non_visible = _non_visible(body, 200_000 if sign else 1_500)
    requirement = checked_requirement(body.get("requirement", {}), PHONE_REQUIREMENT_KEYS)
    return PhoneRequest(
        number,
        {**requirement, "personalNumber": number},
        visible,
        non_visible,
        str(body["callInitiator"]),
        body.get("userVisibleDataFormat"),
    )


def checked_requirement(requirement: Any, allowed: frozenset[str]) -> dict[str, Any]:
    """§2.2."""
    if not isinstance(requirement, dict):
        raise invalid("requirement must be an object")
    _known_keys(requirement, allowed, "requirement.")
    number = requirement.get("personalNumber")
    if number is not None and not (isinstance(number, str) and PERSONAL_NUMBER.fullmatch(number)):
        raise invalid("requirement.personalNumber must be 12 digits")
    for flag in ("pinCode", "mrtd"):
        if not isinstance(requirement.get(flag, False), bool):
            raise invalid(f"requirement.{flag} must be a boolean")
    if requirement.get("cardReader", "class1") not in CARD_READERS:
        raise invalid("requirement.cardReader must be class1 or class2")
    policies = requirement.get("certificatePolicies", [])
    if not isinstance(policies, list) or not all(
        isinstance(policy, str) and POLICY.fullmatch(policy) for policy in policies
    ):
        raise invalid("requirement.certificatePolicies must be a list of OIDs")
    return requirement


def _known_keys(body: dict[str, Any], allowed: frozenset[str], prefix: str) -> None:
    unknown = sorted(str(key) for key in set(body) - allowed)
    if unknown:
        raise invalid(f"unknown parameters: {', '.join(prefix + key for key in unknown)}")


def _texts(body: dict[str, Any], required: bool, visible_limit: int) -> str | None:
    if body.get("userVisibleDataFormat", "simpleMarkdownV1") != "simpleMarkdownV1":
        raise invalid("userVisibleDataFormat must be simpleMarkdownV1")
    if "userVisibleData" not in body and not required:
        return None
    return _decoded(body.get("userVisibleData"), "userVisibleData", visible_limit)


def _non_visible(body: dict[str, Any], limit: int) -> str | None:
    """The Base64 as sent: what is not shown may be any bytes (a digest, a document)."""
    if "userNonVisibleData" not in body:
        return None
    value = body["userNonVisibleData"]
    _base64_bytes(value, "userNonVisibleData", limit)
    return str(value)


def _decoded(value: Any, key: str, limit: int) -> str:
    """Base64 of UTF-8 text, 1 to `limit` characters after encoding."""
    try:
        return _base64_bytes(value, key, limit).decode("utf-8")
    except UnicodeDecodeError:
        raise invalid(f"{key} is not base64 of UTF-8 text") from None


def _base64_bytes(value: Any, key: str, limit: int) -> bytes:
    """Base64 (standard alphabet, padded), 1 to `limit` characters."""
    if not _text_within(value, 1, limit):
        raise invalid(f"{key} must be base64, 1-{limit} characters")
    try:
        return base64.b64decode(value, validate=True)
    except binascii.Error:
        raise invalid(f"{key} is not base64") from None


def _device(data: Any, key: str, limits: dict[str, tuple[int, int]]) -> None:
    """§2.1 `web` / `app`: an object of known string fields within their lengths."""
    if data is None:
        return
    if not isinstance(data, dict):
        raise invalid(f"{key} must be an object")
    _known_keys(data, frozenset(limits), f"{key}.")
    if not data:
        raise invalid(f"{key} must have at least one member")
    for field, (low, high) in limits.items():
        if field in data and not _text_within(data[field], low, high):
            raise invalid(f"{key}.{field} must be {low}-{high} characters")


def _text_within(value: Any, low: int, high: int) -> bool:
    return isinstance(value, str) and low <= len(value) <= high
