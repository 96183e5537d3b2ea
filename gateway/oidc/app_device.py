"""`https://portvakt.se/param/bankidAppDevice` (ours): the device a registered native app runs
on, for BankID's `app` device data (bankid-2026-and-ciba.md §1.5).

The gateway cannot see these values itself, so they are taken only from the client's own
signature: a member of a signed request object, from a client registered with `bankid_app`.
The app's identifier is never taken from the request; it is the one registered for the client.
"""

from __future__ import annotations

from collections.abc import Collection

from authlib.oauth2.rfc6749.errors import InvalidRequestError
from starlette.datastructures import ImmutableMultiDict

from gateway.settings import ClientSettings
from providers.parsing import MalformedInput, bounded_json

APP_DEVICE_PARAMETER = "https://portvakt.se/param/bankidAppDevice"
# deviceIdentifier as `web`'s (§1.4); BankID documents no limits for the others.
DEVICE_LIMITS = {"deviceOS": 256, "deviceModelName": 256, "deviceIdentifier": 64}
MAX_APP_DEVICE_LENGTH = 2048


def checked_app_device(
    params: ImmutableMultiDict[str, str], client: ClientSettings, signed_members: Collection[str]
) -> dict[str, str] | None:
    """The app's device values, validated; None when the request names none."""
    raw = params.get(APP_DEVICE_PARAMETER)
    if raw is None:
        return None
    if client.bankid_app is None:
        raise _invalid("this client has no registered app (bankid_app)")
    if APP_DEVICE_PARAMETER not in signed_members:
        raise _invalid("must be a member of a signed request object")
    return _device_values(raw)


def _device_values(raw: str) -> dict[str, str]:
    if len(raw) > MAX_APP_DEVICE_LENGTH:
        raise _invalid(f"longer than {MAX_APP_DEVICE_LENGTH} characters")
    try:
        device = bounded_json(raw)
    except MalformedInput as problem:
        raise _invalid(str(problem)) from None
    if not isinstance(device, dict):
        raise _invalid("must be a JSON object")
    unknown = sorted(set(device) - set(DEVICE_LIMITS))
    if unknown:
        raise _invalid(f"unknown member {unknown[0][:64]!r}")
    for name, limit in DEVICE_LIMITS.items():
        value = device.get(name)
        if not isinstance(value, str) or not 0 < len(value) <= limit or not value.isprintable():
            raise _invalid(f"{name} must be printable text of 1 to {limit} characters")
    return {name: str(device[name]) for name in DEVICE_LIMITS}


def _invalid(problem: str) -> InvalidRequestError:
    return InvalidRequestError(f"{APP_DEVICE_PARAMETER}: {problem}")
