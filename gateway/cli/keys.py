"""The `portvakt keys ...` subcommands: find the directory, run the operation, say what happened."""

from __future__ import annotations

import argparse
import datetime
import sys
from pathlib import Path

from cryptography import x509

from gateway.oidc.key_rotation import (
    RotationRefused,
    generate,
    listing,
    rotate,
    write_saml_pair,
)
from gateway.settings import KeySettings, Settings, SettingsError, load_settings
from providers.base import PublishesMetadata


def keys_command(args: argparse.Namespace) -> int:
    if args.keys_command == "saml":
        return _saml_pair(args)
    settings = _settings_with_key_dir(args.config) if args.config is not None else None
    if isinstance(settings, int):
        return settings
    key_settings = settings.keys if settings else KeySettings(dir=args.dir)
    directory = key_settings.dir
    assert directory is not None
    try:
        if args.keys_command == "generate":
            for path in generate(directory):
                print(f"wrote {path}")
        elif args.keys_command == "rotate":
            _rotate(key_settings, directory, args.now)
        else:
            _list(directory, settings)
    except RotationRefused as refusal:
        print(f"portvakt: {refusal}", file=sys.stderr)
        return 1
    except OSError as error:
        print(f"portvakt: {directory}: {error}", file=sys.stderr)
        return 2
    return 0


def _settings_with_key_dir(config: Path) -> Settings | int:
    """The settings of `config`, or the exit status after saying what is wrong with them."""
    try:
        settings = load_settings(config)
    except SettingsError as error:
        print(f"portvakt: {error.source}: {'; '.join(error.problems)}", file=sys.stderr)
        return 2
    if settings.keys.dir is None:
        print(f"portvakt: {config}: keys.dir is not set", file=sys.stderr)
        return 2
    return settings


def _rotate(key_settings: KeySettings, directory: Path, now: bool) -> None:
    done = rotate(
        directory, key_settings.reload_seconds, key_settings.retired_keep_seconds, now=now
    )
    print(f"signing:   {done.promoted}")
    print(f"retired:   {', '.join(done.retired)}")
    print(f"next:      {done.created} (published now)")
    if done.removed:
        print(f"removed:   {', '.join(done.removed)}")
    print(f"Every instance signs with {done.promoted} within {key_settings.reload_seconds} s.")


def _list(directory: Path, settings: Settings | None) -> None:
    lines = listing(directory)
    print("\n".join(lines) if lines else f"{directory}: no keys")
    if settings is not None:
        _list_published_certificates(settings)


def _saml_pair(args: argparse.Namespace) -> int:
    if args.days < 1:
        print("portvakt: --days must be at least 1", file=sys.stderr)
        return 2
    try:
        base = write_saml_pair(
            args.dir, args.provider, args.use, args.days, args.common_name or args.provider
        )
    except OSError as error:
        print(f"portvakt: {args.dir}: {error}", file=sys.stderr)
        return 2
    print(f"wrote {base}.key and {base}.crt; configure them as providers.{args.provider}:")
    print(f"  {args.use}:")
    print(f"    key: {base}.key")
    print(f"    cert: {base}.crt")
    return 0


def _list_published_certificates(settings: Settings) -> None:
    """The certificates federations hold in our metadata, so a rollover can be planned."""
    now = datetime.datetime.now(datetime.UTC)
    for name, config in settings.providers.items():
        if not isinstance(config, PublishesMetadata):
            continue
        for label, cert in config.published_certificates():
            try:
                certificate = x509.load_pem_x509_certificate(Path(cert).read_bytes())
            except (OSError, ValueError) as error:
                print(f"{config.type} {name}.{label}: cannot read {cert}: {error}")
                continue
            expiry = certificate.not_valid_after_utc
            print(
                f"{config.type} {name}.{label:<24} {cert.name}  expires {expiry:%Y-%m-%d} "
                f"(in {(expiry - now).days} days)"
            )
