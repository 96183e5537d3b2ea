"""What a JWT a client signs for us must meet, shared by request objects
(gateway/oidc/request_object.py) and the signRequest JWT (gateway/oidc/sign_request.py): the
algorithms we accept, how long it may live, how far clocks may differ, and its `aud`."""

from __future__ import annotations

from typing import Any

SIGNING_ALGORITHMS = ("RS256", "PS256", "ES256")
# Like client assertions (client_auth.py): at most an hour, clocks a minute apart either way.
MAX_LIFETIME = 3600
CLOCK_SKEW = 60
# The JWT's own claims (RFC 7519 §4.1): they say who made it, they are not parameters.
JWT_CLAIMS = frozenset({"iss", "aud", "exp", "nbf", "iat", "jti", "sub"})


def names_audience(aud: Any, audiences: tuple[str, ...]) -> bool:
    """A JWT's `aud` (one string or a list, RFC 7519 §4.1.3) names one of `audiences`."""
    named = aud if isinstance(aud, list) else [aud]
    return any(isinstance(a, str) and a in audiences for a in named)


def is_time(value: Any) -> bool:
    """A NumericDate: a finite number, not a boolean."""
    return isinstance(value, int | float) and not isinstance(value, bool) and value == value
