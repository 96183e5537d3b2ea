"""What `demo: true` adds to the gateway: the demo e-service at /demo, the BankID simulator that
the demo's BankID provider talks to, and the EU wallet simulator that plays the citizen's
wallet for the demo's wallet provider."""

from __future__ import annotations

import time

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Mount, Route

from gateway.clock import Clock
from gateway.demo.app import demo_app
from gateway.demo.contact_centre import CONTACT_CENTRE_CLIENT_ID
from gateway.demo.defaults import BANKID_SIMULATOR_PATH, DEMO_RP_CLIENT_ID, WALLET_SIMULATOR_PATH
from gateway.oidc.discovery import DISCOVERY_PATH
from gateway.settings import Settings
from gateway.ui.pages import PageRenderer
from providers.bankid.simulator import BankIDSimulator
from providers.eudi_wallet.simulator import WalletSimulator


def demo_mounts(settings: Settings, pages: PageRenderer, clock: Clock = time.time) -> list[Mount]:
    demo_client = settings.client(DEMO_RP_CLIENT_ID)
    assert demo_client is not None and demo_client.client_secret is not None  # settings check
    contact_centre = settings.client(CONTACT_CENTRE_CLIENT_ID)  # absent from `demo: true` configs
    demo = demo_app(
        settings.issuer,
        demo_client.client_id,
        demo_client.client_secret,
        pages,
        clock,
        contact_centre.client_secret if contact_centre is not None else None,
    )
    # Long enough for a person to switch tabs; the real BankID gives up after about 30 s.
    simulator = BankIDSimulator(start_timeout=120, mount_path=BANKID_SIMULATOR_PATH)
    public_url = f"{settings.issuer}{WALLET_SIMULATOR_PATH}"
    wallet = WalletSimulator(WALLET_SIMULATOR_PATH, clock=clock, public_url=public_url)
    return [
        Mount("/demo", demo),
        Mount(BANKID_SIMULATOR_PATH, simulator.app),
        Mount(WALLET_SIMULATOR_PATH, wallet.app),
    ]


def home_route(settings: Settings) -> Route:
    """/ leads to the demo e-service when it runs, otherwise to the discovery document."""
    target = "/demo/" if settings.demo else DISCOVERY_PATH

    async def home(_request: Request) -> Response:
        return RedirectResponse(target, status_code=307)

    return Route("/", home)
