"""SAML metadata in (verified aggregates, refresh, disk cache) and out (signed SP metadata)."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest
from lxml import etree
from onelogin.saml2.utils import OneLogin_Saml2_Utils
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.cli.main import main
from providers.saml.metadata import MetadataRejected, MetadataSource, read_federation
from providers.saml.xml import VerificationKey
from tests.doubles.saml_idp import NS, FakeIdP, KeyPairPaths, aggregate, make_key_pair
from tests.harness import ServedApp, free_port, running_gateway

IDP = "https://idp.test.example/idp"


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, KeyPairPaths]:
    folder = tmp_path_factory.mktemp("md-keys")
    return {name: make_key_pair(folder, name) for name in ("idp", "fed", "other", "sign", "enc")}


@pytest.fixture(scope="module")
def idp(keys: dict[str, KeyPairPaths]) -> FakeIdP:
    return FakeIdP(IDP, "https://idp.test.example", keys["idp"])


def signer(keys: dict[str, KeyPairPaths], name: str = "fed") -> VerificationKey:
    return VerificationKey.from_pem_file(keys[name].cert)


def test_a_signed_aggregate_yields_its_idps(idp: FakeIdP, keys: dict[str, KeyPairPaths]) -> None:
    federation = read_federation(aggregate([idp.entity_descriptor()], keys["fed"]), signer(keys))
    found = federation.idps[IDP]
    assert found.sso and found.slo and found.signing_keys
    assert "http://id.elegnamnden.se/loa/1.0/loa3" in found.assurance
    assert found.display["sv"] == "Test-IdP"
    assert "urn:oid:1.2.752.29.4.13" in found.principal_selection


def test_unsigned_metadata_is_refused(idp: FakeIdP, keys: dict[str, KeyPairPaths]) -> None:
    with pytest.raises(MetadataRejected, match="not signed"):
        read_federation(aggregate([idp.entity_descriptor()], None), signer(keys))


def test_metadata_signed_by_another_key_is_refused(
    idp: FakeIdP, keys: dict[str, KeyPairPaths]
) -> None:
    with pytest.raises(MetadataRejected, match="does not verify"):
        read_federation(aggregate([idp.entity_descriptor()], keys["other"]), signer(keys))


def test_tampered_metadata_is_refused(idp: FakeIdP, keys: dict[str, KeyPairPaths]) -> None:
    signed = aggregate([idp.entity_descriptor()], keys["fed"])
    tampered = signed.replace(b"https://idp.test.example/sso", b"https://evil.example/sso")
    with pytest.raises(MetadataRejected, match="does not verify"):
        read_federation(tampered, signer(keys))


def test_expired_metadata_is_refused(idp: FakeIdP, keys: dict[str, KeyPairPaths]) -> None:
    old = aggregate([idp.entity_descriptor()], keys["fed"], valid_for=dt.timedelta(hours=-1))
    with pytest.raises(MetadataRejected, match="expired"):
        read_federation(old, signer(keys))


class MetadataServer:
    """The federation's metadata URL, serving whatever the test puts in `document`."""

    def __init__(self, document: bytes) -> None:
        self.document = document
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/md.xml"

        async def serve(_request: Request) -> Response:
            return Response(self.document, media_type="application/samlmetadata+xml")

        self.server = ServedApp(Starlette(routes=[Route("/md.xml", serve)]), self.port)


@pytest.fixture
def metadata_server(idp: FakeIdP, keys: dict[str, KeyPairPaths]) -> Iterator[MetadataServer]:
    server = MetadataServer(aggregate([idp.entity_descriptor()], keys["fed"]))
    with server.server:
        yield server


def source(url: str, cache: Path, keys: dict[str, KeyPairPaths]) -> MetadataSource:
    return MetadataSource(
        "sc",
        file=None,
        url=url,
        signer=signer(keys),
        cache=cache,
        refresh_seconds=3600,
        accept=lambda _idp: True,
    )


async def test_refresh_keeps_the_last_good_copy_and_a_restart_uses_the_cache(
    metadata_server: MetadataServer, idp: FakeIdP, keys: dict[str, KeyPairPaths], tmp_path: Path
) -> None:
    cache = tmp_path / "cache" / "md.xml"
    first = source(metadata_server.url, cache, keys)
    assert first.idps == {} and first.problem
    assert await first.refresh()
    assert IDP in first.idps and cache.exists()

    metadata_server.document = aggregate([idp.entity_descriptor()], keys["other"])  # wrong key
    assert not await first.refresh()
    assert IDP in first.idps  # the previous good copy stays in use

    metadata_server.document = b"<md:EntitiesDescriptor"  # broken
    assert not await first.refresh()
    assert IDP in first.idps

    restarted = source("http://127.0.0.1:9/down.xml", cache, keys)  # the URL is down
    assert IDP in restarted.idps
    assert not await restarted.refresh()
    assert IDP in restarted.idps


async def test_parsing_a_2000_entity_aggregate_does_not_block_the_event_loop(
    metadata_server: MetadataServer, idp: FakeIdP, keys: dict[str, KeyPairPaths], tmp_path: Path
) -> None:
    entities = [idp.entity_descriptor()]
    for number in range(1000):
        entity = idp.entity_descriptor()
        entity.set("entityID", f"https://idp{number}.example.se/idp")
        entities.append(entity)
    metadata_server.document = aggregate(entities, keys["fed"], filler=1000)
    metadata = source(metadata_server.url, tmp_path / "md.xml", keys)
    refresh = asyncio.create_task(metadata.refresh())
    ticks_while_refreshing = 0
    while not refresh.done():
        await asyncio.sleep(0)
        ticks_while_refreshing += 1
    assert await refresh
    assert len(metadata.idps) == 1001
    # The loop kept turning while the document was parsed and its signature checked: had the
    # work run on the loop, the task would have finished within a handful of turns.
    assert ticks_while_refreshing > 100


def test_gateway_is_not_ready_without_metadata_and_says_why(
    keys: dict[str, KeyPairPaths], tmp_path: Path
) -> None:
    provider = sp_config(keys, tmp_path)
    provider["metadata"] = {
        "url": "http://127.0.0.1:9/down.xml",
        "cert": str(keys["fed"].cert),
        "cache": str(tmp_path / "none.xml"),
    }
    with running_gateway(None, providers={"sc": provider}) as live:
        ready = httpx2.get(f"{live.url}/readyz")
        assert ready.status_code == 503
        assert "provider sc" in ready.json()["problems"]


def sp_config(keys: dict[str, KeyPairPaths], tmp_path: Path) -> dict[str, object]:
    idp_file = tmp_path / "idp.xml"
    idp_file.write_bytes(FakeIdP(IDP, "https://idp.test.example", keys["idp"]).metadata())
    return {
        "type": "saml",
        "entity_id": "https://portvakt.test.example/sp",
        "signing": {"key": str(keys["sign"].key), "cert": str(keys["sign"].cert)},
        "encryption": {"key": str(keys["enc"].key), "cert": str(keys["enc"].cert)},
        "metadata": {"file": str(idp_file)},
        "sp_metadata": {
            "display": {"sv": "Kommunens inloggning", "en": "The municipality's login"},
            "organization_name": {"sv": "Exempla kommun"},
            "organization_url": {"sv": "https://kommun.example"},
            "organization_number": "2120001234",
            "contact_email": "it@kommun.example",
        },
    }


def aggregate_sp_config(
    keys: dict[str, KeyPairPaths], tmp_path: Path, valid_for: dt.timedelta
) -> dict[str, object]:
    """sp_config on a federation aggregate signed by keys["fed"], valid for `valid_for`."""
    config = sp_config(keys, tmp_path)
    federation = tmp_path / "federation.xml"
    idp = FakeIdP(IDP, "https://idp.test.example", keys["idp"])
    federation.write_bytes(aggregate([idp.entity_descriptor()], keys["fed"], valid_for))
    config["metadata"] = {"file": str(federation), "cert": str(keys["fed"].cert)}
    return config


def test_sp_metadata_is_signed_and_says_what_the_federation_needs(
    keys: dict[str, KeyPairPaths], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with running_gateway(None, providers={"sc": sp_config(keys, tmp_path)}) as live:
        served = httpx2.get(f"{live.url}/providers/sc/metadata")
        issuer = live.url
    assert served.headers["content-type"].startswith("application/samlmetadata+xml")
    assert OneLogin_Saml2_Utils.validate_sign(
        served.content, keys["sign"].cert_pem, xpath="/md:EntityDescriptor/ds:Signature"
    )
    root = etree.fromstring(served.content)
    descriptor = root.find("md:SPSSODescriptor", NS)
    assert descriptor is not None and descriptor.get("AuthnRequestsSigned") == "true"
    uses = {k.get("use") for k in descriptor.findall("md:KeyDescriptor", NS)}
    assert uses == {"signing", "encryption"}
    acs = descriptor.find("md:AssertionConsumerService", NS)
    assert acs is not None and acs.get("Location") == f"{issuer}/providers/sc/acs"
    assert acs.get("Binding", "").endswith("HTTP-POST")
    assert len(descriptor.findall("md:SingleLogoutService", NS)) == 2
    categories = root.xpath(
        "md:Extensions/mdattr:EntityAttributes/saml:Attribute/saml:AttributeValue/text()",
        namespaces=NS,
    )
    assert "http://id.elegnamnden.se/ec/1.0/loa3-pnr" in categories
    assert "http://id.elegnamnden.se/st/1.0/public-sector-sp" in categories
    assert root.xpath("//mdui:DisplayName[@xml:lang='sv']/text()", namespaces=NS) == [
        "Kommunens inloggning"
    ]

    config = tmp_path / "portvakt.yaml"
    config.write_text(
        f"issuer: {issuer}\nenvironment: test\nproviders:\n  sc: {sp_config(keys, tmp_path)}\n"
        "clients: [{client_id: x, redirect_uris: ['https://x.example/cb']}]\n".replace("'", "'")
    )
    assert main(["saml-metadata", "sc", "--config", str(config)]) == 0
    printed = capsys.readouterr().out.encode()
    assert OneLogin_Saml2_Utils.validate_sign(
        printed.strip(), keys["sign"].cert_pem, xpath="/md:EntityDescriptor/ds:Signature"
    )
    assert etree.fromstring(printed.strip()).find("md:SPSSODescriptor", NS) is not None


def test_check_config_names_the_problem_with_saml_files(
    keys: dict[str, KeyPairPaths], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    provider = sp_config(keys, tmp_path)
    provider["signing"] = {"key": str(keys["sign"].key), "cert": str(keys["enc"].cert)}
    config = tmp_path / "portvakt.yaml"
    config.write_text(
        f"issuer: http://127.0.0.1:8080\nproviders:\n  sc: {provider}\n"
        "clients: [{client_id: x, redirect_uris: ['https://x.example/cb']}]\n"
    )
    assert main(["check-config", str(config)]) == 2
    assert "signing: the certificate does not belong to the key" in capsys.readouterr().err


def test_the_gateway_fetches_url_metadata_in_the_background(
    metadata_server: MetadataServer, keys: dict[str, KeyPairPaths], tmp_path: Path
) -> None:
    provider = sp_config(keys, tmp_path)
    provider["metadata"] = {
        "url": metadata_server.url,
        "cert": str(keys["fed"].cert),
        "cache": str(tmp_path / "cache.xml"),
    }
    with running_gateway(None, providers={"sc": provider}) as live:
        for _ in range(100):
            if httpx2.get(f"{live.url}/readyz").status_code == 200:
                break
            time.sleep(0.05)
        assert httpx2.get(f"{live.url}/readyz").status_code == 200
    assert (tmp_path / "cache.xml").exists()
