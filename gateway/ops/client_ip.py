"""The citizen's IP address (BankID's `endUserIp`): the TCP peer, unless that peer is a
configured trusted proxy; then the nearest X-Forwarded-For hop that is not a trusted proxy."""

from __future__ import annotations

from collections.abc import Sequence
from ipaddress import IPv4Network, IPv6Network, ip_address

from starlette.requests import Request

Networks = Sequence[IPv4Network | IPv6Network]


def _trusted(address: str, proxies: Networks) -> bool:
    try:
        parsed = ip_address(address)
    except ValueError:
        return False
    return any(parsed in network for network in proxies)


def client_ip(request: Request, proxies: Networks) -> str:
    peer = request.client.host if request.client else ""
    if not proxies or not _trusted(peer, proxies):
        return peer  # a header from an untrusted peer is the citizen's own claim: ignored
    hops = [hop.strip() for hop in request.headers.get("x-forwarded-for", "").split(",")]
    for hop in reversed([hop for hop in hops if hop]):
        if not _trusted(hop, proxies):
            try:
                return str(ip_address(hop))
            except ValueError:
                return peer
    return peer
