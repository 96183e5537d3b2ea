"""The one error every store raises when it cannot answer."""

from __future__ import annotations


class StoreUnavailable(Exception):
    """The shared store cannot be reached right now; retrying later may work."""
