"""A client of BankID's RP API v6.0: mutual TLS with the BankID server CA pinned, JSON in and out,
and BankID's errors as one typed exception. See shared/reference/bankid-rp-v6.md §1, §2, §5."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ssl
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx2
from cryptography import x509
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    pkcs12,
)

from providers.base import NoUpstreamMetrics, UpstreamObserver

TEST_URL = "https://appapi2.test.bankid.com/rp/v6.0"
PRODUCTION_URL = "https://appapi2.bankid.com/rp/v6.0"
MAINTENANCE_RETRIES = 2  # §5: maintenance may be retried silently; nothing else is retried
MAINTENANCE_PAUSE_SECONDS = 0.5
# Content-Type without a charset parameter, or BankID answers 415 (§1).
JSON_HEADERS = {"Content-Type": "application/json"}


class BankIDError(Exception):
    """BankID answered with an error (§5), or could not be reached (`errorCode` "unreachable")."""

    def __init__(self, error_code: str, details: str = "", status: int = 0) -> None:
        super().__init__(f"{error_code} ({status}): {details}")
        self.error_code = error_code
        self.details = details
        self.status = status


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

    async def auth(self, body: dict[str, Any]) -> dict[str, Any]:
        return await self._call("auth", body)

    async def collect(self, order_ref: str) -> dict[str, Any]:
        return await self._call("collect", {"orderRef": order_ref})

    async def cancel(self, order_ref: str) -> None:
        await self._call("cancel", {"orderRef": order_ref})

    async def _call(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        started, outcome = time.perf_counter(), "error"
        try:
            answer = await self._call_with_retries(path, body)
            outcome = "ok"
            return answer
        except BankIDError as error:
            if 400 <= error.status < 500:  # BankID answered: the request, not BankID, was wrong
                outcome = "rejected"
            raise
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
                answer = response.json()
                if not isinstance(answer, dict):
                    raise BankIDError("invalidResponse", "not a JSON object", 200)
                return answer
            failure = _error_of(response)
            if failure.error_code.lower() != "maintenance" or attempt == MAINTENANCE_RETRIES:
                raise failure
            await asyncio.sleep(MAINTENANCE_PAUSE_SECONDS)
        raise AssertionError("unreachable")  # the loop always returns or raises


def _error_of(response: httpx2.Response) -> BankIDError:
    try:
        body = response.json()
        code, details = str(body.get("errorCode", "")), str(body.get("details", ""))
    except (ValueError, AttributeError):
        code, details = "", response.text[:200]
    return BankIDError(code or f"http{response.status_code}", details, response.status_code)
