"""A gateway whose one provider is the EU wallet, trusting a test PID provider (SE) and using
a test access certificate; its clock is the test's."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.clock import ManualClock
from tests.doubles.wallet_pki import Issued, PidProvider, access_certificate
from tests.harness import LiveGateway, running_gateway


@dataclass
class WalletSetup:
    gateway: LiveGateway
    clock: ManualClock
    sweden: PidProvider
    finland: PidProvider
    access: Issued
    access_ca: Issued


def wallet_provider(
    tmp: Path, *trusted: PidProvider, **extra: Any
) -> tuple[dict[str, Any], Issued, Issued]:
    key, cert, access_ca, access = access_certificate(tmp)
    trust = tmp / "pid-providers.pem"
    trust.write_bytes(b"".join(provider.ca.cert_pem() for provider in trusted))
    config = {
        "type": "eudi_wallet",
        "access_certificate": {"key": str(key), "cert": str(cert)},
        "trusted_issuers": [str(trust)],
        **extra,
    }
    return config, access, access_ca


@pytest.fixture(scope="module")
def wallet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WalletSetup]:
    sweden, finland = PidProvider.make("SE"), PidProvider.make("FI")
    config, access, access_ca = wallet_provider(tmp_path_factory.mktemp("wallet"), sweden, finland)
    clock = ManualClock()
    with running_gateway(clock=clock, providers={"wallet": config}) as gateway:
        yield WalletSetup(gateway, clock, sweden, finland, access, access_ca)
