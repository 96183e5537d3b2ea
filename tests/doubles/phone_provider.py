"""A provider that identifies people by phone (`AuthenticatesByPhone`), and has them sign
(`Signs`: a test signature over `tbs_data`), and whose answers the test scripts: the back end of
CIBA without BankID. Registered as provider type `phone-double`
by `phone_double_type()`; each instance is found by its name in `PHONES` once the gateway has
built it."""

from __future__ import annotations

import base64
import hashlib
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Literal

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute

from providers.base import (
    LOA3,
    AuthenticatesByPhone,
    Identity,
    LoginContext,
    PhoneRequest,
    PhoneStatus,
    ProviderConfig,
    ProviderError,
    ProviderServices,
    SignRequest,
    Signs,
)
from providers.registry import ProviderType, register, unregister

TYPE = "phone-double"


class PhoneDoubleConfig(ProviderConfig):
    type: Literal["phone-double"]


class StartRefused(ProviderError):
    reason = "already_in_progress"


@dataclass
class Script:
    """What the double answers: `statuses` in turn (the last one repeats); `refuse_start`
    makes start_phone fail as BankID's alreadyInProgress would; `start_error`, `status_error`
    and `cancel_error` are raised by start_phone, phone_status and cancel_phone (an upstream
    down, a failure); `person` is who confirms (None: the hinted person); `cannot_sign` makes
    `can_sign` say no, `no_signature` completes a sign request without its signature."""

    statuses: list[str] = field(default_factory=lambda: ["pending"])
    hint: str | None = None
    outcome: str | None = None
    person: str | None = None
    refuse_start: bool = False
    start_error: type[ProviderError] | None = None
    status_error: type[ProviderError] | None = None
    cancel_error: type[ProviderError] | None = None
    cannot_sign: bool = False
    no_signature: bool = False


def double_signature(person: str, sign: SignRequest) -> str:
    """What the double 'signs': Base64 of JSON naming the signer and the SHA-256 of tbs_data."""
    digest = hashlib.sha256((sign.tbs_data or "").encode()).hexdigest()
    made = {"test": True, "signer": person, "tbs_data_sha256": digest}
    return base64.b64encode(json.dumps(made).encode()).decode()


class PhoneDouble(AuthenticatesByPhone, Signs):
    def __init__(self, config: PhoneDoubleConfig, services: ProviderServices) -> None:
        self.name = services.name
        self.display = {"sv": "Telefon", "en": "Phone"}
        self.tagline: dict[str, str] = {}
        self.loa = frozenset(config.loa)
        self.finish_path = "/done"
        self.finish_methods = ("GET",)
        self.script = Script()
        self.started: list[PhoneRequest] = []
        self.status_calls: list[str] = []
        self.cancelled: list[str] = []
        PHONES[self.name] = self

    def routes(self) -> list[BaseRoute]:
        return []

    def can_sign(self, sign: SignRequest) -> bool:
        return not self.script.cannot_sign

    async def start(self, request: Request, login: LoginContext) -> Response:
        return PlainTextResponse("this double identifies by phone only", status_code=400)

    async def finish(self, request: Request) -> tuple[str, Identity]:
        raise ProviderError(self.name, None, "no browser logins")

    async def start_phone(self, request: PhoneRequest) -> str:
        if self.script.refuse_start:
            raise StartRefused(self.name, None, f"busy: {request.personal_identity_number}")
        if self.script.start_error is not None:
            raise self.script.start_error(self.name, None, request.personal_identity_number)
        self.started.append(request)
        return f"handle-{len(self.started)}"

    async def phone_status(self, handle: str) -> PhoneStatus:
        self.status_calls.append(handle)
        if self.script.status_error is not None:
            raise self.script.status_error(self.name, None, "scripted")
        index = min(len(self.status_calls), len(self.script.statuses)) - 1
        state = self.script.statuses[index]
        if state != "complete":
            return PhoneStatus(state, hint=self.script.hint, outcome=self.script.outcome)
        started = self.started[int(handle.removeprefix("handle-")) - 1]
        person = self.script.person or started.personal_identity_number
        identity = Identity(
            provider=self.name,
            subject=person,
            loa=sorted(self.loa)[0],
            auth_time=int(time.time()),
            personal_identity_number=person,
            given_name="Tolvan",
            family_name="Tolvansson",
            name="Tolvan Tolvansson",
        )
        if started.sign is not None and started.sign.signs and not self.script.no_signature:
            signature = double_signature(person, started.sign)
            identity = replace(identity, user_signature=signature, authn_evidence="b2NzcA==")
        return PhoneStatus("complete", identity=identity)

    async def cancel_phone(self, handle: str) -> None:
        self.cancelled.append(handle)
        if self.script.cancel_error is not None:
            raise self.script.cancel_error(self.name, None, "scripted")


PHONES: dict[str, PhoneDouble] = {}


@contextmanager
def phone_double_type() -> Iterator[None]:
    register(ProviderType(TYPE, PhoneDoubleConfig, PhoneDouble))
    try:
        yield
    finally:
        unregister(TYPE)


PHONE_PROVIDER = {"type": TYPE, "loa": [LOA3]}
