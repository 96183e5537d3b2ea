"""Test identities for local development and tests: no real e-ID, marked TEST on every page.

The citizen types (or picks) one of Skatteverket's published test personal identity numbers; the
number must be formally valid (date and Luhn digit). The settings refuse this provider when
`environment: production`.

It signs too (Signature Extension, `LoginContext.sign`): after the test person is picked (and
found to be the one the e-service named), a page shows the sign message; on Sign the identity
carries a TEST signature: the Base64 of a JSON object in the format TEST_SIGNATURE_FORMAT
(docs/integrating.md), which no one can verify and which has no legal value.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal
from urllib.parse import urlencode

from pydantic import Field
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from providers.base import (
    Identity,
    LoginContext,
    LoginStateLost,
    NotFinishedYet,
    ProviderConfig,
    ProviderServices,
    SelectableUpstream,
    SignRequest,
    Signs,
    UnmetAssurance,
    UserCancelled,
    UserMessage,
    WrongPerson,
    choose_loa,
)
from providers.forms import login_form
from providers.identity_numbers import InvalidIdentityNumber, parse_identity_number
from providers.records import login_key

# Skatteverket's test numbers (dataset "Testpersonnummer"); see shared/reference/test-identities.md.
TEST_IDENTITIES: tuple[tuple[str, str, str], ...] = (
    ("196408233234", "Ingrid", "Testsson"),
    ("199908072391", "Erik", "Provsson"),
    ("200002292399", "Maja", "Skottdagsson"),
    ("201801012392", "Nils", "Exempelsson"),
    ("191401682396", "Astrid", "Samordnadsson"),
)
TRANSACTION_TTL_SECONDS = 900
# The `authnProvider` claim value of a sandbox login (RPar §2.2): ours, registered nowhere.
SANDBOX_AUTHN_PROVIDER = "urn:portvakt:sandbox"
TEST_SIGNATURE_FORMAT = "portvakt-sandbox-test-signature/1"
TEST_SIGNATURE_WARNING = (
    "TEST SIGNATURE made by the Portvakt sandbox without any e-ID: it proves nothing and has "
    "no legal value"
)
SHOWABLE_MIME_TYPES = frozenset({"text/plain", "text/markdown"})


class SandboxConfig(ProviderConfig):
    type: Literal["sandbox"]
    display: dict[str, str] = Field(
        default_factory=lambda: {"sv": "Testlegitimation", "en": "Test e-ID"}
    )
    hint: dict[str, str] = Field(
        default_factory=lambda: {
            "sv": "Sandlåda med testpersoner – inte en riktig e-legitimation",
            "en": "Sandbox with test persons – not a real e-ID",
        }
    )

    def refused_in_production(self, name: str) -> str | None:
        return (
            f"provider {name!r} is the sandbox (test identities); it refuses to load "
            "with environment: production. Remove it or set environment: test"
        )


@dataclass(frozen=True)
class RefusedNumber:
    """What the tester typed (shown again, shortened) and why it is no identity number."""

    typed: str
    reason: str


class SandboxProvider(SelectableUpstream, Signs):
    finish_path = "/done"
    finish_methods: Sequence[str] = ("GET",)

    def __init__(self, config: SandboxConfig, services: ProviderServices) -> None:
        self.name = services.name
        self.display: Mapping[str, str] = config.display
        self.tagline: Mapping[str, str] = config.hint
        self.loa = frozenset(config.loa)
        self._default_loa = config.loa[0]
        self._services = services

    def answers_to(self, authn_provider: str) -> bool:
        return authn_provider == SANDBOX_AUTHN_PROVIDER

    def can_sign(self, sign: SignRequest) -> bool:
        """Signs and approves; it shows Markdown as the text it is."""
        return sign.message.mime_type in SHOWABLE_MIME_TYPES

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/login", self._login_page, methods=["GET", "POST"]),
            Route("/sign", self._sign_page, methods=["GET", "POST"]),
        ]

    async def start(self, request: Request, login: LoginContext) -> Response:
        loa = choose_loa(self.loa, login.requested_loa, self._default_loa)
        if loa is None:
            raise UnmetAssurance(self.name, login.login_id, "no requested LoA is configured")
        transaction = {
            "loa": loa,
            "hint": login.identity_hint,
            "locale": login.locale,
            "client_id": login.client_id,
            "user_message": login.user_message.to_dict() if login.user_message else None,
            "sign": login.sign.to_dict() if login.sign else None,
        }
        await self._services.store.put(
            login_key("txn", login.login_id),
            json.dumps(transaction).encode(),
            TRANSACTION_TTL_SECONDS,
        )
        return self._page(request, login.login_id, transaction)

    async def finish(self, request: Request) -> tuple[str, Identity]:
        login_id = request.query_params.get("login", "")
        raw = await self._services.store.get(login_key("txn", login_id)) if login_id else None
        if raw is None:
            raise LoginStateLost(self.name, None, "unknown or expired sandbox transaction")
        transaction = json.loads(raw)
        if "chosen" not in transaction:  # a page was skipped: back to it, the login goes on
            page = self._sign_url if "signer" in transaction else self._login_url
            raise NotFinishedYet(self.name, page(login_id))
        identity = self._identity(transaction["chosen"], transaction["loa"])
        if transaction.get("sign"):
            identity = replace(
                identity,
                auth_time=int(transaction["signed_at"]),
                user_signature=transaction.get("user_signature"),
            )
        return login_id, identity

    async def _login_page(self, request: Request) -> Response:
        if request.method == "GET":
            login_id = request.query_params.get("login", "")
            transaction = await self._transaction(login_id)
            return self._page(request, login_id, transaction)
        login_id, form = await login_form(
            request, self._services.forms, self.name, 8, "sandbox form"
        )
        transaction = await self._transaction(login_id)
        if "cancel" in form:
            await self._services.store.delete(login_key("txn", login_id))
            raise UserCancelled(self.name, login_id)
        try:
            number = parse_identity_number(str(form.get("pnr", "")))
        except InvalidIdentityNumber as invalid:
            refused = RefusedNumber(str(form.get("pnr", ""))[:20], invalid.reason)
            return self._page(request, login_id, transaction, refused)
        if transaction.get("sign"):
            return await self._to_sign_page(login_id, transaction, number.digits)
        transaction["chosen"] = number.digits
        await self._save(login_id, transaction)
        return self._to_finish(login_id)

    async def _to_sign_page(
        self, login_id: str, transaction: dict[str, Any], digits: str
    ) -> Response:
        """Signature Extension §5.1: the person is checked before the message is shown."""
        if transaction.get("hint") and digits != transaction["hint"]:
            await self._services.store.delete(login_key("txn", login_id))
            raise WrongPerson(self.name, login_id, "the test person picked is not the one named")
        transaction["signer"] = digits
        await self._save(login_id, transaction)
        return RedirectResponse(self._sign_url(login_id), status_code=303)

    async def _sign_page(self, request: Request) -> Response:
        """GET: what the test person is asked to sign; POST: Sign or Cancel."""
        if request.method == "GET":
            login_id = request.query_params.get("login", "")
            return self._signing(request, login_id, await self._signing_transaction(login_id))
        login_id, form = await login_form(
            request, self._services.forms, self.name, 8, "sandbox sign form"
        )
        transaction = await self._signing_transaction(login_id)
        if "sign" not in form:
            await self._services.store.delete(login_key("txn", login_id))
            raise UserCancelled(self.name, login_id)
        sign = SignRequest.from_dict(transaction["sign"])
        now = int(self._services.clock())
        shown = self._shown_message(request, transaction)
        transaction.update(chosen=transaction["signer"], signed_at=now)
        if sign.signs:
            signer, client_id = transaction["signer"], transaction["client_id"]
            transaction["user_signature"] = sandbox_signature(signer, client_id, sign, shown, now)
        await self._save(login_id, transaction)
        return self._to_finish(login_id)

    async def _signing_transaction(self, login_id: str) -> dict[str, Any]:
        transaction = await self._transaction(login_id)
        if "signer" not in transaction:  # no test person yet: the sign page needs one
            raise NotFinishedYet(self.name, self._login_url(login_id))
        return transaction

    def _signing(self, request: Request, login_id: str, transaction: Mapping[str, Any]) -> Response:
        sign = SignRequest.from_dict(transaction["sign"])
        context = {
            "provider": self,
            "login_id": login_id,
            "client_id": transaction.get("client_id"),
            "csrf": self._services.forms.token(request, login_id),
            "action": f"{self._services.base_url}/providers/{self.name}/sign",
            "page_url": self._sign_url(login_id),
            "signs": sign.signs,
            "signer": transaction["signer"],
            "sign_message": self._shown_message(request, transaction).splitlines(),
        }
        return self._services.pages.render(
            request, "sandbox_sign.html", context, 200, transaction.get("locale")
        )

    def _shown_message(self, request: Request, transaction: Mapping[str, Any]) -> str:
        """The sign message in the page's language, as the text it is (never rendered)."""
        locale = self._services.pages.locale(request, transaction.get("locale"))
        return SignRequest.from_dict(transaction["sign"]).message.text_for(locale) or ""

    async def _save(self, login_id: str, transaction: Mapping[str, Any]) -> None:
        await self._services.store.put(
            login_key("txn", login_id), json.dumps(transaction).encode(), TRANSACTION_TTL_SECONDS
        )

    def _to_finish(self, login_id: str) -> Response:
        return RedirectResponse(
            f"{self._services.base_url}/providers/{self.name}{self.finish_path}?login={login_id}",
            status_code=303,
        )

    async def _transaction(self, login_id: str) -> dict[str, Any]:
        raw = await self._services.store.get(login_key("txn", login_id))
        if raw is None:
            raise LoginStateLost(self.name, None, "unknown or expired sandbox transaction")
        transaction: dict[str, Any] = json.loads(raw)
        return transaction

    def _login_url(self, login_id: str) -> str:
        query = urlencode({"login": login_id})
        return f"{self._services.base_url}/providers/{self.name}/login?{query}"

    def _sign_url(self, login_id: str) -> str:
        query = urlencode({"login": login_id})
        return f"{self._services.base_url}/providers/{self.name}/sign?{query}"

    def _page(
        self,
        request: Request,
        login_id: str,
        transaction: Mapping[str, Any],
        refused: RefusedNumber | None = None,
    ) -> Response:
        action = f"{self._services.base_url}/providers/{self.name}/login"
        context = {
            "provider": self,
            "login_id": login_id,
            "client_id": transaction.get("client_id"),
            "csrf": self._services.forms.token(request, login_id),
            "action": action,
            "page_url": self._login_url(login_id),
            "identities": TEST_IDENTITIES,
            "loa": transaction["loa"],
            "value": refused.typed if refused else transaction.get("hint") or "",
            "error": refused.reason if refused else None,
            "user_message": self._user_message_lines(request, transaction),
            "signing": bool(transaction.get("sign")),
            "signs": bool(transaction.get("sign") and transaction["sign"].get("tbs_data")),
        }
        status = 400 if refused else 200
        return self._services.pages.render(
            request, "sandbox_login.html", context, status, transaction.get("locale")
        )

    def _user_message_lines(self, request: Request, transaction: Mapping[str, Any]) -> list[str]:
        """The e-service's message in the page's language, as lines of text: Markdown is shown
        as written, never rendered (the template escapes every line), so no HTML gets in."""
        stored = transaction.get("user_message")
        if not stored:
            return []
        locale = self._services.pages.locale(request, transaction.get("locale"))
        text = UserMessage.from_dict(stored).text_for(locale) or ""
        return text.splitlines()

    def _identity(self, digits: str, loa: str) -> Identity:
        number = parse_identity_number(digits)
        given, family = next(
            ((g, f) for n, g, f in TEST_IDENTITIES if n == digits), ("Test", "Person")
        )
        return Identity(
            provider=self.name,
            subject=digits,
            loa=loa,
            auth_time=int(self._services.clock()),
            personal_identity_number=None if number.is_coordination_number else digits,
            coordination_number=digits if number.is_coordination_number else None,
            given_name=given,
            family_name=family,
            name=f"{given} {family}",
            birthdate=number.birthdate,
            authn_provider=SANDBOX_AUTHN_PROVIDER,
        )


def sandbox_signature(
    signer: str, client_id: str, sign: SignRequest, shown_message: str, signed_at: int
) -> str:
    """The sandbox's `userSignature`: Base64 of a JSON object that says it is a test, who
    "signed", for which e-service, SHA-256 (hex) of the `tbs_data` text as sent and of the
    message text shown, and when. Anyone can make one; it proves nothing."""
    assert sign.tbs_data is not None
    statement = {
        "format": TEST_SIGNATURE_FORMAT,
        "test": True,
        "warning": TEST_SIGNATURE_WARNING,
        "signer": signer,
        "client_id": client_id,
        "tbs_data_sha256": hashlib.sha256(sign.tbs_data.encode()).hexdigest(),
        "sign_message_sha256": hashlib.sha256(shown_message.encode()).hexdigest(),
        "signed_at": signed_at,
    }
    return base64.b64encode(json.dumps(statement, separators=(",", ":")).encode()).decode()
