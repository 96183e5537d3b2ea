"""The JWS algorithms Portvakt accepts wherever it verifies a signed JWT: upstream ID tokens,
e-services' client assertions (and what discovery advertises for them).

Asymmetric only: never `none`, and never HMAC, whose key would be a secret the signer shares
with us (a client secret or an upstream's), turning a secret into a signing key. One list, so
the gateway and the providers cannot drift apart; the gateway imports it from here because
`providers` never imports `gateway`."""

from __future__ import annotations

ACCEPTED_JWS_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384")
