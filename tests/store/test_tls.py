"""The store over TLS with a password and client certificates: a real redis-server speaking only
TLS (its tls-port), certificates from the test PKI in tests/doubles/tls.py."""

from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.settings import StoreSettings
from gateway.store import StoreUnavailable, open_store
from tests.doubles.tls import LocalPKI, make_pki
from tests.harness import free_port

PASSWORD = "redis-test-password"


@pytest.fixture(scope="module")
def tls_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, LocalPKI]]:
    directory = tmp_path_factory.mktemp("tls-redis")
    pki = make_pki(directory)
    port = free_port()
    binary = shutil.which("redis-server")
    assert binary is not None
    process = subprocess.Popen(
        [binary, "--port", "0", "--tls-port", str(port), "--bind", "127.0.0.1",
         "--tls-cert-file", str(pki.server.cert), "--tls-key-file", str(pki.server.key),
         "--tls-ca-cert-file", str(pki.ca), "--tls-auth-clients", "yes",
         "--requirepass", PASSWORD, "--save", "", "--appendonly", "no", "--dir", str(directory)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    context = ssl.create_default_context(cafile=pki.ca)
    context.load_cert_chain(pki.client.cert, pki.client.key)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with (
                socket.create_connection(("127.0.0.1", port), timeout=0.2) as raw,
                context.wrap_socket(raw, server_hostname="127.0.0.1"),
            ):
                break
        except OSError:
            time.sleep(0.05)
    yield port, pki
    process.terminate()
    process.wait(timeout=10)


def settings(
    port: int, pki: LocalPKI, password: str = PASSWORD, ca: Path | None = None
) -> StoreSettings:
    return StoreSettings(
        url=f"rediss://:{password}@127.0.0.1:{port}/0",
        tls_ca=ca or pki.ca,
        tls_cert=pki.client.cert,
        tls_key=pki.client.key,
    )


async def test_records_round_trip_over_tls_with_a_password(tls_redis: tuple[int, LocalPKI]) -> None:
    port, pki = tls_redis
    async with open_store(settings(port, pki)) as store:
        await store.put("tls:1", b"secret record", 60)
        assert await store.take("tls:1") == b"secret record"


async def test_a_wrong_password_is_store_unavailable(tls_redis: tuple[int, LocalPKI]) -> None:
    port, pki = tls_redis
    async with open_store(settings(port, pki, password="wrong")) as store:
        with pytest.raises(StoreUnavailable):
            await store.put("tls:2", b"x", 60)


# redis-py 8.1 leaves the socket of a failed TLS handshake for the garbage collector to close
# (a ResourceWarning from its connection internals, not from the store): tolerated here only.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
async def test_a_server_certificate_from_another_ca_is_refused(
    tls_redis: tuple[int, LocalPKI],
) -> None:
    port, pki = tls_redis
    async with open_store(settings(port, pki, ca=pki.rogue_ca)) as store:
        with pytest.raises(StoreUnavailable):
            await store.put("tls:3", b"x", 60)


def test_tls_files_need_a_rediss_url(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("x")
    with pytest.raises(ValueError, match="need a rediss:// url"):
        StoreSettings(url="redis://127.0.0.1:6379/0", tls_ca=ca)
