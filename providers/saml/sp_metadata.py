"""Our SP metadata out: what a federation operator registers and IdPs read (Sweden Connect
profile §2.1): both certificates, the HTTP-POST ACS, the SLO endpoints, UIInfo with sv/en names,
the organisation, and the entity categories (service entity, service type) that decide which
IdPs will serve us and what they release. Signed with our signing key."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from lxml import etree

from providers.saml.messages import new_id
from providers.saml.xml import NS, KeyPair, tag

ENTITY_CATEGORY = "http://macedir.org/entity-category"
PROTOCOL = "urn:oasis:names:tc:SAML:2.0:protocol"
BINDING_POST = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"
BINDING_REDIRECT = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"
NAME_ID_FORMATS = (
    "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent",
    "urn:oasis:names:tc:SAML:2.0:nameid-format:transient",
)
ENCRYPTION_METHODS = (
    "http://www.w3.org/2009/xmlenc11#aes256-gcm",
    "http://www.w3.org/2009/xmlenc11#aes128-gcm",
    "http://www.w3.org/2001/04/xmlenc#aes256-cbc",
    "http://www.w3.org/2001/04/xmlenc#aes128-cbc",
    "http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p",
)
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
MDORGEXT = "http://id.swedenconnect.se/authn/1.0/md-org-ext/ns"


@dataclass(frozen=True)
class SpDescription:
    entity_id: str
    acs_url: str
    slo_url: str
    display: Mapping[str, str]
    description: Mapping[str, str]
    logo_url: str | None
    organization_name: Mapping[str, str]
    organization_url: Mapping[str, str]
    organization_number: str | None
    contact_email: str | None
    entity_categories: Sequence[str]
    want_assertions_signed: bool


def sp_metadata(sp: SpDescription, signing: KeyPair, encryption: KeyPair) -> bytes:
    nsmap = {p: NS[p] for p in ("md", "ds", "mdattr", "mdui", "saml")}
    entity = etree.Element(tag("md", "EntityDescriptor"), nsmap=nsmap)
    entity.set("entityID", sp.entity_id)
    entity.set("ID", new_id())
    extensions = etree.SubElement(entity, tag("md", "Extensions"))
    attributes = etree.SubElement(extensions, tag("mdattr", "EntityAttributes"))
    category = etree.SubElement(
        attributes,
        tag("saml", "Attribute"),
        Name=ENTITY_CATEGORY,
        NameFormat="urn:oasis:names:tc:SAML:2.0:attrname-format:uri",
    )
    for uri in sp.entity_categories:
        etree.SubElement(category, tag("saml", "AttributeValue")).text = uri

    descriptor = etree.SubElement(
        entity,
        tag("md", "SPSSODescriptor"),
        AuthnRequestsSigned="true",
        WantAssertionsSigned="true" if sp.want_assertions_signed else "false",
        protocolSupportEnumeration=PROTOCOL,
    )
    _ui_info(descriptor, sp)
    _key_descriptor(descriptor, "signing", signing, ())
    _key_descriptor(descriptor, "encryption", encryption, ENCRYPTION_METHODS)
    for binding in (BINDING_REDIRECT, BINDING_POST):
        etree.SubElement(
            descriptor, tag("md", "SingleLogoutService"), Binding=binding, Location=sp.slo_url
        )
    for name_id_format in NAME_ID_FORMATS:
        etree.SubElement(descriptor, tag("md", "NameIDFormat")).text = name_id_format
    etree.SubElement(
        descriptor,
        tag("md", "AssertionConsumerService"),
        Binding=BINDING_POST,
        Location=sp.acs_url,
        index="0",
        isDefault="true",
    )
    if sp.organization_name:
        _organization(entity, sp)
    if sp.contact_email:
        contact = etree.SubElement(entity, tag("md", "ContactPerson"), contactType="technical")
        etree.SubElement(contact, tag("md", "EmailAddress")).text = f"mailto:{sp.contact_email}"
    signing.sign_element(entity, after=None)
    return etree.tostring(entity, xml_declaration=True, encoding="UTF-8")


def _ui_info(descriptor: etree._Element, sp: SpDescription) -> None:
    """What a discovery service or an IdP shows of us (MDUI: names, descriptions, logo)."""
    ui = etree.SubElement(
        etree.SubElement(descriptor, tag("md", "Extensions")), tag("mdui", "UIInfo")
    )
    for element, texts in (("DisplayName", sp.display), ("Description", sp.description)):
        for language, text in texts.items():
            etree.SubElement(ui, tag("mdui", element), {XML_LANG: language}).text = text
    if sp.logo_url:
        etree.SubElement(ui, tag("mdui", "Logo"), height="64", width="64").text = sp.logo_url


def _organization(entity: etree._Element, sp: SpDescription) -> None:
    organization = etree.SubElement(entity, tag("md", "Organization"))
    if sp.organization_number:
        org_extensions = etree.SubElement(organization, tag("md", "Extensions"))
        number = etree.SubElement(
            org_extensions, f"{{{MDORGEXT}}}OrganizationNumber", nsmap={"mdorgext": MDORGEXT}
        )
        number.text = sp.organization_number
    for element, texts in (
        ("OrganizationName", sp.organization_name),
        ("OrganizationDisplayName", sp.organization_name),
        ("OrganizationURL", sp.organization_url),
    ):
        for language, text in texts.items():
            etree.SubElement(organization, tag("md", element), {XML_LANG: language}).text = text


def _key_descriptor(
    descriptor: etree._Element, use: str, key: KeyPair, methods: Sequence[str]
) -> None:
    key_descriptor = etree.SubElement(descriptor, tag("md", "KeyDescriptor"), use=use)
    data = etree.SubElement(
        etree.SubElement(key_descriptor, tag("ds", "KeyInfo")), tag("ds", "X509Data")
    )
    etree.SubElement(data, tag("ds", "X509Certificate")).text = key.certificate_b64
    for method in methods:
        etree.SubElement(key_descriptor, tag("md", "EncryptionMethod"), Algorithm=method)
