"""BankID's risk rating of a completed order (`completionData.risk`, bankid-2026-and-ciba.md
§1.3), and the claims a BankID login may release beside the person's own.

BankID rates every order placed with `returnRisk: true` low, moderate or high, from the order's
data (`endUserIp`, `web`): it says nothing of which checks fired. The rating is absent when it
could not be calculated; that is `unknown`, never `low`. The provider's `risk` policy
(config.py `RiskPolicy`) decides which ratings log in."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Any

from providers.bankid.config import RISK_LEVELS

# Claims §2.3 (oidc-sweden.md): the device that holds the e-ID; BankID's `device.ipAddress`.
DEVICE_IP_CLAIM = "https://id.oidc.se/claim/deviceIp"
# Ours: no profile defines a risk claim (oidc-sweden-extensions.md §3.8; docs/integrating.md).
RISK_CLAIM = "https://portvakt.se/claim/bankidRisk"


def risk_level(completion: Mapping[str, Any]) -> str:
    """low | moderate | high as BankID rated it; `unknown` for no rating or one we do not know."""
    risk = completion.get("risk")
    return risk if risk in RISK_LEVELS else "unknown"


def released_claims(device_ip: str | None, risk: str) -> dict[str, str]:
    """`Identity.extra`: what the e-service may ask for with `claims` (gateway/oidc/claims.py)."""
    claims = {RISK_CLAIM: risk}
    if device_ip:
        claims[DEVICE_IP_CLAIM] = device_ip
    return claims


def ip_address_or_none(value: Any) -> str | None:
    """BankID's `device.ipAddress`, if it is an IPv4 or IPv6 address: what the claim promises."""
    try:
        return str(ipaddress.ip_address(value)) if isinstance(value, str) else None
    except ValueError:
        return None
