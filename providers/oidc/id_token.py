"""The upstream's ID token (OIDC Core §3.1.3.7): its signature by the upstream's keys with the
configured algorithms, then its claims by joserfc's claims registry with the ID token's own
rules added (nonce, azp, auth_time)."""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Mapping
from typing import Any, TypeGuard

from joserfc.errors import InvalidClaimError
from joserfc.jwt import ClaimsOption, JWTClaimsRegistry

from providers.oidc.config import OidcConfig


class IdTokenClaims(JWTClaimsRegistry):
    """joserfc's registry checks iss, sub, aud, exp, iat and nbf with their types; a claim it
    does not know is compared by value only, and a list holding the value passes. These rules
    add the types for the ID token's own claims, and prompt=login's freshness of auth_time."""

    def __init__(
        self, *, authenticated_since: float | None, leeway: int, **options: ClaimsOption
    ) -> None:
        super().__init__(None, leeway, **options)
        self._authenticated_since = authenticated_since

    def validate_nonce(self, value: object) -> None:
        _require_string("nonce", value)
        self.check_value("nonce", value)

    def validate_azp(self, value: object) -> None:
        _require_string("azp", value)
        self.check_value("azp", value)

    def validate_auth_time(self, value: object) -> None:
        if not _is_numeric_date(value):
            raise InvalidClaimError("auth_time", "Claim 'auth_time' must be a NumericDate value")
        since = self._authenticated_since
        if since is not None and value < since:
            raise InvalidClaimError("auth_time", "prompt=login but an older authentication")


def id_token_rules(
    claims: Mapping[str, Any], config: OidcConfig, nonce: str, authenticated_since: float | None
) -> IdTokenClaims:
    """OIDC Core §3.1.3.7: ours (iss, aud), fresh (exp, iat, nbf), of this login (nonce), about
    someone (sub); azp names us when present and must be present for several audiences.
    `authenticated_since`: after prompt=login, auth_time may not be older."""
    audience = claims.get("aud")
    several_audiences = isinstance(audience, list) and len(audience) > 1
    return IdTokenClaims(
        authenticated_since=authenticated_since,
        leeway=config.clock_skew_seconds,
        iss={"essential": True, "value": config.issuer},
        aud={"essential": True, "value": config.client_id},
        azp={"essential": several_audiences, "value": config.client_id},
        exp={"essential": True},
        iat={"essential": True},
        nonce={"essential": True, "value": nonce},
        sub={"essential": True},
    )


def _require_string(claim: str, value: object) -> None:
    if not isinstance(value, str):
        raise InvalidClaimError(claim, f"Claim '{claim}' must be a string")


def _is_numeric_date(value: object) -> TypeGuard[int | float]:
    """RFC 7519 §2 NumericDate: a JSON number; not a boolean, NaN or an infinity."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return isinstance(value, int) or math.isfinite(value)


def unverified_header(token: str) -> dict[str, Any]:
    """The JOSE header, read before the signature is checked (to pick the key by its kid)."""
    try:
        segment = token.split(".")[0]
        header = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    except (ValueError, IndexError):
        return {}
    return header if isinstance(header, dict) else {}
