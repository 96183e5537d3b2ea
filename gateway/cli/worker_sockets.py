"""A listening socket per worker under `portvakt serve --workers N` on Linux.

uvicorn's supervisor binds one socket and every worker accepts from it. Whichever worker wakes
first takes every connection waiting, so a burst of keep-alive connections (a load balancer
filling its pool) can land 15 of 16 on one worker, which then carries that load for as long as
the connections live. With SO_REUSEPORT, each worker binds its own socket on the same port and
the kernel spreads new connections over them by address hash.

The price: when a worker dies, the connections still waiting in its own accept queue are reset.
uvicorn's supervisor still starts, watches and replaces the workers; only where their socket
comes from changes.
"""

from __future__ import annotations

import logging
import socket
import sys
from typing import Any

from uvicorn.config import STARTUP_FAILURE

log = logging.getLogger("uvicorn.error")
LOOPBACK_FOR_ANY = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}  # noqa: S104 - probing, not binding


class WorkerSockets(list[socket.socket]):
    """Given to uvicorn's supervisor where the socket it bound would go. The supervisor pickles
    it into each worker process it spawns; unpickled there, it is that worker's own socket.
    Empty in the supervisor, which so never holds a socket the kernel could hand connections to."""

    def __init__(self, host: str, port: int) -> None:
        super().__init__()
        self.host = host
        self.port = port

    def __reduce__(self) -> tuple[Any, ...]:
        return (bound_in_worker, (self.host, self.port))


def bound_in_worker(host: str, port: int) -> list[socket.socket]:
    try:
        return [reuse_port_socket(host, port)]
    except OSError as error:
        log.error("cannot listen on %s port %d: %s", host, port, error)
        sys.exit(STARTUP_FAILURE)  # so the supervisor stops rather than restart it in a loop


def reuse_port_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


def port_taken(host: str, port: int) -> str | None:
    """Why the workers could not have this port to themselves, if they could not.

    Binding tells apart a port held without SO_REUSEPORT. A connection attempt tells a port held
    by another `portvakt serve` (or anything else of this user's with SO_REUSEPORT): the workers
    would silently share its connections, config and all."""
    if port == 0:
        return "each worker would listen on a port of its own choosing; give a port number"
    try:
        reuse_port_socket(host, port).close()
    except OSError as error:
        return str(error)
    probe = LOOPBACK_FOR_ANY.get(host, host)
    try:
        socket.create_connection((probe, port), timeout=0.5).close()
    except OSError:
        return None
    return "another process already listens on it"


def run_workers(workers: int, options: dict[str, Any]) -> None:
    """uvicorn's supervisor over `workers` processes of gateway.cli.worker, each with its own
    socket."""
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    config = uvicorn.Config(
        "gateway.cli.worker:create_worker_app", factory=True, workers=workers, **options
    )
    log.info("Listening on %s port %d: %d workers, each on its own socket (SO_REUSEPORT)",
             config.host, config.port, workers)  # fmt: skip
    Multiprocess(config, sockets=WorkerSockets(config.host, config.port)).run()
