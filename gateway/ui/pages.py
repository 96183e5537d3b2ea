"""Citizen-facing pages: one Jinja2 environment per language, compiled once, with gettext
catalogues (`locale/*/LC_MESSAGES/messages.po`) loaded through Babel at start."""

from __future__ import annotations

import gettext
import io
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import jinja2
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

import providers
from gateway.ops.security import CONTENT_SECURITY_POLICY
from gateway.ui.branding import Brand
from gateway.ui.remembered import remember

LOCALES = ("sv", "en")
DEFAULT_LOCALE = "sv"
LANGUAGE_NAMES = {"sv": "Svenska", "en": "English"}
LANGUAGE_COOKIE = "pv_lang"
UI_DIR = Path(__file__).parent
# Each provider package keeps its pages in its own templates/ folder (providers/templates holds
# the single-module providers'); a new provider type's are found without naming it here.
PROVIDER_TEMPLATES = sorted(Path(providers.__file__).parent.glob("**/templates"))


def load_translations(locale: str) -> gettext.NullTranslations:
    po_path = UI_DIR / "locale" / locale / "LC_MESSAGES" / "messages.po"
    if not po_path.exists():
        return gettext.NullTranslations()
    with po_path.open("rb") as po_file:
        catalog = read_po(po_file, locale=locale)
    compiled = io.BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    return gettext.GNUTranslations(compiled)


def negotiate_locale(request: Request, preferred: str | None = None) -> str:
    """Explicit switch (`?lang=`, then its cookie) > `ui_locales` > Accept-Language > Swedish."""
    for candidate in (request.query_params.get("lang"), request.cookies.get(LANGUAGE_COOKIE)):
        if candidate in LOCALES:
            return candidate
    for tag in (preferred or "").split():
        if tag.split("-")[0].lower() in LOCALES:
            return tag.split("-")[0].lower()
    for tag, _ in _accept_language(request.headers.get("accept-language", "")):
        if tag in LOCALES:
            return tag
    return DEFAULT_LOCALE


def _accept_language(header: str) -> list[tuple[str, float]]:
    ranked = []
    for part in header.split(","):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        if tag:
            ranked.append((tag.split("-")[0].lower(), quality))
    return sorted(ranked, key=lambda item: -item[1])


class PageRenderer:
    """Implements `providers.base.Pages` for the gateway and every provider.

    Context keys the layout understands: `client_id` (shows that e-service's name and branding)
    and `page_url` (where the language switch leads: a GET address that shows the same page,
    for pages answered to a POST).
    """

    def __init__(
        self,
        environment_name: str,
        gateway_host: str,
        clients: Mapping[str, Mapping[str, str]] | None = None,
        brands: Mapping[str, Brand] | None = None,
        gateway_name: str = "Portvakt",
        secure_cookies: bool = False,
    ) -> None:
        self._secure_cookies = secure_cookies
        self._clients = clients or {}
        self._brands = brands or {}
        loader = jinja2.ChoiceLoader(
            [
                jinja2.FileSystemLoader(UI_DIR / "templates"),
                *(jinja2.FileSystemLoader(folder) for folder in PROVIDER_TEMPLATES),
            ]
        )
        self._environments: dict[str, jinja2.Environment] = {}
        self._translations = {locale: load_translations(locale) for locale in LOCALES}
        for locale in LOCALES:
            env = jinja2.Environment(
                loader=loader,
                autoescape=True,
                extensions=["jinja2.ext.i18n"],
                undefined=jinja2.StrictUndefined,
            )
            env.install_gettext_translations(self._translations[locale], newstyle=True)  # type: ignore[attr-defined]
            env.globals.update(
                locale=locale,
                environment=environment_name,
                gateway_name=gateway_name,
                gateway_host=gateway_host,
            )
            self._environments[locale] = env

    def render(
        self,
        request: Request,
        template: str,
        context: dict[str, Any],
        status_code: int = 200,
        preferred_locale: str | None = None,
    ) -> Response:
        preferred = preferred_locale or getattr(request.state, "preferred_locale", None)
        locale = negotiate_locale(request, preferred)
        other = next(code for code in LOCALES if code != locale)
        client_id = context.get("client_id")
        page = (
            self._environments[locale]
            .get_template(template)
            .render(
                **context,
                locale=locale,
                other_locale=other,
                other_language=LANGUAGE_NAMES[other],
                switch_url=_with_language(context.get("page_url") or str(request.url), other),
                static_url=_static_url,
                text=lambda mapping: localized(mapping, locale),
                service_name=localized(self._clients.get(client_id or "", {}), locale),
                brand=self._brands.get(client_id or ""),
            )
        )
        response = HTMLResponse(page, status_code=status_code)
        if request.query_params.get("lang") in LOCALES:
            remember(response, LANGUAGE_COOKIE, locale, self._secure_cookies)
        return response

    def translate(self, request: Request, message: str, preferred_locale: str | None = None) -> str:
        """One catalogue text in the citizen's language, for answers that are not pages."""
        return self._translations[negotiate_locale(request, preferred_locale)].gettext(message)

    def locale(self, request: Request, preferred_locale: str | None = None) -> str:
        return negotiate_locale(request, preferred_locale)


def localized(mapping: dict[str, str] | Any, locale: str) -> str:
    """Pick a `{sv: …, en: …}` text from config in the page's language."""
    if not isinstance(mapping, dict) or not mapping:
        return str(mapping or "")
    return str(mapping.get(locale) or mapping.get(DEFAULT_LOCALE) or next(iter(mapping.values())))


def allow_images_from(response: Response, origin: str) -> None:
    """This page's Content-Security-Policy lets images come from `origin` too (an e-service's
    logo_uri on the chooser), and nothing else is loosened; every other page keeps the strict
    policy the security headers set."""
    directives = [directive.strip() for directive in CONTENT_SECURITY_POLICY.split(";")]
    response.headers["content-security-policy"] = "; ".join(
        f"{directive} {origin}" if directive.startswith("img-src ") else directive
        for directive in directives
    )


def _with_language(url: str, locale: str) -> str:
    """The same page's address (path and query only) in the other language."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "lang"]
    return f"{parts.path}?{urlencode([*query, ('lang', locale)])}"


def _static_url(name: str) -> str:
    return f"/static/{name}"
