"""Parsing what a request or an upstream's answer carries, so that no input can crash the
parser: integers of ASCII digits only (`str.isdigit` accepts `²`, `int()` accepts `١٢`), and
JSON of bounded nesting (Python's parser raises RecursionError, not ValueError, on deep
nesting). In `providers`, so that the gateway and the providers share it."""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Any

ASCII_DIGITS = re.compile(r"[0-9]+", re.ASCII)
# No request needs more: the deepest `claims` is {"id_token": {"acr": {"values": [...]}}}.
MAX_JSON_DEPTH = 16
# One left-to-right pass: a string (to its closing quote, or to the end) or a bracket.
JSON_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*+"?|[\[\]{}]', re.DOTALL)


class MalformedInput(ValueError):
    """The text is not what the parameter allows; the caller names the protocol's error."""


def ascii_integer(text: str) -> int:
    """A non-negative decimal integer written with ASCII digits and nothing else."""
    if not ASCII_DIGITS.fullmatch(text):
        raise MalformedInput("not a non-negative integer")
    return int(text)


def bounded_json(
    text: str | bytes, max_depth: int = MAX_JSON_DEPTH, refuse_constants: bool = False
) -> Any:
    """json.loads, refusing nesting deeper than `max_depth` before the parser recurses, and
    with `refuse_constants` the NaN and Infinity that Python's json accepts and JSON has not."""
    try:
        decoded = text.decode("utf-8") if isinstance(text, bytes) else text
    except UnicodeDecodeError:
        raise MalformedInput("not UTF-8") from None
    if json_depth(decoded) > max_depth:
        raise MalformedInput(f"JSON nested deeper than {max_depth} levels")
    try:
        return json.loads(decoded, parse_constant=_refused if refuse_constants else None)
    except (ValueError, RecursionError):
        raise MalformedInput("not valid JSON") from None


def _refused(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def json_depth(text: str) -> int:
    """The deepest nesting of arrays and objects, strings' contents not counted."""
    depth = deepest = 0
    for token in JSON_TOKENS.finditer(text):
        char = token.group()
        if char in ("[", "{"):
            depth += 1
            deepest = max(deepest, depth)
        elif char in ("]", "}"):
            depth -= 1
    return deepest


def compact_jwt_parts(
    token: str, refuse_constants: bool = False
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Header and payload of a compact JWS, read without verifying it and with bounded JSON,
    so that a JOSE library is only handed a token whose JSON cannot exhaust its parser; with
    `refuse_constants`, NaN and Infinity are not JSON either (`bounded_json`)."""
    segments = token.split(".")
    if len(segments) != 3:
        raise MalformedInput("not a compact JWS")
    header, payload = (
        bounded_json(_base64url(segment), refuse_constants=refuse_constants)
        for segment in segments[:2]
    )
    if not isinstance(header, dict) or not isinstance(payload, dict):
        raise MalformedInput("JWS header and payload must be JSON objects")
    return header, payload


def _base64url(segment: str) -> bytes:
    try:
        return base64.b64decode(segment + "=" * (-len(segment) % 4), b"-_", validate=True)
    except (binascii.Error, ValueError):
        raise MalformedInput("not base64url") from None
