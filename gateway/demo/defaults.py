"""The embedded defaults of `portvakt serve` without --config: in-memory store, the sandbox
provider, BankID and the EU wallet against their bundled simulators, the demo e-service clients
and the demo relying party at /demo/."""

from __future__ import annotations

import atexit
import functools
import secrets
import shutil
import tempfile
from pathlib import Path

from gateway.demo.app import BACKCHANNEL_LOGOUT_PATH
from gateway.demo.contact_centre import CONTACT_CENTRE_CLIENT_ID
from gateway.demo.signing import SIGN_SCOPES, SIGNER_CLIENT_ID, signer_jwks
from gateway.settings import CIBA_GRANT, Settings, settings_from_data
from providers.eudi_wallet.simulator_pki import write_demo_files

DEMO_REDIRECT_URIS = ["http://127.0.0.1:9000/callback", "http://localhost:9000/callback"]
DEMO_RP_CLIENT_ID = "demo-rp"
# Fixed so that a test person keeps the same `sub` across restarts of the demo; never in production.
DEMO_SUBJECT_SALT = "portvakt-demo-subject-salt-not-secret"
BANKID_SIMULATOR_PATH = "/bankid-simulator"
WALLET_SIMULATOR_PATH = "/wallet-simulator"


def simulated_bankid(issuer: str) -> dict[str, object]:
    """The real BankID provider, pointed at the simulator that `demo: true` mounts."""
    return {
        "type": "bankid",
        "url": f"{issuer}{BANKID_SIMULATOR_PATH}/rp/v6.0",
        "launch_url": f"{issuer}{BANKID_SIMULATOR_PATH}/phone",
        "display": {"sv": "BankID (test)", "en": "BankID (test)"},
        "hint": {
            "sv": "BankID-simulator: QR-kod och ”den här enheten” som i verkligheten",
            "en": "BankID simulator: QR code and “this device” as in real life",
        },
    }


def simulated_wallet(issuer: str) -> dict[str, object]:
    """The real EU wallet provider, trusting the test PID provider of the simulator that `demo:
    true` mounts and using its test access certificate (both made by this process)."""
    key, cert, trusted = _wallet_demo_files()
    return {
        "type": "eudi_wallet",
        "display": {"sv": "EU-plånbok (test)", "en": "EU wallet (test)"},
        "hint": {
            "sv": "Plånbokssimulator: QR-kod och länk till plånbok på samma enhet",
            "en": "Wallet simulator: QR code, and a link for a wallet on this device",
        },
        "access_certificate": {"key": str(key), "cert": str(cert)},
        "trusted_issuers": [str(trusted)],
        "simulator_url": f"{issuer}{WALLET_SIMULATOR_PATH}/",
    }


@functools.cache
def _wallet_demo_files() -> tuple[Path, Path, Path]:
    """The simulator's certificates as files, in a folder of this process's own, removed at
    exit: the configuration names files, the simulator's keys live in memory."""
    folder = Path(tempfile.mkdtemp(prefix="portvakt-wallet-demo-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return write_demo_files(folder)


def demo_settings(issuer: str) -> Settings:
    return settings_from_data(
        {
            "issuer": issuer,
            "environment": "test",
            "demo": True,
            "subject_salt": DEMO_SUBJECT_SALT,
            "providers": {
                "sandbox": {"type": "sandbox"},
                "bankid": simulated_bankid(issuer),
                "wallet": simulated_wallet(issuer),
            },
            "clients": [
                {
                    "client_id": "demo",
                    "client_secret": "demo-secret",
                    "redirect_uris": DEMO_REDIRECT_URIS,
                    "display": {"sv": "Demotjänst", "en": "Demo service"},
                },
                {
                    "client_id": "demo-spa",
                    "redirect_uris": DEMO_REDIRECT_URIS,
                    "display": {"sv": "Demotjänst (webbapp)", "en": "Demo service (web app)"},
                },
                {
                    "client_id": DEMO_RP_CLIENT_ID,
                    "client_secret": secrets.token_urlsafe(24),
                    "redirect_uris": [f"{issuer}/demo/callback"],
                    "post_logout_redirect_uris": [f"{issuer}/demo/"],
                    "backchannel_logout_uri": f"{issuer}/demo{BACKCHANNEL_LOGOUT_PATH}",
                    "display": {"sv": "Demo-e-tjänst", "en": "Demo e-service"},
                },
                {
                    # Signs through the gateway: its request objects and its client
                    # authentication use a key made by this process (gateway/demo/signing.py).
                    "client_id": SIGNER_CLIENT_ID,
                    "jwks": signer_jwks(),
                    "token_endpoint_auth_method": "private_key_jwt",
                    "redirect_uris": [f"{issuer}/demo/sign/callback"],
                    "scopes": SIGN_SCOPES.split(),
                    "display": {"sv": "Demo-e-tjänst", "en": "Demo e-service"},
                },
                {
                    # The demo's contact centre identifies callers with CIBA (poll mode)
                    # through BankID phone/auth (gateway/demo/contact_centre.py).
                    "client_id": CONTACT_CENTRE_CLIENT_ID,
                    "client_secret": secrets.token_urlsafe(24),
                    "grant_types": [CIBA_GRANT],
                    "backchannel_token_delivery_mode": "poll",
                    "providers": ["bankid"],
                    "display": {"sv": "Demokommunens kontaktcenter", "en": "Demo contact centre"},
                },
            ],
        },
        source="built-in demo settings",
    )
