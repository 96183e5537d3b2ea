"""The keyboard focus indicator in Chromium: on every page of a login and a logout, every element
reached by Tab shows a focus indicator (outline or ring, at least 2 px) with a colour of at least
3:1 contrast against what surrounds the element and against the element's own colours
(WCAG 2.1 SC 1.4.11 and 2.4.7). The contrast is computed here from the computed style."""

from __future__ import annotations

import re
from typing import Any

from playwright.sync_api import Page, expect

from tests.browser.conftest import CitizenFactory

MIN_CONTRAST = 3.0
MIN_WIDTH_PX = 2.0
RGB = re.compile(r"rgba?\(([\d.]+),\s*([\d.]+),\s*([\d.]+)(?:,\s*([\d.]+))?\)")

FOCUSED_STYLE = """() => {
    const el = document.activeElement;
    const opaque = (colour) => colour && !/rgba\\(.*,\\s*0\\)$/.test(colour)
        && colour !== "transparent";
    let surround = "rgb(255, 255, 255)";
    for (let node = el.parentElement; node; node = node.parentElement) {
        const background = getComputedStyle(node).backgroundColor;
        if (opaque(background)) { surround = background; break; }
    }
    const style = getComputedStyle(el);
    return {
        element: el.outerHTML.slice(0, 120), tag: el.tagName.toLowerCase(),
        outline_style: style.outlineStyle, outline_width: style.outlineWidth,
        outline_colour: style.outlineColor, box_shadow: style.boxShadow,
        background: opaque(style.backgroundColor) ? style.backgroundColor : null,
        text: style.color, border: style.borderTopColor, surround: surround,
    };
}"""


def luminance(colour: tuple[float, float, float]) -> float:
    linear = [
        c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4
        for c in (channel / 255 for channel in colour)
    ]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(first: tuple[float, float, float], second: tuple[float, float, float]) -> float:
    light, dark = sorted((luminance(first), luminance(second)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def rgb(text: str) -> tuple[float, float, float]:
    found = RGB.search(text)
    assert found is not None, text
    return float(found[1]), float(found[2]), float(found[3])


def indicator_colours(style: dict[str, Any]) -> list[tuple[float, float, float]]:
    """The colours of the focus indicator's parts at least 2 px wide: the outline and any
    box-shadow ring (`<colour> 0px 0px <blur> <spread>`)."""
    colours = []
    if style["outline_style"] != "none" and float(style["outline_width"][:-2]) >= MIN_WIDTH_PX:
        colours.append(rgb(style["outline_colour"]))
    for ring in re.findall(r"(rgba?\([^)]*\))\s+0px 0px [\d.]+px ([\d.]+)px", style["box_shadow"]):
        if float(ring[1]) >= MIN_WIDTH_PX:
            colours.append(rgb(ring[0]))
    return colours


def neighbours(style: dict[str, Any]) -> dict[str, tuple[float, float, float]]:
    """What the indicator sits next to: the surrounding background, and the element's own
    background (a button) or, without one, its text (a link)."""
    own = style["background"] or (style["text"] if style["tag"] == "a" else None)
    found = {"surround": rgb(style["surround"])}
    if own is not None:
        found["own"] = rgb(own)
    return found


def focus_problems(page: Page, name: str) -> list[str]:
    """Tab through the whole page once; what each focused element's indicator lacks."""
    problems, seen = [], set()
    for _ in range(40):
        page.keyboard.press("Tab")
        style = page.evaluate(FOCUSED_STYLE)
        if style["tag"] == "body" or style["element"] in seen:
            break
        seen.add(style["element"])
        colours = indicator_colours(style)
        for what, neighbour in neighbours(style).items():
            best = max((contrast(c, neighbour) for c in colours), default=0.0)
            if best < MIN_CONTRAST:
                problems.append(f"{name}: {style['element']} {best:.2f}:1 against its {what}")
    assert seen, f"{name}: nothing took the focus"
    return problems


def visit(page: Page, name: str, found: list[str]) -> None:
    page.evaluate("document.activeElement && document.activeElement.blur()")
    found.extend(focus_problems(page, name))


def test_every_focusable_element_shows_a_focus_indicator_with_contrast(
    citizen: CitizenFactory,
) -> None:
    person = citizen("sv")
    problems: list[str] = []
    page = person.goto("/demo/")
    visit(page, "demo", problems)
    page.get_by_role("button", name="Logga in").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Välj e-legitimation")
    visit(page, "chooser", problems)
    page.get_by_role("button", name=re.compile("Testlegitimation")).click()
    visit(page, "sandbox", problems)
    page.get_by_label("Personnummer").fill("199908072391")
    page.get_by_label("Personnummer").press("Enter")
    expect(page.get_by_text("Du är inloggad")).to_be_visible()
    visit(page, "demo-logged-in", problems)
    page = person.goto("/logout")
    visit(page, "logout-confirm", problems)
    page.get_by_role("button", name="Logga ut").click()
    visit(page, "logged-out", problems)
    page = person.goto("/login/no-such-login")
    visit(page, "error", problems)
    assert problems == []
