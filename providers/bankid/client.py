"""A client of BankID's RP API v6.0: mutual TLS with the BankID server CA pinned, JSON in and out,
and BankID's errors as one typed exception. See shared/reference/bankid-rp-v6.md §1, §2, §5.

Every way a call can fail ends as `BankIDError`, decided in one place (`BankIDClient._call`):
BankID's own error answers, and whatever the HTTP and TLS stack raises (under TLS 1.3 BankID's
refusal of our certificate surfaces as `ssl.SSLError` only while the answer is read), and answers
whose JSON or shape is not what §2.3 and §3 describe. Callers handle one exception type."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import re
import ssl
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar, cast

import httpx2
from cryptography import x509
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    pkcs12,
)

from providers.base import NoUpstreamMetrics, UpstreamObserver

log = logging.getLogger("portvakt.bankid")

TEST_URL = "https://appapi2.test.bankid.com/rp/v6.0"
MAINTENANCE_RETRIES = 2  # §5: maintenance may be retried silently; nothing else is retried
MAINTENANCE_PAUSE_SECONDS = 0.5
# Content-Type without a charset parameter, or BankID answers 415 (§1).
JSON_HEADERS = {"Content-Type": "application/json"}
# §2.3: BankID's tokens are UUIDs; anything else would end up in our QR codes and URLs.
TOKEN = re.compile(r"[0-9A-Za-z-]{1,128}")
COLLECT_STATUSES = ("pending", "failed", "complete")
INVALID_RESPONSE = "invalidResponse"
T = TypeVar("T")


class BankIDError(Exception):
    """BankID answered with an error (§5), or could not be reached (`errorCode` "unreachable")."""

    def __init__(self, error_code: str, details: str = "", status: int = 0) -> None:
        super().__init__(f"{error_code} ({status}): {details}")
        self.error_code = error_code
        self.details = details
        self.status = status


@dataclass(frozen=True)
class StartedOrder:
    """§2.3: what `/auth` and `/sign` answer."""

    order_ref: str
    auto_start_token: str
    qr_start_token: str
    qr_start_secret: str


@dataclass(frozen=True)
class CollectedOrder:
    """§3: what `/collect` answers; `completion` only when `status` is complete."""

    status: Literal["pending", "failed", "complete"]
    hint_code: str | None
    completion: dict[str, Any] | None


def qr_auth_code(qr_start_secret: str, qr_time: int) -> str:
    """§6: HMAC-SHA256 keyed with the qrStartSecret, over the whole seconds since the order."""
    key = qr_start_secret.encode("ascii")
    return hmac.new(key, str(qr_time).encode("ascii"), hashlib.sha256).hexdigest()


def qr_payload(qr_start_token: str, qr_start_secret: str, qr_time: int) -> str:
    return f"bankid.{qr_start_token}.{qr_time}.{qr_auth_code(qr_start_secret, qr_time)}"


def tls_context(
    ca_file: Path | None, cert_file: Path | None, key_file: Path | None, password: str | None
) -> ssl.SSLContext:
    """Trust only the configured BankID root (never the system store); present the RP cert."""
    # With a cafile, create_default_context loads that file only, not the system's roots.
    context = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
    if cert_file is None:
        return context
    if cert_file.suffix.lower() in (".p12", ".pfx"):
        _load_pkcs12(context, cert_file, password)
    else:
        context.load_cert_chain(
            str(cert_file), str(key_file) if key_file else None, password=password
        )
    return context


def _load_pkcs12(context: ssl.SSLContext, path: Path, password: str | None) -> None:
    key, cert, chain = pkcs12.load_key_and_certificates(
        path.read_bytes(), password.encode() if password else None
    )
    if key is None or cert is None:
        raise ValueError(f"{path} holds no private key and certificate")
    pem = key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    pem += cert.public_bytes(Encoding.PEM)
    pem += b"".join(extra.public_bytes(Encoding.PEM) for extra in chain or [])
    # ssl loads certificates only from files: a private temporary file, gone once loaded.
    with tempfile.NamedTemporaryFile(suffix=".pem") as handle:
        handle.write(pem)
        handle.flush()
        context.load_cert_chain(handle.name)


def certificate_not_after(cert_file: Path, password: str | None) -> float:
    """When the RP certificate expires (Unix time), for the expiry metric."""
    data = cert_file.read_bytes()
    if cert_file.suffix.lower() in (".p12", ".pfx"):
        _, cert, _ = pkcs12.load_key_and_certificates(data, password.encode() if password else None)
        if cert is None:
            raise ValueError(f"{cert_file} holds no certificate")
    else:
        cert = x509.load_pem_x509_certificate(data)
    return cert.not_valid_after_utc.timestamp()


class BankIDClient:
    def __init__(
        self,
        base_url: str,
        context: ssl.SSLContext | None,
        timeout: float,
        upstream: UpstreamObserver | None = None,
    ) -> None:
        self._upstream = upstream or NoUpstreamMetrics()
        self._base_url = base_url.rstrip("/")
        self._http = httpx2.AsyncClient(
            verify=context if context is not None else True,
            timeout=httpx2.Timeout(timeout, connect=min(timeout, 5.0)),
            headers=JSON_HEADERS,
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def auth(self, body: dict[str, Any]) -> StartedOrder:
        return await self._call("auth", body, _started_order)

    async def sign(self, body: dict[str, Any]) -> StartedOrder:
        return await self._call("sign", body, _started_order)

    async def phone(self, body: dict[str, Any], sign: bool) -> str:
        """`phone/auth` or `phone/sign` (bankid-2026-and-ciba.md §1.10): the orderRef only."""
        return await self._call("phone/sign" if sign else "phone/auth", body, _order_ref)

    async def collect(self, order_ref: str) -> CollectedOrder:
        return await self._call("collect", {"orderRef": order_ref}, _collected_order)

    async def cancel(self, order_ref: str) -> None:
        await self._call("cancel", {"orderRef": order_ref}, lambda _answer: None)

    async def _call(
        self, path: str, body: dict[str, Any], read: Callable[[dict[str, Any]], T]
    ) -> T:
        """The one place where a failed call, of whatever kind, becomes `BankIDError`."""
        started, outcome = time.perf_counter(), "error"
        try:
            answer = read(await self._call_with_retries(path, body))
            outcome = "ok"
            return answer
        except BankIDError as error:
            if 400 <= error.status < 500:  # BankID answered: the request, not BankID, was wrong
                outcome = "rejected"
            raise
        except Exception as error:  # any failure of the HTTP/TLS stack or of the answer's shape
            log.warning("BankID %s failed: %s", path, type(error).__name__)
            raise BankIDError("unreachable", f"{type(error).__name__}: {error}") from error
        finally:
            self._upstream.observe(path, time.perf_counter() - started, outcome)

    async def _call_with_retries(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        for attempt in range(MAINTENANCE_RETRIES + 1):
            try:
                response = await self._http.post(f"{self._base_url}/{path}", json=body)
            except httpx2.TimeoutException as error:
                raise BankIDError("unreachable", f"timed out: {error}") from error
            except httpx2.HTTPError as error:
                raise BankIDError("unreachable", str(error)) from error
            if response.status_code == 200:
                return _json_object(response)
            failure = _error_of(response)
            if failure.error_code.lower() != "maintenance" or attempt == MAINTENANCE_RETRIES:
                raise failure
            await asyncio.sleep(MAINTENANCE_PAUSE_SECONDS)
        raise AssertionError("unreachable")  # the loop always returns or raises


def _json_object(response: httpx2.Response) -> dict[str, Any]:
    try:
        answer = response.json()
    except ValueError:  # not JSON, or not UTF-8
        answer = None
    if not isinstance(answer, dict):
        raise BankIDError(INVALID_RESPONSE, "the answer is not a JSON object", response.status_code)
    return answer


def _error_of(response: httpx2.Response) -> BankIDError:
    """§5: `{"errorCode", "details"}`; any other body still names the HTTP status."""
    try:
        body = _json_object(response)
    except BankIDError:
        body = {}
    code, details = body.get("errorCode"), body.get("details")
    if not isinstance(code, str) or not code:
        code = f"http{response.status_code}"
    return BankIDError(code, details if isinstance(details, str) else "", response.status_code)


def _invalid(what: str) -> BankIDError:
    return BankIDError(INVALID_RESPONSE, what, 200)


def _token(answer: Mapping[str, Any], key: str) -> str:
    value = answer.get(key)
    if not isinstance(value, str) or not TOKEN.fullmatch(value):
        raise _invalid(f"{key} is missing or not a token")
    return value


def _started_order(answer: dict[str, Any]) -> StartedOrder:
    return StartedOrder(
        order_ref=_token(answer, "orderRef"),
        auto_start_token=_token(answer, "autoStartToken"),
        qr_start_token=_token(answer, "qrStartToken"),
        qr_start_secret=_token(answer, "qrStartSecret"),
    )


def _order_ref(answer: dict[str, Any]) -> str:
    return _token(answer, "orderRef")


def _collected_order(answer: dict[str, Any]) -> CollectedOrder:
    status, hint = answer.get("status"), answer.get("hintCode")
    if status not in COLLECT_STATUSES:
        raise _invalid("status is not pending, failed or complete")
    if status == "complete":
        return CollectedOrder("complete", None, _completion(answer.get("completionData")))
    if hint is not None and not isinstance(hint, str):
        raise _invalid("hintCode is not a string")
    return CollectedOrder(cast(Literal["pending", "failed"], status), hint, None)


def _completion(data: Any) -> dict[str, Any]:
    """§3.1: the user's number and names are strings; the other parts, when present, objects
    or strings as documented. Whether the number is a valid one is the provider's to judge."""
    if not isinstance(data, dict) or not isinstance(data.get("user"), dict):
        raise _invalid("completionData.user is missing")
    user = data["user"]
    if not isinstance(user.get("personalNumber"), str):
        raise _invalid("completionData.user.personalNumber is missing")
    for key in ("name", "givenName", "surname"):
        if not isinstance(user.get(key, ""), str):
            raise _invalid(f"completionData.user.{key} is not a string")
    for key in ("device", "stepUp"):
        if not isinstance(data.get(key, {}), dict):
            raise _invalid(f"completionData.{key} is not an object")
    for key in ("bankIdIssueDate", "signature", "ocspResponse", "risk"):
        if not isinstance(data.get(key, ""), str):
            raise _invalid(f"completionData.{key} is not a string")
    return data
