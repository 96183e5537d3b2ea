"""The wallet's answer at our response URI (OpenID4VP 1.0 §8.2-§8.3, HAIP §5): a form with
`response`, a JWE encrypted to the request's ephemeral key (`ECDH-ES`, `A128GCM` or `A256GCM`,
the key's `kid`), whose payload holds `vp_token` and `state`; or an error (`error`, `state`),
which a wallet may send unencrypted. Encryption gives no integrity: anyone holding the public
key can make a JWE, so what counts is the signed presentation inside (OpenID4VP §14)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from joserfc import jwe
from joserfc.errors import JoseError
from joserfc.jwe import JWERegistry
from starlette.requests import Request

from providers.eudi_wallet.errors import InvalidPresentation
from providers.eudi_wallet.request_object import (
    CREDENTIAL_ID,
    ENCRYPTION_ALG,
    ENCRYPTION_METHODS,
    EphemeralKey,
)
from providers.parsing import MalformedInput, bounded_json, compact_jwt_parts

MAX_BODY_BYTES = 512 * 1024
MAX_FIELDS = 8
MAX_SHOWN_NAME = 40


class _Registry(JWERegistry):
    max_protected_header_length = 2048
    max_encrypted_key_length = 0
    max_initialization_vector_length = 64
    max_ciphertext_length = MAX_BODY_BYTES
    max_auth_tag_length = 64


REGISTRY = _Registry(algorithms=[ENCRYPTION_ALG, *ENCRYPTION_METHODS])


class MalformedForm(ValueError):
    """The body is not a bounded `application/x-www-form-urlencoded` form."""


async def bounded_form(request: Request) -> dict[str, str]:
    """The posted form, read no further than MAX_BODY_BYTES; one value per name."""
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            raise MalformedForm("the body is too large")
    try:
        text = body.decode("utf-8")
        fields = parse_qsl(text, keep_blank_values=True, max_num_fields=MAX_FIELDS)
    except (UnicodeDecodeError, ValueError):
        raise MalformedForm("the body is not a form") from None
    form: dict[str, str] = {}
    for name, value in fields:
        if name in form:
            raise MalformedForm(f"{_shown(name)} is repeated")
        form[name] = value
    return form


def _shown(name: str) -> str:
    """A field's name as our error_description may carry it (RFC 6749 §5.2 allows printable
    ASCII but `"` and `\\`), or a stand-in for one that it may not."""
    printable = all(0x20 <= ord(c) <= 0x7E and c not in '"\\' for c in name)
    return f"'{name}'" if name and printable and len(name) <= MAX_SHOWN_NAME else "a field"


@dataclass(frozen=True)
class WalletAnswer:
    """The decrypted response: the one PID presentation and the state it names."""

    presentation: str
    state: str


def decrypt(response: str, key: EphemeralKey) -> Mapping[str, Any]:
    """The JWE's payload, if it was made for this request's key with an algorithm we offered."""
    try:
        header = _protected_header(response)
    except MalformedInput as problem:
        raise InvalidPresentation(f"response: {problem}") from None
    if header.get("alg") != ENCRYPTION_ALG or header.get("enc") not in ENCRYPTION_METHODS:
        raise InvalidPresentation("response: not ECDH-ES with A128GCM or A256GCM")
    if header.get("kid") != key.kid:
        raise InvalidPresentation("response: encrypted to another key (kid)")
    try:
        plaintext = jwe.decrypt_compact(response, key.key(), registry=REGISTRY).plaintext
        payload = bounded_json(plaintext or b"")
    except (JoseError, ValueError, MalformedInput):
        raise InvalidPresentation("response: does not decrypt to JSON") from None
    if not isinstance(payload, dict):
        raise InvalidPresentation("response: the payload is not a JSON object")
    return payload


def wallet_answer(payload: Mapping[str, Any]) -> WalletAnswer:
    """OpenID4VP §8.1: `vp_token` an object keyed by our credential query's id, whose value is
    an array of exactly one presentation (no `multiple`); the `state` of the request."""
    vp_token = payload.get("vp_token")
    if not isinstance(vp_token, dict) or set(vp_token) != {CREDENTIAL_ID}:
        raise InvalidPresentation("vp_token does not answer the one credential query asked")
    presentations = vp_token[CREDENTIAL_ID]
    if not isinstance(presentations, list) or len(presentations) != 1:
        raise InvalidPresentation("vp_token must hold exactly one presentation of the PID")
    presentation, state = presentations[0], payload.get("state")
    if not isinstance(presentation, str) or not isinstance(state, str):
        raise InvalidPresentation("the presentation or the state is not a string")
    return WalletAnswer(presentation, state)


def _protected_header(token: str) -> Mapping[str, Any]:
    """A compact JWE has five parts; its first is the protected header (bounded JSON)."""
    parts = token.split(".")
    if len(parts) != 5:
        raise MalformedInput("not a compact JWE")
    header, _ = compact_jwt_parts(f"{parts[0]}.e30.")
    return header
