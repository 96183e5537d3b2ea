"""`portvakt serve | check-config | keys | saml-metadata | hash-secret`: the operator's tool."""

from __future__ import annotations

import argparse
import errno
import hashlib
import os
import socket
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gateway.demo.defaults import DEMO_REDIRECT_URIS, demo_settings
from gateway.oidc.keys import KeysUnavailable, load_signing_keys
from gateway.ops.log_format import configure_logging
from gateway.ops.metrics import MULTIPROCESS_DIRECTORY
from gateway.settings import Settings, SettingsError, load_settings
from providers.base import PublishesMetadata

if TYPE_CHECKING:  # starlette and the app load only for `serve`: the other commands stay quick
    from starlette.applications import Starlette

# A socket per worker, which the kernel balances, where SO_REUSEPORT does that (Linux);
# elsewhere the workers share uvicorn's one socket.
REUSE_PORT = sys.platform == "linux"

# In-flight requests get this long to finish on SIGTERM; pending logins live in the store anyway.
GRACEFUL_SHUTDOWN_SECONDS = 20


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="portvakt", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the gateway")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=port_number, default=8080)
    serve.add_argument("--config", type=Path, help="YAML file; omitted: the embedded demo")
    serve.add_argument("--issuer", help="public base URL; default http://HOST:PORT")
    serve.add_argument(
        "--workers",
        type=int,
        default=1,
        help="worker processes (one per core); more than one needs store, secret_key, keys.dir",
    )
    serve.add_argument("--log-level", default="info")
    serve.add_argument(
        "--log-format", choices=["text", "json"], default="text", help="json: one object a line"
    )
    serve.add_argument(
        "--audit-log", type=Path, help="write the audit stream (JSON lines) to this file"
    )
    check = commands.add_parser("check-config", help="validate a configuration file")
    check.add_argument("file", type=Path)
    saml = commands.add_parser(
        "saml-metadata", help="print a SAML provider's signed SP metadata (for the federation)"
    )
    saml.add_argument("provider", help="the name of a type: saml entry under providers:")
    saml.add_argument("--config", type=Path, required=True)
    keys = commands.add_parser("keys", help="make, rotate and list signing keys")
    key_commands = keys.add_subparsers(dest="keys_command", required=True)
    for action, text in (
        ("generate", "write the first signing key and the next one into the key directory"),
        ("rotate", "next key signs, signing key retires, a new next key is published"),
        ("list", "show the keys in the directory (and the SAML certificates in --config)"),
    ):
        command = key_commands.add_parser(action, help=text)
        where = command.add_mutually_exclusive_group(required=True)
        where.add_argument("--config", type=Path, help="read keys.dir and its settings here")
        where.add_argument("--dir", type=Path, help="the key directory itself")
        if action == "rotate":
            command.add_argument(
                "--now",
                action="store_true",
                help="promote the next key even if it was published only moments ago",
            )
    saml_pair = key_commands.add_parser(
        "saml", help="write a SAML SP key pair (key + self-signed certificate) for a provider"
    )
    saml_pair.add_argument("provider")
    saml_pair.add_argument("--dir", type=Path, required=True)
    saml_pair.add_argument("--use", choices=["signing", "encryption"], required=True)
    saml_pair.add_argument("--days", type=int, default=1095, help="certificate validity")
    saml_pair.add_argument("--common-name", help="default: the provider name")
    commands.add_parser(
        "hash-secret",
        help="read a client secret on stdin, print the client_secret_sha256 to configure",
    )
    args = parser.parse_args(argv)
    if args.command == "hash-secret":
        return hash_secret(sys.stdin.read().rstrip("\r\n"))
    if args.command == "check-config":
        return check_config(args.file)
    if args.command == "keys":
        from gateway.cli.keys import keys_command

        return keys_command(args)
    if args.command == "saml-metadata":
        return saml_metadata(args.config, args.provider)
    return run(args)


def port_number(text: str) -> int:
    if not text.isdigit() or int(text) > 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number (0-65535)")
    return int(text)


def check_config(path: Path) -> int:
    from gateway.cli.check_config import deeper_problems

    try:
        settings = load_settings(path)
    except SettingsError as error:
        return report(error)
    problems = deeper_problems(settings)
    if problems:
        return report(SettingsError(str(path), problems))
    print(f"{path}: OK ({len(settings.providers)} providers, {len(settings.clients)} clients)")
    return 0


def hash_secret(secret: str) -> int:
    """A fast hash is enough only for a random secret: require one long enough to be."""
    if len(secret) < 32:
        print(
            "portvakt: a client secret must be random and at least 32 characters "
            "(for example: openssl rand -hex 32)",
            file=sys.stderr,
        )
        return 2
    print(hashlib.sha256(secret.encode()).hexdigest())
    return 0


def saml_metadata(path: Path, name: str) -> int:
    try:
        settings = load_settings(path)
    except SettingsError as error:
        return report(error)
    config = settings.providers.get(name)
    if not isinstance(config, PublishesMetadata):
        publishing = [n for n, p in settings.providers.items() if isinstance(p, PublishesMetadata)]
        print(
            f"portvakt: {name!r} is not a provider that publishes SP metadata in {path} "
            f"(those that do: {', '.join(publishing) or 'none'})",
            file=sys.stderr,
        )
        return 2
    try:
        metadata = config.published_metadata(name, settings.issuer)
    except (OSError, ValueError) as error:
        print(f"portvakt: providers.{name}: cannot read its keys: {error}", file=sys.stderr)
        return 2
    sys.stdout.write(metadata.decode())
    sys.stdout.write("\n")
    return 0


def _settings_and_app(
    args: argparse.Namespace, issuer: str
) -> tuple[Settings, Starlette | None] | int:
    """The settings to serve and, with one worker, the app; or the exit status after saying
    what keeps them from loading."""
    from gateway.app import create_app

    try:
        if args.config is None:
            settings = demo_settings(issuer)
        else:
            settings = load_settings(args.config, {"issuer": args.issuer} if args.issuer else None)
        # With workers, each builds its own app; here only check what they will load.
        app = create_app(settings) if args.workers == 1 else None
        if app is None:
            load_signing_keys(settings.keys.dir, settings.environment != "production")
    except SettingsError as error:
        return report(error)
    except (KeysUnavailable, OSError) as error:
        print(f"portvakt: keys.dir: cannot load the signing keys: {error}", file=sys.stderr)
        return 2
    return settings, app


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from gateway.cli.worker_sockets import run_workers

    if args.workers < 1:
        print("portvakt: --workers must be at least 1", file=sys.stderr)
        return 2
    configure_logging(args.log_level, args.log_format, args.audit_log)
    issuer = args.issuer or f"http://{_url_host(args.host)}:{args.port}"
    loaded = _settings_and_app(args, issuer)
    if isinstance(loaded, int):
        return loaded
    settings, app = loaded
    if args.workers > 1:
        refusal = workers_refusal(settings, args.config)
        if refusal:
            print(f"portvakt: --workers {args.workers}: {refusal}", file=sys.stderr)
            return 2
    unusable = listen_refusal(args.host, args.port, args.workers)
    if unusable:
        print(f"portvakt: cannot listen on {args.host} port {args.port}: {unusable}",
              file=sys.stderr)  # fmt: skip
        return 2
    announce(settings, args.config is None)
    options: dict[str, Any] = {
        "host": args.host,
        "port": args.port,
        "log_level": args.log_level,
        "access_log": False,  # gateway.ops.access_log writes paths without query strings
        "log_config": None,  # uvicorn's own lines go through our handler and format
        "proxy_headers": False,
        "timeout_graceful_shutdown": GRACEFUL_SHUTDOWN_SECONDS,
    }
    if app is not None:
        uvicorn.run(app, **options)
        return 0
    # Each worker process builds its own app from the same file (gateway.cli.worker) and writes its
    # metrics where any worker answering /metrics sums them.
    with tempfile.TemporaryDirectory(prefix="portvakt-metrics-") as metrics_directory:
        os.environ.update(worker_environment(args, issuer))
        os.environ[MULTIPROCESS_DIRECTORY] = metrics_directory
        if REUSE_PORT:
            run_workers(args.workers, options)
        else:
            uvicorn.run(
                "gateway.cli.worker:create_worker_app",
                factory=True,
                workers=args.workers,
                **options,
            )
    return 0


def listen_refusal(host: str, port: int, workers: int) -> str | None:
    """Why serve could not listen on host:port, with the way out, found before any banner
    (else uvicorn's own error would follow the banner, after the app was built)."""
    from gateway.cli.worker_sockets import port_taken

    error = bind_error(host, port)
    if error is not None and error.errno == errno.EADDRINUSE:
        return f"another program already uses it. {_another_port(host, port)}"
    if error is not None:
        return error.strerror or str(error)
    if workers > 1 and REUSE_PORT:
        return port_taken(host, port)  # also a port held by someone with SO_REUSEPORT, or 0
    return None


def _another_port(host: str, port: int) -> str:
    free = (p for p in range(port + 1, min(port + 21, 65536)) if bind_error(host, p) is None)
    alternative = next(free, None)
    if alternative is None:
        return "Choose another port: --port N (make run PORT=N)"
    return f"Choose another port, e.g. --port {alternative} (make run PORT={alternative})"


def bind_error(host: str, port: int) -> OSError | None:
    """What binding as uvicorn does (SO_REUSEADDR, IPv6 for an address with ':') raises."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            return error
    return None


def workers_refusal(settings: Settings, config: Path | None) -> str | None:
    """What would make worker processes disagree with each other, if anything."""
    if config is None:
        return "the embedded demo keeps logins in one process's memory; use --config"
    if settings.store is None:
        return "each worker would have its own in-memory store; configure store.url (Redis)"
    if settings.keys.dir is None:
        return "each worker would sign with its own in-memory key; configure keys.dir"
    for key in ("secret_key", "subject_salt"):
        if getattr(settings, key) is None:
            return f"each worker would make its own {key}; configure {key}"
    return None


def worker_environment(args: argparse.Namespace, issuer: str) -> dict[str, str]:
    environment = {
        "PORTVAKT_CONFIG": str(Path(args.config).resolve()),
        "PORTVAKT_LOG_LEVEL": args.log_level,
        "PORTVAKT_LOG_FORMAT": args.log_format,
    }
    if args.issuer:
        environment["PORTVAKT_ISSUER"] = issuer
    if args.audit_log:
        environment["PORTVAKT_AUDIT_LOG"] = str(Path(args.audit_log).resolve())
    return environment


def report(error: SettingsError) -> int:
    print(f"portvakt: the configuration in {error.source} cannot be used:", file=sys.stderr)
    for problem in error.problems:
        print(f"  - {problem}", file=sys.stderr)
    return 2


def announce(settings: Settings, demo: bool) -> None:
    print(f"Portvakt is starting. Issuer: {settings.issuer}")
    print(f"  Discovery: {settings.issuer}/.well-known/openid-configuration")
    if demo:
        print("  Embedded demo settings: in-memory store, sandbox provider (TEST identities),")
        print("  BankID (test) against the bundled BankID RP API v6.0 simulator,")
        print("  EU wallet (test) against the bundled wallet simulator (OpenID4VP, test PIDs).")
        print("  Demo client: client_id=demo client_secret=demo-secret")
        print("               public PKCE client: client_id=demo-spa")
        print(f"               redirect_uris: {', '.join(DEMO_REDIRECT_URIS)}")
        print(f"  Try it: open {settings.issuer}/demo/ and press 'Logga in'.")
        print(f"  Contact centre (CIBA): {settings.issuer}/demo/contact-centre")


def _url_host(host: str) -> str:
    if host in ("0.0.0.0", "::"):  # noqa: S104 - mapping a bind-all address to a URL
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host


if __name__ == "__main__":
    sys.exit(main())
