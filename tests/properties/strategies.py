"""Hypothesis strategies for hostile HTTP: parameter values, headers and bodies, always with the
valid-looking values mixed in so that a probe gets past an endpoint's first check."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode

from hypothesis import strategies as st

# Characters for which str.isdigit() is true but int() refuses ("²", "①": not decimal), and
# decimal digits of other scripts that int() accepts ("٣").
NOT_DECIMAL_DIGITS = "²³¹⁰⁹₀₉①⑨"
OTHER_SCRIPT_DIGITS = "٣۴߅०১੨૩୪௫౬೭൮๙໐༡၂០᠑０９"
ODD_DIGITS = NOT_DECIMAL_DIGITS + OTHER_SCRIPT_DIGITS
INTERESTING = (
    "",
    " ",
    "0",
    "-1",
    "1e9",
    "9" * 400,
    "null",
    "true",
    "{}",
    "[]",
    '{"a":',
    "%",
    "%00",
    "%FF",
    "\x00",
    "\ufeff",
    "ö",
    "å" * 300,
    "😀",
    "\ud7ff",
    "' OR '1'='1",
    "<script>",
    "../../etc",
    "a" * 5000,
    "openid",
    "S256",
    "code",
    "none",
    "login",
)


def deep_json(depth: int, kind: str) -> str:
    """Nested JSON of `depth` levels: lists, objects, or claim-shaped objects."""
    if kind == "list":
        return "[" * depth + "]" * depth
    if kind == "object":
        return '{"a":' * depth + "1" + "}" * depth
    return '{"id_token":{"acr":' + '{"values":' * depth + "[]" + "}" * depth + "}}"


def deep_values(max_chars: int = 4096) -> st.SearchStrategy[str]:
    """Deeply nested JSON of at most `max_chars` (a parameter longer than 4096 is refused)."""
    per_level = {"list": 2, "object": 6, "claims": 11}  # the first is the simplest to Hypothesis

    def nested(kind: str) -> st.SearchStrategy[str]:
        deepest = max(1, (max_chars - 30) // per_level[kind])  # often as deep as it fits
        depths = st.one_of(st.just(deepest), st.integers(1, deepest))
        return depths.map(lambda depth: deep_json(depth, kind))

    return st.sampled_from(list(per_level)).flatmap(nested)


def odd_digits() -> st.SearchStrategy[str]:
    """Digits as str.isdigit() sees them, alone or mixed with ASCII ones."""
    mixed = st.text(alphabet=ODD_DIGITS + "0123456789", min_size=1, max_size=6)
    return st.one_of(
        st.sampled_from(NOT_DECIMAL_DIGITS), st.sampled_from(OTHER_SCRIPT_DIGITS), mixed
    )


def fuzz_text(max_size: int = 60) -> st.SearchStrategy[str]:
    """Any text: Unicode, control characters, odd digits, deep JSON, long runs."""
    return st.one_of(
        st.text(max_size=max_size),
        st.sampled_from(INTERESTING),
        odd_digits(),
        st.integers(min_value=-(2**70), max_value=2**70).map(str),
        st.binary(max_size=max_size).map(lambda b: b.decode("latin-1")),
        deep_values(),
    )


def value_or_fuzz(*valid: str) -> st.SearchStrategy[str]:
    """Mostly one of the valid values, otherwise fuzz."""
    choices = [st.sampled_from(valid)] * 2 if valid else []
    return st.one_of(*choices, fuzz_text())


def json_values(max_leaves: int = 20) -> st.SearchStrategy[Any]:
    leaves = st.one_of(
        st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), fuzz_text(20)
    )
    return st.recursive(
        leaves,
        lambda inner: st.one_of(
            st.lists(inner, max_size=4), st.dictionaries(fuzz_text(12), inner, max_size=4)
        ),
        max_leaves=max_leaves,
    )


# -- headers ------------------------------------------------------------------------------------

# What h11 lets a client send in a header value: no control characters but tab.
HEADER_TEXT = st.characters(
    codec="latin-1", exclude_characters="\r\n\x00", exclude_categories=["Cc"]
) | st.just("\t")


def header_value(*valid: str) -> st.SearchStrategy[bytes]:
    raw = st.text(alphabet=HEADER_TEXT, max_size=80).map(lambda t: t.strip().encode("latin-1"))
    utf8 = st.text(alphabet=st.characters(exclude_categories=["Cc", "Cs"]), max_size=30).map(
        lambda t: t.strip().encode()
    )
    return st.one_of(st.sampled_from([v.encode() for v in valid] or [b""]), raw, utf8)


def sendable(value: bytes) -> bytes:
    """What an HTTP/1.1 client can send as a header value (RFC 9110 §5.5): no control
    characters but tab, no blanks around it. The server never sees anything else."""
    kept = bytes(b for b in value if (b >= 0x20 and b != 0x7F) or b == 0x09)
    return kept.strip(b" \t")


def basic_credentials(
    client_ids: tuple[str, ...], secrets: dict[str, str]
) -> st.SearchStrategy[bytes]:
    pairs = st.one_of(
        st.sampled_from([f"{c}:{secrets.get(c, '')}" for c in client_ids]),
        st.builds(lambda c, s: f"{c}:{s}", value_or_fuzz(*client_ids), fuzz_text(20)),
        fuzz_text(30),
    )
    encoded = pairs.map(lambda p: base64.b64encode(p.encode()).decode())
    raw_b64 = st.binary(max_size=40).map(lambda b: base64.b64encode(b).decode())  # not UTF-8
    garbage = st.one_of(
        st.sampled_from(["x", "!!!notbase64", "é", "abc", "==", "YWJj=", "a b"]),
        st.text(alphabet=HEADER_TEXT, max_size=40),
    )
    scheme = st.sampled_from(["Basic", "basic", "BASIC", "Basic  ", "Bearer"])
    return st.builds(
        lambda s, v: f"{s} {v}".encode("latin-1", "replace"),
        scheme,
        st.one_of(garbage, encoded, raw_b64, garbage, st.just("")),
    )


def bearer(*tokens: str) -> st.SearchStrategy[bytes]:
    scheme = st.sampled_from(["Bearer", "bearer", "BEARER", "Bearer  ", "Basic", "DPoP", ""])
    value = st.one_of(st.sampled_from(tokens or ("x",)), st.text(alphabet=HEADER_TEXT, max_size=60))
    return st.builds(lambda s, v: f"{s} {v}".strip().encode("latin-1"), scheme, value)


CONTENT_TYPES = (
    "application/x-www-form-urlencoded",
    "application/x-www-form-urlencoded; charset=latin-1",
    "application/json",
    "application/json; charset=utf-16",
    "multipart/form-data",
    "multipart/form-data; boundary=x",
    "text/plain",
    "application/xml",
    "",
    "*/*",
    ";;;",
    "application/x-www-form-urlencoded; boundary",
    "multipart/form-data; boundary=",
)
ACCEPTS = (
    "text/html",
    "application/json",
    "*/*",
    "application/json, text/html;q=0.1",
    "application/jwt",
    "",
    "text/html;q=ö",
)
COOKIE_NAMES = (
    "pv_browser",
    "pv_session",
    "pv_lang",
    "pv_service",
    "pv_last_eid",
    "pv_device_bankid",
)


def cookie_header(real: dict[str, str]) -> st.SearchStrategy[bytes]:
    """Real cookies of a live browser, fuzzed ones under the gateway's names, raw garbage."""
    cookie_value = st.one_of(
        st.sampled_from(list(real.values()) or [""]),
        st.text(alphabet=HEADER_TEXT, max_size=60).filter(lambda v: ";" not in v),
    )
    pair = st.builds(
        lambda n, v: f"{n}={v}",
        value_or_fuzz(*COOKIE_NAMES).filter(lambda n: all(c not in n for c in "=;\r\n\x00")),
        cookie_value,
    )
    raw = st.text(alphabet=HEADER_TEXT, max_size=80)
    as_is = "; ".join(f"{k}={v}" for k, v in real.items())
    built = st.lists(pair, max_size=4).map("; ".join)
    return st.one_of(st.just(as_is), built, raw).map(lambda text: text.encode("latin-1", "replace"))


def headers(
    real_cookies: dict[str, str],
    authorization: st.SearchStrategy[bytes] | None = None,
    content_type: str | None = None,
) -> st.SearchStrategy[dict[str, bytes]]:
    """Optional Authorization, Cookie, Content-Type, Accept, Accept-Language, User-Agent, ..."""
    names: dict[str, st.SearchStrategy[bytes]] = {
        "cookie": cookie_header(real_cookies),
        "content-type": header_value(*CONTENT_TYPES),
        "accept": header_value(*ACCEPTS),
        "accept-language": header_value("sv", "en", "sv-SE,en;q=0.5", "*", "xx;q=abc"),
        "user-agent": header_value("Mozilla/5.0 (iPhone)", "curl/8"),
        "x-forwarded-for": header_value("127.0.0.1", "::1", "999.1.1.1"),
        "origin": header_value("http://127.0.0.1:9000", "null"),
        "authorization": bearer() if authorization is None else authorization,
    }
    chosen = st.fixed_dictionaries({}, optional=names).map(
        lambda made: {name: sendable(value) for name, value in made.items()}
    )
    if content_type is None:
        return chosen
    # The content type the body was made for, unless the fuzz replaced it.
    return chosen.map(lambda h: {"content-type": content_type.encode(), **h})


# -- bodies -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Body:
    content: bytes
    content_type: str | None  # what it was made as; the headers may claim otherwise


Pairs = list[tuple[str, str]]


def encode_form(pairs: Pairs) -> bytes:
    return urlencode(pairs, encoding="utf-8", errors="surrogatepass").encode("ascii")


def form_body(pairs: st.SearchStrategy[Pairs]) -> st.SearchStrategy[Body]:
    return pairs.map(lambda p: Body(encode_form(p), "application/x-www-form-urlencoded"))


def bodies(pairs: st.SearchStrategy[Pairs]) -> st.SearchStrategy[Body]:
    """Form (mostly), JSON, raw bytes, non-UTF-8, huge, deeply nested, multipart with a file."""
    as_json = st.one_of(
        pairs.map(lambda p: json.dumps(dict(p)).encode("utf-8", "surrogatepass")),
        json_values().map(lambda v: json.dumps(v).encode("utf-8", "surrogatepass")),
        deep_values(200_000).map(str.encode),
    ).map(lambda c: Body(c, "application/json"))
    raw = st.one_of(
        st.binary(max_size=300),
        st.sampled_from([b"\xff\xfe", b"a=%FF&b=%C3", b"=&=&&==", b"%", b"a=1&a=2", b"\x00=\x00"]),
        pairs.map(lambda p: "&".join(f"{k}={v}" for k, v in p).encode("latin-1", "replace")),
        st.sampled_from([1, 2**16, 2**20, 5 * 2**20]).map(lambda n: b"a=" + b"x" * n),
        st.integers(min_value=1, max_value=70_000).map(lambda n: b"a&" * n),
    ).map(lambda c: Body(c, "application/x-www-form-urlencoded"))
    multipart = pairs.map(_multipart)
    return st.one_of(form_body(pairs), as_json, raw, multipart, st.just(Body(b"", None)))


def _multipart(pairs: Pairs) -> Body:
    boundary = "pvboundary"
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{quote(k)}"\r\n\r\n{v}\r\n'
        for k, v in pairs
    ]
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="f"; filename="a.txt"\r\n'
        "Content-Type: text/plain\r\n\r\nabc\r\n"
    )
    content = ("".join(parts) + f"--{boundary}--\r\n").encode("utf-8", "surrogatepass")
    return Body(content, f"multipart/form-data; boundary={boundary}")


# How each parameter of a request is made: mostly valid-looking, so that a probe usually gets
# past the checks before the one whose input is odd.
HOW = ("valid",) * 14 + ("fuzz", "fuzz", "absent", "absent", "twice")
HOSTILE = ("odd", "odd", "fuzz", "absent", "twice")


def parameters(
    valid: dict[str, st.SearchStrategy[str]],
    extra_names: tuple[str, ...] = (),
    focus: str | None = None,
    canonical: dict[str, str] | None = None,
) -> st.SearchStrategy[Pairs]:
    """The endpoint's parameters, each valid, fuzzed, left out or repeated; plus strangers.
    With a `focus`, that one parameter is hostile (its odd values, fuzz, absent, twice) and the
    others keep their `canonical` value, so that the probe reaches the check of the focus."""

    @st.composite
    def build(draw: st.DrawFn) -> Pairs:
        pairs: Pairs = []
        for name, values in valid.items():
            if focus is not None and name != focus:
                if canonical and name in canonical:
                    pairs.append((name, canonical[name]))
                continue
            how = draw(st.sampled_from(HOSTILE if name == focus else HOW))
            if how == "absent":
                continue
            pairs.append((name, draw(fuzz_text() if how == "fuzz" else values)))
            if how == "twice":
                pairs.append((name, draw(values)))
        if focus is None:
            names = st.one_of(st.sampled_from(extra_names or ("x",)), fuzz_text(20))
            pairs += draw(st.lists(st.tuples(names, fuzz_text()), max_size=2))
        return pairs

    return build()


@dataclass(frozen=True)
class Probe:
    """One request as the property sends it."""

    method: str
    path: str
    query: Pairs = field(default_factory=list)
    headers: dict[str, bytes] = field(default_factory=dict)
    body: Body | None = None

    @property
    def target(self) -> str:
        """The path with the query encoded here, byte for byte as generated."""
        return f"{self.path}?{encode_form(self.query).decode()}" if self.query else self.path

    def options(self) -> dict[str, Any]:
        options: dict[str, Any] = {"headers": dict(self.headers)}
        if self.body is not None:
            options["content"] = self.body.content
        return options
