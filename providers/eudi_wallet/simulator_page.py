"""The wallet simulator's pages (simulator.py routes them): plain HTML, every value escaped,
`lang` set, every control labelled; Swedish headings with English text, as the BankID
simulator's pages. Test tool only: none of it is in the gateway's catalogues."""

from __future__ import annotations

import html

from starlette.responses import HTMLResponse

from providers.eudi_wallet.simulator_holder import Twist
from providers.eudi_wallet.simulator_people import PEOPLE
from providers.eudi_wallet.simulator_request import WalletRequest

TITLE = "EU-plånbok (simulator) — TEST"


def page(body: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{TITLE}</title>"
        '<link rel="stylesheet" href="/static/portvakt.css"></head>'
        f'<body><main class="wrap" id="main"><h1 lang="sv">{TITLE}</h1>{body}</main>'
        "</body></html>",
        status_code=status,
        headers={"Cache-Control": "no-store"},
    )


def paste_form(mount: str) -> str:
    return (
        "<p>This page plays a citizen's phone wallet, with test PIDs only. Open the e-service's "
        "<code>openid4vp://</code> link here, or paste the link the QR code carries.</p>"
        f'<form method="get" action="{html.escape(mount)}/">'
        '<p><label for="request">Link (openid4vp:// or haip-vp://)</label><br>'
        '<input id="request" name="request" type="text" inputmode="url" autocomplete="off"'
        " required></p>"
        '<p><button type="submit" class="button">Öppna / Open</button></p></form>'
    )


def refused(reason: str, mount: str) -> str:
    return (
        f'<h2 lang="sv">Kan inte visas</h2><p class="error" role="alert">Not presented: '
        f"{html.escape(reason)}.</p>"
        f'<p><a href="{html.escape(mount)}/">Back to the wallet</a></p>'
    )


def _claim_list(request: WalletRequest) -> str:
    paths = [".".join("*" if e is None else str(e) for e in c.path) for c in request.claims] or [
        "(no claims: only the PID's type and validity)"
    ]
    return "<ul>" + "".join(f"<li><code>{html.escape(p)}</code></li>" for p in paths) + "</ul>"


def _people_choice() -> str:
    options = "".join(
        _radio("person", p.key, p.label, checked=n == 0) for n, p in enumerate(PEOPLE.values())
    )
    return f"<fieldset><legend>Test person</legend>{options}</fieldset>"


def _radio(name: str, value: str, label: str, *, checked: bool = False) -> str:
    control = html.escape(f"{name}-{value or 'none'}")
    return (
        f'<p><input type="radio" name="{name}" id="{control}" value="{html.escape(value)}"'
        f'{" checked" if checked else ""}> <label for="{control}">{html.escape(label)}</label></p>'
    )


def _twist_choice() -> str:
    """Collapsed: a tester opens it to make the answer one a verifier must refuse."""
    options = "".join(_radio("twist", t.name, t.value) for t in Twist)
    return (
        "<details><summary>Bend the answer (negative tests)</summary><fieldset>"
        "<legend>Twist</legend>"
        f"{_radio('twist', '', 'None: a correct answer', checked=True)}{options}"
        "</fieldset></details>"
    )


def consent(request: WalletRequest, pending_id: str, mount: str) -> str:
    hidden = f'<input type="hidden" name="pending" value="{html.escape(pending_id)}">'
    base = html.escape(mount)
    return (
        f'<h2 lang="sv">Vem frågar</h2><p>{html.escape(request.requester)}</p>'
        f'<h2 lang="sv">Vad delas</h2>{_claim_list(request)}'
        f'<form method="post" action="{base}/share">{hidden}{_people_choice()}{_twist_choice()}'
        '<p><button type="submit" class="button">Dela / Share</button></p></form>'
        f'<form method="post" action="{base}/decline">{hidden}'
        '<p><button type="submit" class="button button-secondary">Avböj / Decline</button></p>'
        "</form>"
    )


def done() -> str:
    return (
        '<p lang="sv">Klart — gå tillbaka till datorn där du började.</p>'
        "<p>Done — go back to the computer where you started.</p>"
    )


def not_accepted(status_code: int, body: str) -> str:
    """Shared, but the e-service's response URI did not take it (a twist, or a refusal)."""
    return (
        '<h2 lang="sv">Inte godtaget</h2>'
        f"<p>Shared, but the e-service answered HTTP {status_code}:</p>"
        f"<pre>{html.escape(body[:500])}</pre>"
        "<p>Go back to where you started: the e-service says what went wrong.</p>"
    )
