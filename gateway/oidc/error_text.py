"""Client input quoted in an OAuth `error_description`, which RFC 6749 §5.2 limits to the
characters %x20-21 / %x23-5B / %x5D-7E (authlib's errors refuse any other with ValueError)."""

from __future__ import annotations

import re

FORBIDDEN = re.compile(r"[^\x20-\x21\x23-\x5B\x5D-\x7E]")
SHOWN_LENGTH = 40


def quoted(value: str) -> str:
    """`value` as it may appear in an error_description: cut short, other characters as '?'."""
    return FORBIDDEN.sub("?", value[:SHOWN_LENGTH])
