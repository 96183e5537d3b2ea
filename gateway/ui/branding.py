"""Per-client branding: the e-service's logo and colours on the pages of its logins.

The colours reach the page as a small stylesheet per client (`/branding/<client>/brand.css`),
because the Content-Security-Policy forbids inline style; the logo is served from the gateway
itself, because the pages load no third-party resources.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

HEX_COLOUR = re.compile(r"#[0-9a-fA-F]{6}")
MIN_TEXT_CONTRAST = 4.5  # WCAG 2.1 SC 1.4.3, normal-size text
MAX_LOGO_BYTES = 256 * 1024
BRAND_CACHE = {"Cache-Control": "public, max-age=86400"}


def relative_luminance(colour: str) -> float:
    """WCAG 2.1 relative luminance of an sRGB `#rrggbb` colour."""
    channels = [int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast_ratio(first: str, second: str) -> float:
    lighter, darker = sorted((relative_luminance(first), relative_luminance(second)), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)


def logo_media_type(data: bytes) -> str | None:
    """The image type by its first bytes; None for anything we do not serve as a logo."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    head = data[:1024].lstrip().lower()
    if (head.startswith((b"<?xml", b"<svg")) and b"<svg" in head) and b"<script" not in data:
        return "image/svg+xml"
    return None


@dataclass(frozen=True)
class Brand:
    """What the pages show of one e-service; `version` busts caches when the config changes."""

    client_id: str
    colour: str | None
    text_colour: str
    logo: bytes | None
    logo_type: str | None
    version: str

    @property
    def stylesheet(self) -> bytes:
        if self.colour is None:
            return b""
        return (
            f".client-band {{ background: {self.colour}; color: {self.text_colour}; }}\n"
            f".client-band a {{ color: {self.text_colour}; }}\n"
        ).encode()

    @property
    def has_stylesheet(self) -> bool:
        return self.colour is not None


def load_brand(
    client_id: str, colour: str | None, text_colour: str, logo_path: Path | None
) -> Brand:
    logo = logo_path.read_bytes() if logo_path else None
    digest = hashlib.sha256(f"{colour}|{text_colour}".encode() + (logo or b"")).hexdigest()
    return Brand(
        client_id=client_id,
        colour=colour,
        text_colour=text_colour,
        logo=logo,
        logo_type=logo_media_type(logo) if logo else None,
        version=digest[:12],
    )


class BrandingAssets:
    """Serves each branded client's stylesheet and logo."""

    def __init__(self, brands: Iterable[Brand]) -> None:
        self.brands: Mapping[str, Brand] = {brand.client_id: brand for brand in brands}

    def routes(self) -> list[Route]:
        return [
            Route("/branding/{client_id}/brand.css", self._stylesheet),
            Route("/branding/{client_id}/logo", self._logo),
        ]

    async def _stylesheet(self, request: Request) -> Response:
        brand = self.brands.get(request.path_params["client_id"])
        if brand is None or not brand.has_stylesheet:
            return Response(status_code=404)
        return Response(brand.stylesheet, media_type="text/css", headers=BRAND_CACHE)

    async def _logo(self, request: Request) -> Response:
        brand = self.brands.get(request.path_params["client_id"])
        if brand is None or brand.logo is None or brand.logo_type is None:
            return Response(status_code=404)
        return Response(brand.logo, media_type=brand.logo_type, headers=BRAND_CACHE)
