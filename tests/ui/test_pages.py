"""The citizen's pages over plain HTTP: branding, failure pages, the remembered choice and the
message catalogues. tests/browser/ drives the same pages in Chromium."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx2
import pytest
from babel.messages.pofile import read_po

from gateway.settings import SettingsError, load_settings
from gateway.ui.branding import contrast_ratio
from tests.harness import REDIRECT_URI, Browser, LiveGateway, hidden_field, running_gateway

ROOT = Path(__file__).resolve().parents[2]
LOCALE_DIR = ROOT / "gateway" / "ui" / "locale"
LOGO = (ROOT / "config" / "logos" / "kommun.svg").read_bytes()
BRANDED = """
issuer: http://127.0.0.1:8080
providers: {sandbox: {type: sandbox}}
clients:
  - client_id: a
    client_secret: s
    redirect_uris: ["http://127.0.0.1:9000/cb"]
    branding: {BRANDING}
"""


def branded_problems(tmp_config, branding: str) -> list[str]:
    with pytest.raises(SettingsError) as raised:
        load_settings(tmp_config(BRANDED.replace("{BRANDING}", branding)))
    return raised.value.problems


def test_contrast_ratio_matches_wcag_examples() -> None:
    assert contrast_ratio("#000000", "#ffffff") == pytest.approx(21.0)
    assert contrast_ratio("#767676", "#ffffff") == pytest.approx(4.54, abs=0.01)
    assert contrast_ratio("#ffffff", "#ffffff") == pytest.approx(1.0)


def test_a_brand_colour_without_enough_contrast_is_refused(tmp_config) -> None:
    problems = branded_problems(tmp_config, '{colour: "#ffcc00"}')
    assert problems == [
        "clients[0].branding: text_colour #ffffff on colour #ffcc00 has contrast 1.5:1; "
        "WCAG 2.1 AA needs 4.5:1. Choose a darker colour or another text_colour"
    ]
    assert branded_problems(tmp_config, '{colour: "navy"}') == [
        "clients[0].branding.colour: 'navy' must be a colour written #rrggbb, such as #0b3d6e"
    ]


def test_a_logo_must_be_an_image_file_beside_the_config(tmp_config, tmp_path: Path) -> None:
    (tmp_path / "logo.svg").write_bytes(LOGO)
    settings = load_settings(tmp_config(BRANDED.replace("{BRANDING}", "{logo: logo.svg}")))
    assert settings.clients[0].branding.logo == tmp_path / "logo.svg"  # relative to the YAML
    (tmp_path / "notes.txt").write_text("not an image")
    assert branded_problems(tmp_config, "{logo: notes.txt}") == [
        f"clients[0].branding.logo: '{tmp_path / 'notes.txt'}' is not a PNG, JPEG, WebP or SVG "
        "(without script)"
    ]
    (tmp_path / "evil.svg").write_text('<svg xmlns="http://www.w3.org/2000/svg"><script/></svg>')
    assert "is not a PNG" in branded_problems(tmp_config, "{logo: evil.svg}")[0]


@pytest.fixture(scope="module")
def branded_gateway(store_url: str | None) -> LiveGateway:
    client = {
        "client_id": "basic",
        "client_secret": "basic-secret",
        "redirect_uris": [REDIRECT_URI],
        "display": {"sv": "Bygglov", "en": "Building permits"},
        "client_uri": "https://bygglov.kommun.example/",
        "branding": {"logo": str(ROOT / "config/logos/kommun.svg"), "colour": "#4a1d6e"},
    }
    providers = {"sandbox": {"type": "sandbox"}, "other": {"type": "sandbox"}}
    with running_gateway(store_url, clients=[client], providers=providers) as live:
        yield live


def test_branding_is_served_by_the_gateway_itself(branded_gateway: LiveGateway) -> None:
    citizen = Browser(branded_gateway)
    chooser = citizen.authorize(**citizen.authorize_params("basic"))
    assert "Inloggning till Bygglov" in chooser.text
    assert '<img class="client-logo" src="/branding/basic/logo?v=' in chooser.text
    style = citizen.http.get("/branding/basic/brand.css")
    assert style.headers["content-type"].startswith("text/css")
    assert "background: #4a1d6e" in style.text
    logo = citizen.http.get("/branding/basic/logo")
    assert logo.headers["content-type"] == "image/svg+xml" and logo.content == LOGO
    assert logo.headers["cache-control"] == "public, max-age=86400"
    assert citizen.http.get("/branding/nobody/logo").status_code == 404
    citizen.close()


def test_the_last_choice_comes_first_and_holds_no_personal_data(
    branded_gateway: LiveGateway,
) -> None:
    citizen = Browser(branded_gateway)
    chooser = citizen.authorize(**citizen.authorize_params("basic"))
    assert chooser.text.index('value="sandbox"') < chooser.text.index('value="other"')
    chosen = citizen.http.post(
        hidden_action(chooser.text),
        data={"csrf": hidden_field(chooser.text, "csrf"), "provider": "other"},
    )
    assert chosen.status_code == 200
    assert citizen.http.cookies["pv_last_eid"] == "other"
    again = citizen.authorize(**citizen.authorize_params("basic"))
    assert again.text.index('value="other"') < again.text.index('value="sandbox"')
    assert "Användes senast" in again.text
    citizen.close()


def hidden_action(html: str) -> str:
    start = html.index('action="') + len('action="')
    return html[start : html.index('"', start)]


def test_an_expired_login_still_leads_back_to_the_e_service(
    branded_gateway: LiveGateway,
) -> None:
    """The way back comes from the cookie; the e-service's name and look never do, because
    this request does not prove which e-service it is."""
    citizen = Browser(branded_gateway)
    citizen.authorize(**citizen.authorize_params("basic"))  # remembers the e-service
    page = citizen.http.get("/login/expired-or-made-up")
    assert page.status_code == 400
    assert 'href="https://bygglov.kommun.example/"' in page.text  # its client_uri
    assert "Tillbaka till e-tjänsten" in page.text
    assert_not_labelled(page.text)
    stranger = Browser(branded_gateway)
    assert "Tillbaka till" not in stranger.http.get("/login/expired-or-made-up").text
    citizen.close()
    stranger.close()


def assert_not_labelled(page: str) -> None:
    assert "Bygglov" not in page and "client-band" not in page and "/branding/" not in page


def test_an_unproven_e_service_is_never_named(branded_gateway: LiveGateway) -> None:
    """An unknown client_id, or a known one with a foreign redirect_uri, proves nothing: the
    page names no e-service, though the browser used Bygglov last."""
    citizen = Browser(branded_gateway)
    citizen.authorize(**citizen.authorize_params("basic"))
    unknown = citizen.authorize(**citizen.authorize_params("nobody"))
    assert unknown.status_code == 400
    assert_not_labelled(unknown.text)
    assert "bygglov.kommun.example" not in unknown.text  # no way back to someone else either
    foreign = citizen.authorize(
        **citizen.authorize_params("basic", redirect_uri="https://evil.example/cb")
    )
    assert foreign.status_code == 400 and "location" not in foreign.headers
    assert_not_labelled(foreign.text)
    switch = foreign.text.split('class="language-switch" href="')[1].split('"')[0]
    assert_not_labelled(citizen.http.get(switch.replace("&amp;", "&")).text)
    citizen.close()


def test_failure_page_language_switch_is_signed(gateway: LiveGateway) -> None:
    citizen = Browser(gateway)
    page = citizen.http.get("/login/made-up")
    switch = page.text.split('class="language-switch" href="')[1].split('"')[0]
    assert switch.startswith("/error?e=") and switch.endswith("&amp;lang=en")
    english = citizen.http.get(switch.replace("&amp;", "&"))
    assert "Your login has expired or is already finished" in english.text
    tampered = citizen.http.get(switch.replace("&amp;", "&").replace("e=", "e=x"))
    assert tampered.status_code == 404 and "We could not find that page" in tampered.text
    citizen.close()


def test_unknown_pages_get_a_citizen_page_and_apis_get_json(gateway: LiveGateway) -> None:
    with httpx2.Client(base_url=gateway.url) as http:
        page = http.get("/no/such/page")
        assert page.status_code == 404 and "Vi hittar inte sidan" in page.text
        assert "uppge den här referensen" in page.text
        api = http.get("/token")
        assert api.status_code == 405 and api.json()["error"] == "invalid_request"


def test_every_message_is_translated_to_swedish() -> None:
    with (LOCALE_DIR / "sv" / "LC_MESSAGES" / "messages.po").open("rb") as po:
        catalogue = read_po(po, locale="sv")
    missing = [message.id for message in catalogue if message.id and not message.string]
    assert missing == []


def test_the_catalogue_template_matches_the_sources(tmp_path: Path) -> None:
    """A text added to a template or to ERROR_TEXTS must reach the catalogues (pybabel)."""
    extracted = tmp_path / "messages.pot"
    pybabel = [sys.executable, "-m", "babel.messages.frontend"]
    subprocess.run(
        [*pybabel, "extract", "-F", "babel.cfg", "-k", "N_", "-k", "_", "-o", str(extracted), "."],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    with extracted.open("rb") as fresh, (LOCALE_DIR / "messages.pot").open("rb") as kept:
        fresh_ids = {m.id for m in read_po(fresh) if m.id}
        kept_ids = {m.id for m in read_po(kept) if m.id}
    with (LOCALE_DIR / "sv" / "LC_MESSAGES" / "messages.po").open("rb") as po:
        swedish_ids = {m.id for m in read_po(po, locale="sv") if m.id}
    assert fresh_ids == kept_ids == swedish_ids, "run the pybabel commands in README.md"
