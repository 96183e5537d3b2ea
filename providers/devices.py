"""What a provider's page may infer from the citizen's browser: whether it runs on a phone or
tablet, where an e-ID app on the same device is the likely choice (BankID's autostart, the
EU wallet's same-device link) and the QR code for another device comes second."""

from __future__ import annotations

MOBILE_MARKERS = ("iPhone", "iPad", "Android", "Mobile")


def is_mobile(user_agent: str) -> bool:
    return any(marker in user_agent for marker in MOBILE_MARKERS)
