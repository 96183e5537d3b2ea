"""The HTTP-Redirect binding's query (SAML Bindings §3.4.4.1)."""

from __future__ import annotations

import base64
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from hypothesis import given
from hypothesis import strategies as st
from lxml import etree

from providers.saml.messages import inflate, query_base64, redirect_url
from providers.saml.xml import RSA_SHA256, KeyPair
from tests.doubles.saml_idp import make_key_pair


@given(st.binary(max_size=2048))
def test_query_base64_writes_what_urlencode_writes(data: bytes) -> None:
    assert query_base64(data) == urlencode({"x": base64.b64encode(data).decode()})[2:]


def test_a_redirect_url_carries_the_message_and_a_signature_over_its_query(
    tmp_path: Path,
) -> None:
    paths = make_key_pair(tmp_path, "sp")
    key = KeyPair.from_files(paths.key, paths.cert)
    message = etree.fromstring(b'<AuthnRequest ID="_a+b/c=" Destination="https://idp/sso?x=1"/>')
    url = redirect_url("https://idp.example/sso?tenant=a", message, "SAMLRequest", "r+1/=", key)

    location, query = url.split("?", 1)
    assert location == "https://idp.example/sso"
    signed, signature = query.rsplit("&Signature=", 1)
    fields = parse_qs(urlsplit(url).query, strict_parsing=True)
    assert fields["tenant"] == ["a"] and fields["RelayState"] == ["r+1/="]
    assert fields["SigAlg"] == [RSA_SHA256]
    assert inflate(fields["SAMLRequest"][0]) == etree.tostring(message)
    expected = urlencode(
        [("SAMLRequest", fields["SAMLRequest"][0]), ("RelayState", "r+1/="), ("SigAlg", RSA_SHA256)]
    )
    assert signed == "tenant=a&" + expected
    key.certificate.public_key().verify(
        base64.b64decode(fields["Signature"][0]),
        expected.encode(),
        padding.PKCS1v15(),
        hashes.SHA256(),
    )
    assert signature == urlencode({"s": fields["Signature"][0]})[2:]
