"""What the OpenID Connect Profile for Sweden Connect (SC.OIDC 1.0, 2024-12-04) changes for a
client registered with `profile: sweden-connect`; other clients are left exactly as they were.

- A missing `prompt` is `prompt=login` (SC.OIDC 1.0 §2.2.1 MUST; the 1.1 draft of 2026-10-07
  only RECOMMENDS it, we follow the published 1.0).
- Single sign-on only within 60 minutes of the authentication (Regler §2.2), only for the
  e-service the session's login was for, with the same upstream and LoA, and for the same
  identity claims; `prompt=none` is answered `login_required` or `interaction_required`
  (SC.OIDC §2.2.1).
- A proxy never passes on the eIDAS connector's `eidas-*`/`eidas-nf-*` LoA URIs; it says
  `uncertified-eidas-*` instead (Registry §3.1.1.2, Regler §1.2.3), and a request for those is
  a request for the eIDAS forms upstream.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from authlib.oauth2.rfc6749.errors import OAuth2Error
from authlib.oidc.core.errors import InteractionRequiredError, LoginRequiredError

from gateway.oidc.authorize import AuthorizationRequest
from gateway.oidc.session import SsoSession, requested_identity_claims
from gateway.settings import SWEDEN_CONNECT, ClientSettings

SSO_LIMIT_SECONDS = 60 * 60  # Regler §2.2: counted from the original authentication

ELN_LOA = "http://id.elegnamnden.se/loa/1.0/"
SC_LOA = "http://id.swedenconnect.se/loa/1.0/"
LEVELS = ("low", "sub", "high")
# Registry §3.1.1.2: what the official eIDAS connector asserts -> what a proxy passes on.
UNCERTIFIED_EIDAS = {
    f"{ELN_LOA}{form}-{level}": f"{SC_LOA}uncertified-eidas-{level}"
    for level in LEVELS
    for form in ("eidas", "eidas-nf")
}
EIDAS_FORMS = {
    uncertified: tuple(eidas for eidas, to in UNCERTIFIED_EIDAS.items() if to == uncertified)
    for uncertified in UNCERTIFIED_EIDAS.values()
}


def applies(client: ClientSettings) -> bool:
    return client.profile == SWEDEN_CONNECT


def adapted(auth: AuthorizationRequest) -> AuthorizationRequest:
    """The request as the login handles it: a missing prompt is `login`, and the requested
    `uncertified-eidas-*` also accept the eIDAS forms an upstream delivers."""
    if not applies(auth.client):
        return auth
    asked = auth.parameters
    return replace(
        auth,
        parameters=replace(
            asked,
            prompt=asked.prompt or ("login",),
            acr_values=upstream_acr_values(asked.acr_values),
        ),
    )


def upstream_acr_values(acr_values: Iterable[str]) -> tuple[str, ...]:
    """Each requested value and the eIDAS URIs it stands for, in order, once each."""
    expanded = [form for value in acr_values for form in (value, *EIDAS_FORMS.get(value, ()))]
    return tuple(dict.fromkeys(expanded))


def delivered_acr(client: ClientSettings, loa: str) -> str:
    """The `acr` the client is told: for a sweden-connect client never an `eidas-*` URI."""
    return UNCERTIFIED_EIDAS.get(loa, loa) if applies(client) else loa


def offered_acr_values(clients: Iterable[ClientSettings], loas: Iterable[str]) -> set[str]:
    """The uncertified forms discovery adds when some client has the profile."""
    if not any(applies(client) for client in clients):
        return set()
    return {UNCERTIFIED_EIDAS[loa] for loa in loas if loa in UNCERTIFIED_EIDAS}


def sso_refusal(session: SsoSession, auth: AuthorizationRequest, now: int) -> OAuth2Error | None:
    """Why this session may not answer a sweden-connect client silently (SC.OIDC §2.2.1);
    None when it may. The general rules (`LoginFlow`) have been met already."""
    if not applies(auth.client):
        return None
    identity = session.person
    if now - identity.auth_time > SSO_LIMIT_SECONDS:
        return LoginRequiredError("the authentication is more than 60 minutes old")
    grant = session.grant(auth.client.client_id)
    if grant is None:
        return LoginRequiredError("the session was not created for this e-service")
    if (grant.provider, grant.acr) != (identity.provider, identity.loa):
        return LoginRequiredError("the session's login used another e-ID or level of assurance")
    if grant.claims != requested_identity_claims(auth.parameters):
        return InteractionRequiredError(
            "the citizen consented to another set of identity claims than now requested"
        )
    return None
