"""The gateway the properties drive: every provider type at once (sandbox, BankID and the EU
wallet against their bundled simulators, SAML against two test IdPs, an upstream OpenID
Provider), every kind of client, a real Redis, served by uvicorn on a loopback port. `Site`
also walks real logins part of the way, so that the properties can mix live login ids, CSRF
tokens, RelayStates, codes and cookies into the fuzz and get past the first check of each
endpoint."""

from __future__ import annotations

import base64
import json
import re
import secrets
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from html import unescape
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx2
import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwcrypto import jwe, jwk

from gateway.demo.defaults import simulated_bankid, simulated_wallet
from gateway.login.flow import AUTHN_PROVIDER_PARAMETER
from gateway.oidc.claims import IDENTITY_SCOPES, SIGN_SCOPES
from tests.doubles.oidc_op import UpstreamOP
from tests.doubles.saml_idp import LOA2, LOA3, FakeIdP, SpView, aggregate, make_key_pair
from tests.doubles.sd_jwt_vc import Pid, issue_pid
from tests.doubles.wallet import link_parameters
from tests.doubles.wallet_pki import PidProvider
from tests.harness import (
    INFO_SCOPE,
    NUMBER_SCOPE,
    REDIRECT_URI,
    TEST_PERSON,
    LiveGateway,
    ServedApp,
    base_settings,
    free_port,
    pkce_pair,
)

LOGOUT_URI = "http://127.0.0.1:9000/logged-out"
PROVIDERS = ("sandbox", "bankid", "sc", "freja", "wallet")
WALLET_FLOWS = ("same", "cross")  # the wallet page's link (same device) and QR (cross device)
CLIENT_IDS = ("basic", "post", "spa", "jwt", "demo-rp")
SECRETS = {"basic": "basic-secret", "post": "post-secret", "demo-rp": "demo-rp-secret"}


def _b64url_int(value: int) -> str:
    raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _public_jwk() -> dict[str, Any]:
    numbers = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
    public = numbers.public_numbers()
    return {
        "kty": "RSA",
        "kid": "jwt-1",
        "use": "sig",
        "n": _b64url_int(public.n),
        "e": _b64url_int(public.e),
    }


def _clients(issuer: str) -> list[dict[str, Any]]:
    return [
        {
            "client_id": "basic",
            "client_secret": "basic-secret",
            "redirect_uris": [REDIRECT_URI],
            "token_endpoint_auth_method": "client_secret_basic",
            "post_logout_redirect_uris": [LOGOUT_URI],
            "scopes": [*IDENTITY_SCOPES, *SIGN_SCOPES],  # the sign checks are reached too
        },
        {
            "client_id": "post",
            "client_secret": "post-secret",
            "redirect_uris": [REDIRECT_URI],
            "token_endpoint_auth_method": "client_secret_post",
            "userinfo_signed_response_alg": "RS256",
        },
        {"client_id": "spa", "redirect_uris": [REDIRECT_URI], "providers": ["sandbox", "bankid"]},
        {
            "client_id": "jwt",
            "jwks": {"keys": [_public_jwk()]},
            "redirect_uris": [REDIRECT_URI],
            "token_endpoint_auth_method": "private_key_jwt",
        },
        {
            "client_id": "demo-rp",
            "client_secret": "demo-rp-secret",
            "redirect_uris": [f"{issuer}/demo/callback"],
            "post_logout_redirect_uris": [f"{issuer}/demo/"],
        },
    ]


@dataclass
class Live:
    """A browser part of the way through a real login: its cookies and what its pages carried."""

    cookies: dict[str, str] = field(default_factory=dict)
    login_id: str = ""
    csrf: str = ""
    relay_state: str = ""
    state: str = ""
    extra: dict[str, str] = field(default_factory=dict)


class Site:
    """The served gateway and its upstreams (a plain class: Hypothesis prints it in one line)."""

    def __init__(
        self,
        gateway: LiveGateway,
        idps: list[FakeIdP],
        upstream: UpstreamOP,
        http: httpx2.Client,
        pid: Pid,
    ) -> None:
        self.gateway = gateway
        self.idps = idps
        self.upstream = upstream
        self.http = http
        self.pid = pid  # a PID of a PID provider the wallet provider trusts besides the demo's
        self.access_token = ""
        self.id_token = ""
        self.session_cookies: dict[str, str] = {}

    @property
    def url(self) -> str:
        return self.gateway.url

    def __repr__(self) -> str:
        return f"Site({self.url})"

    def send(self, method: str, path: str, **options: Any) -> httpx2.Response:
        """One request from a browser without history: cookies only as the probe sends them."""
        self.http.cookies.clear()
        return self.http.request(method, path, **options)

    # -- real logins, part of the way ---------------------------------------------------------

    def authorize_params(self, client_id: str = "basic", **extra: str) -> dict[str, str]:
        params = {
            "client_id": client_id,
            "redirect_uri": REDIRECT_URI,
            "response_type": "code",
            "scope": f"openid {NUMBER_SCOPE} {INFO_SCOPE}",
            "state": secrets.token_hex(4),
            "nonce": secrets.token_hex(4),
        }
        if client_id == "spa":
            params.update(
                zip(
                    ("code_challenge_method", "code_challenge"),
                    ("S256", pkce_pair()[1]),
                    strict=True,
                )
            )
        params.update(extra)
        return params

    def begin(self, provider: str | None = None, client_id: str = "basic") -> tuple[Live, Any]:
        """/authorize in a new browser; with `provider` straight to that provider's start."""
        extra = {AUTHN_PROVIDER_PARAMETER: provider} if provider else {}
        with httpx2.Client(base_url=self.url, timeout=10) as browser:
            response = browser.get("/authorize", params=self.authorize_params(client_id, **extra))
            live = Live(cookies=dict(browser.cookies))
        return live, response

    def chooser(self) -> Live:
        live, page = self.begin()
        live.login_id = _match(r'action="[^"]*/login/([^"/]+)"', page.text)
        live.csrf = _hidden(page.text, "csrf")
        return live

    def at_sandbox(self) -> Live:
        live, page = self.begin("sandbox")
        live.login_id, live.csrf = _hidden(page.text, "login"), _hidden(page.text, "csrf")
        return live

    def at_bankid(self) -> Live:
        live, started = self.begin("bankid")
        live.login_id = _query(started.headers["location"])["login"]
        with httpx2.Client(base_url=self.url, cookies=live.cookies, timeout=10) as browser:
            page = browser.get(started.headers["location"])
            status = browser.get(f"/providers/bankid/status?login={live.login_id}").json()
        live.csrf = _hidden(page.text, "csrf")
        live.extra["qr"] = _query(status["phone"])["qr"]
        live.extra["qr_start_token"] = live.extra["qr"].split(".")[1]
        return live

    def at_bankid_app(self) -> Live:
        """An order that the simulated app has picked up (the QR code scanned)."""
        live = self.at_bankid()
        phone = self.send("GET", "/bankid-simulator/phone", params={"qr": live.extra["qr"]})
        live.extra["order_ref"] = _hidden(phone.text, "orderRef")
        return live

    def at_saml_idp_page(self) -> Live:
        live, page = self.begin("sc")
        live.login_id, live.csrf = _hidden(page.text, "login"), _hidden(page.text, "csrf")
        return live

    def at_saml_acs(self) -> Live:
        """Past the IdP choice: an AuthnRequest is outstanding under its RelayState."""
        live = self.at_saml_idp_page()
        form = {"login": live.login_id, "csrf": live.csrf, "idp": self.idps[0].entity_id}
        with httpx2.Client(base_url=self.url, cookies=live.cookies, timeout=10) as browser:
            sent = browser.post("/providers/sc/idp", data=form)
        live.relay_state = _query(sent.headers["location"])["RelayState"]
        answered = httpx2.get(sent.headers["location"], timeout=10)  # the IdP's auto-post form
        live.extra["SAMLResponse"] = _hidden(answered.text, "SAMLResponse")
        return live

    def at_upstream_oidc(self) -> Live:
        """The upstream OP has answered: its callback (state, code, iss) not yet delivered."""
        live, sent = self.begin("freja")
        live.state = _query(sent.headers["location"])["state"]
        answered = httpx2.get(sent.headers["location"], timeout=10)
        live.extra.update(_query(answered.headers["location"]))
        return live

    def at_wallet(self) -> Live:
        """The wallet page: both requests fetched by a wallet (POST with a `wallet_nonce`), with
        their ids, links, nonces, states and encryption keys, and a presentation of `pid`
        key-bound to each (`{flow}_...` in `extra`)."""
        live, started = self.begin("wallet")
        live.login_id = _query(started.headers["location"])["login"]
        with httpx2.Client(base_url=self.url, cookies=live.cookies, timeout=10) as browser:
            page = browser.get(started.headers["location"]).text
        live.csrf = _hidden(page, "csrf")
        links = {
            "same": _match(r'id="wallet-link"[^>]* href="([^"]*)"', page),
            "cross": _match(r'id="wallet-qr"[^>]* data-request="([^"]*)"', page),
        }
        for flow, link in links.items():
            live.extra.update(self._wallet_request(flow, link))
        return live

    def _wallet_request(self, flow: str, link: str) -> dict[str, str]:
        request_uri = link_parameters(link)["request_uri"]
        fetched = httpx2.post(request_uri, data={"wallet_nonce": "wn"}, timeout=10)
        claims = jwt.decode(fetched.text, options={"verify_signature": False})
        (key,) = claims["client_metadata"]["jwks"]["keys"]
        made = {
            "link": link,
            "id": request_uri.rsplit("/", 1)[1],
            "nonce": claims["nonce"],
            "state": claims["state"],
            "key": json.dumps(key),
            "client_id": claims["client_id"],
            "presentation": self.pid.present(claims["nonce"], claims["client_id"]),
        }
        return {f"{flow}_{name}": value for name, value in made.items()}

    def at_wallet_simulator(self) -> Live:
        """The wallet page's same-device request opened in the wallet simulator's page: its
        consent forms' `pending` id and its browser cookie (besides the gateway's)."""
        live = self.at_wallet()
        with httpx2.Client(base_url=self.url, timeout=10) as phone:
            params = {"request": live.extra["same_link"]}
            consent = phone.get("/wallet-simulator/", params=params)
            live.extra["pending"] = _hidden(consent.text, "pending")
            live.cookies.update(phone.cookies)
        return live

    def at_wallet_answered(self) -> Live:
        """The wallet has shared a valid PID through the same-device request: its `redirect_uri`
        (the done URL with the `response_code`) not yet followed by the browser."""
        live = self.at_wallet()
        payload = {
            "vp_token": {"pid": [live.extra["same_presentation"]]},
            "state": live.extra["same_state"],
        }
        header = {"alg": "ECDH-ES", "enc": "A256GCM", "kid": _kid(live.extra["same_key"])}
        token = wallet_jwe(live.extra["same_key"], json.dumps(payload).encode(), header)
        answered = httpx2.post(
            f"{self.url}/providers/wallet/response/{live.extra['same_id']}",
            data={"response": token},
            timeout=10,
        ).json()
        live.extra["response_code"] = _query(answered["redirect_uri"])["response_code"]
        return live

    def code(self, client_id: str = "basic") -> tuple[str, str | None]:
        """A fresh authorization code from a whole sandbox login (and its PKCE verifier)."""
        verifier, challenge = pkce_pair()
        params = self.authorize_params(
            client_id,
            **{
                AUTHN_PROVIDER_PARAMETER: "sandbox",
                "code_challenge": challenge,
                "code_challenge_method": "S256",
            },
        )
        with httpx2.Client(base_url=self.url, timeout=10) as browser:
            page = browser.get("/authorize", params=params)
            form = {
                "login": _hidden(page.text, "login"),
                "csrf": _hidden(page.text, "csrf"),
                "pnr": TEST_PERSON,
            }
            done = browser.post("/providers/sandbox/login", data=form)
            back = browser.get(done.headers["location"])
            self.session_cookies = dict(browser.cookies)
        return _query(back.headers["location"])["code"], verifier

    def sign_in(self) -> None:
        """A whole login and its tokens, kept for /userinfo, /logout and SSO probes."""
        code, verifier = self.code()
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT_URI,
            "code_verifier": verifier or "",
        }
        tokens = httpx2.post(f"{self.url}/token", data=form, auth=("basic", "basic-secret")).json()
        self.access_token, self.id_token = tokens["access_token"], tokens["id_token"]


def wallet_jwe(public_jwk: str, plaintext: bytes, header: dict[str, Any]) -> str:
    """A compact JWE to the request's key (JSON text), as a wallet makes it (jwcrypto)."""
    token = jwe.JWE(plaintext, protected=json.dumps(header))
    token.add_recipient(jwk.JWK.from_json(public_jwk))
    return str(token.serialize(compact=True))


def _kid(public_jwk: str) -> str:
    return str(json.loads(public_jwk).get("kid", ""))


def _match(pattern: str, text: str) -> str:
    found = re.search(pattern, text)
    assert found is not None, f"{pattern} not in {text[:500]}"
    return unescape(found.group(1))


def _hidden(html: str, name: str) -> str:
    return _match(rf'name="{re.escape(name)}" value="([^"]*)"', html)


def _query(location: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def _wallet(issuer: str, pid_provider: PidProvider, directory: Path) -> dict[str, Any]:
    """The demo's wallet provider (its simulator's PID provider trusted), trusting a test PID
    provider too: the properties can then make presentations that pass the issuer's signature
    and reach the checks behind it (disclosures, key binding, claims)."""
    config = simulated_wallet(issuer)
    trusted = config["trusted_issuers"]
    assert isinstance(trusted, list)
    extra = pid_provider.write_trust_list(directory / "property-pid-provider.pem")
    return {**config, "trusted_issuers": [*trusted, str(extra)]}


@contextmanager
def whole_site(directory: Path, store_url: str) -> Iterator[Site]:
    """The site and its upstreams, served until the block ends."""
    with ExitStack() as stack:
        idps = [
            FakeIdP(
                f"https://idp-{n}.test.example/idp",
                f"http://127.0.0.1:{free_port()}",
                make_key_pair(directory, f"idp-{n}"),
                assurance=(LOA3, LOA2),
            )
            for n in ("a", "b")
        ]
        federation = make_key_pair(directory, "federation")
        (directory / "aggregate.xml").write_bytes(
            aggregate([idp.entity_descriptor() for idp in idps], federation)
        )
        sign, encrypt = make_key_pair(directory, "sp-sign"), make_key_pair(directory, "sp-enc")
        pid_provider = PidProvider.make("SE")
        upstream_port = free_port()
        upstream = UpstreamOP(f"http://127.0.0.1:{upstream_port}")
        stack.enter_context(ServedApp(upstream.app, upstream_port))
        issuer = f"http://127.0.0.1:{free_port()}"
        providers = {
            "sandbox": {"type": "sandbox"},
            "bankid": simulated_bankid(issuer),
            "wallet": _wallet(issuer, pid_provider, directory),
            "sc": {
                "type": "saml",
                "entity_id": "https://portvakt.test.example/sp",
                "signing": {"key": str(sign.key), "cert": str(sign.cert)},
                "encryption": {"key": str(encrypt.key), "cert": str(encrypt.cert)},
                "metadata": {
                    "file": str(directory / "aggregate.xml"),
                    "cert": str(federation.cert),
                },
                "loa": [LOA3, LOA2],
            },
            "freja": {
                "type": "oidc",
                "display": {"sv": "Freja", "en": "Freja"},
                "issuer": upstream.base_url,
                "client_id": upstream.client_id,
                "client_secret": upstream.client_secret,
                "loa": [LOA3, LOA2],
                "timeout_seconds": 2,
            },
        }
        settings = base_settings(
            issuer, store_url, demo=True, providers=providers, clients=_clients(issuer)
        )
        gateway = stack.enter_context(LiveGateway(settings))
        metadata = httpx2.get(f"{gateway.url}/providers/sc/metadata").content
        for idp in idps:
            idp.sp = SpView.from_metadata(metadata)
            stack.enter_context(ServedApp(idp.app, int(idp.base_url.rsplit(":", 1)[1])))
        http = stack.enter_context(
            httpx2.Client(base_url=gateway.url, follow_redirects=False, timeout=30)
        )
        site = Site(gateway, idps, upstream, http, issue_pid(pid_provider))
        site.sign_in()
        yield site
