"""A verified PID as the gateway's Identity (shared/reference/eudi-wallet-rp.md §5.2): the
Swedish numbers, the Sweden Connect prid (SC-PRID 1.1 §2.3.1 and its examples), names and birth
date, and properties over any claims a PID may carry."""

from __future__ import annotations

import datetime
import hashlib
import re
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from providers.base import Evidence
from providers.eudi_wallet.claims import pid_identity
from providers.eudi_wallet.config import EIDAS_HIGH
from providers.eudi_wallet.errors import (
    InvalidPresentation,
    NoIdentifier,
    PresentationError,
    UntrustedIssuer,
)
from providers.eudi_wallet.pid import PID_VCT, VerifiedPid

PRID_SYNTAX = re.compile(r"^[A-Z]{2}:[0-9a-z][0-9a-z-]{8,28}[0-9a-z]$")
PRID_PERSISTENCE = "https://id.swedenconnect.se/claim/pridPersistence"
EIDAS_COUNTRY = "https://id.swedenconnect.se/claim/eidasCountry"
ISSUER = "https://pid.example.se"
AUTH_TIME = 1_780_000_000


def luhn(nine_digits: str) -> str:
    """Skatteverket's check digit (SKV 704), written out for the tests."""
    total = 0
    for position, digit in enumerate(nine_digits):
        product = int(digit) * (2 if position % 2 == 0 else 1)
        total += product // 10 + product % 10
    return str((10 - total % 10) % 10)


def swedish_number(birth: str, serial: str = "239") -> str:
    """YYYYMMDD + three digits + the check digit over the 10-digit form."""
    return birth + serial + luhn(birth[2:] + serial)


PERSONNUMMER = swedish_number("19990807")  # 199908072391, the harness's test person
SAMORDNINGSNUMMER = swedish_number("19900170", "123")  # born 1990-01-10


def pid(**claims: Any) -> VerifiedPid:
    country = claims.get("issuing_country")
    issuer_country = country if isinstance(country, str) else None
    return VerifiedPid(claims=claims, vct=PID_VCT, issuer=ISSUER, issuer_country=issuer_country)


def swedish(**claims: Any) -> VerifiedPid:
    return pid(issuing_country="SE", personal_administrative_number=PERSONNUMMER, **claims)


def identity_of(verified: VerifiedPid) -> Any:
    return pid_identity("wallet", verified, EIDAS_HIGH, AUTH_TIME)


# -- the person's identifier ------------------------------------------------------------------


def test_a_swedish_pid_with_a_personnummer_gives_it() -> None:
    identity = identity_of(swedish())
    assert PERSONNUMMER == "199908072391"
    assert identity.personal_identity_number == PERSONNUMMER
    assert identity.subject == PERSONNUMMER
    assert identity.coordination_number is None
    assert identity.prid is None
    assert identity.extra == {}


def test_a_swedish_pid_with_a_samordningsnummer_gives_a_coordination_number() -> None:
    verified = pid(issuing_country="SE", personal_administrative_number=SAMORDNINGSNUMMER)
    identity = identity_of(verified)
    assert identity.coordination_number == SAMORDNINGSNUMMER
    assert identity.personal_identity_number is None
    assert identity.subject == SAMORDNINGSNUMMER


@pytest.mark.parametrize(
    "number",
    [
        PERSONNUMMER[:-1] + str((int(PERSONNUMMER[-1]) + 1) % 10),  # wrong check digit
        "990807-2391",  # the short form: a PID carries the 12 digits
        "19990807-2391",
        "19990230" + "123" + luhn("990230123"),  # 30 February
        "19991307" + "123" + luhn("991307123"),  # month 13
        "1999080723",
        "1999080723910",
        "١٩٩٩٠٨٠٧٢٣٩١",  # Arabic-Indic digits: \d would take them
        "AB1234567",
        " ",
    ],
)
def test_a_swedish_pid_without_a_valid_number_is_ambiguous(number: str) -> None:
    with pytest.raises(NoIdentifier):
        identity_of(pid(issuing_country="SE", personal_administrative_number=number))


@pytest.mark.parametrize(
    "claims",
    [
        {"personal_administrative_number": PERSONNUMMER},
        {"issuing_country": "SE"},
        {"issuing_country": "se", "personal_administrative_number": PERSONNUMMER},
        {"issuing_country": "SWE", "personal_administrative_number": PERSONNUMMER},
        {"issuing_country": 46, "personal_administrative_number": PERSONNUMMER},
        {"issuing_country": "SE", "personal_administrative_number": ""},
        {"issuing_country": "SE", "personal_administrative_number": int(PERSONNUMMER)},
        {"issuing_country": "DE", "personal_administrative_number": "x" * 257},
        {"issuing_country": "DE", "personal_administrative_number": ["T22000129"]},
    ],
)
def test_a_pid_without_country_and_number_names_no_one(claims: dict[str, Any]) -> None:
    with pytest.raises(NoIdentifier):
        identity_of(
            pid(given_name="Anna", family_name="Svensson", birthdate="1990-01-01", **claims)
        )


def test_names_and_a_birth_date_alone_identify_no_one() -> None:
    verified = pid(
        given_name="Anna",
        family_name="Svensson",
        birthdate="1990-01-01",
        place_of_birth={"country": "SE"},
        nationalities=["SE"],
    )
    with pytest.raises(NoIdentifier):
        identity_of(verified)


@pytest.mark.parametrize(
    ("country", "number", "prid"),
    [  # SC-PRID §2.3.1's examples, the "XX/SE/" prefix taken off
        ("NO", "05068907693", "NO:05068907693"),
        ("DK", "09208-2002-2-194967071622", "DK:09208-2002-2-194967071622"),
        ("DE", "#12345-3456//ABC", "DE:12345-3456-abc"),
        ("DE", "aErf#(EAd9)", "DE:0aerf-ead9"),
        ("DE", "(1952 12 14-1122)", "DE:19521214-1122"),
        ("DE", "1234567890123456789012345678901", "DE:3b7184c0ceaf76a9607a31e4e1f87f"),
    ],
)
def test_a_foreign_pid_gives_the_default_eidas_prid(country: str, number: str, prid: str) -> None:
    identity = identity_of(pid(issuing_country=country, personal_administrative_number=number))
    assert identity.prid == prid
    assert identity.subject == prid
    assert PRID_SYNTAX.match(prid)
    assert identity.personal_identity_number is None
    assert identity.coordination_number is None
    assert identity.extra == {PRID_PERSISTENCE: "B", EIDAS_COUNTRY: country}


def test_a_long_number_is_hashed_as_the_java_reference_does() -> None:
    """Appendix C: BigInteger(1, sha256).toString(16): no leading zeros, then 30 digits."""
    number = "ABCDEFGHIJ-KLMNOPQRST-UVWXYZ-0123456789"
    digest = hashlib.sha256(number.encode()).hexdigest().lstrip("0")[:30]
    identity = identity_of(pid(issuing_country="FR", personal_administrative_number=number))
    assert identity.prid == f"FR:{digest}"


def test_a_foreign_number_with_fewer_than_eight_characters_is_refused() -> None:
    """SC-PRID §2.3.1: `aErf#(EAd)` has 7 identifying characters: no prid."""
    with pytest.raises(NoIdentifier):
        identity_of(pid(issuing_country="DE", personal_administrative_number="aErf#(EAd)"))


def test_a_personnummer_from_another_country_is_only_a_prid() -> None:
    """Only a Swedish PID gives a personnummer: from NO the same digits are NO's number."""
    identity = identity_of(pid(issuing_country="NO", personal_administrative_number=PERSONNUMMER))
    assert identity.personal_identity_number is None
    assert identity.prid == f"NO:{PERSONNUMMER}"


# -- names, birth date, the rest of the Identity -----------------------------------------------


def test_a_pid_provider_of_another_state_names_no_one_here() -> None:
    from_finland = replace(swedish(), issuer_country="FI")

    with pytest.raises(UntrustedIssuer, match="issuing country"):
        identity_of(from_finland)


def test_names_and_birth_date_pass_through() -> None:
    identity = identity_of(
        swedish(given_name="Anna Maria", family_name="Svensson Öberg", birthdate="1999-08-07")
    )
    assert identity.given_name == "Anna Maria"
    assert identity.family_name == "Svensson Öberg"
    assert identity.name == "Anna Maria Svensson Öberg"
    assert identity.birthdate == "1999-08-07"


def test_undisclosed_names_are_absent() -> None:
    identity = identity_of(swedish())
    assert (identity.given_name, identity.family_name, identity.name) == (None, None, None)
    assert identity.birthdate is None


@pytest.mark.parametrize(
    ("claim", "value"),
    [
        ("given_name", 42),
        ("given_name", ["Anna"]),
        ("given_name", ""),
        ("family_name", "   "),
        ("family_name", "Svens\x00son"),
        ("family_name", "Svensson\ud800"),
        ("given_name", "A" * 257),
        ("birthdate", "1990-02-30"),
        ("birthdate", "19900101"),
        ("birthdate", "1990-1-1"),
        ("birthdate", "1990-01-01T00:00:00Z"),
        ("birthdate", 19900101),
        ("birthdate", "０１９９０-01-01"),
    ],
)
def test_a_disclosed_value_of_the_wrong_form_is_refused(claim: str, value: Any) -> None:
    with pytest.raises(InvalidPresentation, match=claim):
        identity_of(swedish(**{claim: value}))


def test_the_identity_names_the_pid_provider_and_keeps_the_given_loa() -> None:
    identity = identity_of(swedish(given_name="Anna"))
    assert identity.provider == "wallet"
    assert identity.loa == EIDAS_HIGH
    assert identity.auth_time == AUTH_TIME
    assert identity.authn_provider == ISSUER
    assert identity.evidence == Evidence(upstream=ISSUER)


# -- properties: any claims give a well-formed Identity or a PresentationError -----------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=5,
)
countries = st.sampled_from(["SE", "DE", "NO", "FR", "se", "S", "SWE", ""]) | json_values
numbers = (
    st.builds(
        lambda day, serial: swedish_number(day.strftime("%Y%m%d"), f"{serial:03d}"),
        st.dates(datetime.date(1900, 1, 1), datetime.date(2030, 12, 31)),
        st.integers(0, 999),
    )
    | st.text(alphabet="0123456789", min_size=11, max_size=11).map(lambda d: d + luhn(d[2:]))
    | st.text(max_size=300)
    | st.text(alphabet="0123456789-+ ", min_size=8, max_size=14)
    | json_values
)
names = st.none() | st.text(max_size=60) | json_values
birthdates = st.none() | st.dates().map(datetime.date.isoformat) | st.text(max_size=12)


def valid_swedish_number(number: str, *, coordination: bool) -> bool:
    """12 ASCII digits from the 1800s to the 2000s and the check digit right; a personnummer's
    date is a real one, a samordningsnummer's day is 61-91 in a month 00-12 (Skatteverket may
    assign one on an unconfirmed date, SKV 707)."""
    if not re.fullmatch(r"(18|19|20)[0-9]{10}", number) or luhn(number[2:11]) != number[11]:
        return False
    month, day = int(number[4:6]), int(number[6:8])
    if coordination:
        return 0 <= month <= 12 and 61 <= day <= 91
    try:
        datetime.date(int(number[:4]), month, day)
    except ValueError:
        return False
    return True


@given(
    country=countries,
    number=numbers,
    given_name=names,
    family_name=names,
    birthdate=birthdates,
)
def test_any_claims_give_a_well_formed_identity_or_a_presentation_error(
    country: Any, number: Any, given_name: Any, family_name: Any, birthdate: Any
) -> None:
    claims = {
        "issuing_country": country,
        "personal_administrative_number": number,
        "given_name": given_name,
        "family_name": family_name,
        "birthdate": birthdate,
    }
    try:
        identity = identity_of(pid(**{k: v for k, v in claims.items() if v is not None}))
    except PresentationError:
        return
    assert identity.subject
    if country == "SE":
        swedish_value = identity.personal_identity_number or identity.coordination_number
        assert swedish_value == number == identity.subject
        coordination = identity.coordination_number is not None
        assert valid_swedish_number(swedish_value, coordination=coordination)
        assert identity.prid is None
    else:
        assert identity.prid is not None and PRID_SYNTAX.match(identity.prid)
        assert identity.prid.startswith(f"{country}:")
        assert identity.personal_identity_number is None
        assert identity.coordination_number is None
    assert identity.evidence == Evidence(upstream=ISSUER)
    if identity.birthdate is not None:
        datetime.date.fromisoformat(identity.birthdate)
    for value in (identity.given_name, identity.family_name, identity.name, identity.subject):
        assert value is None or value.encode("utf-8")  # no lone surrogate reaches a token


printable_names = st.text(
    alphabet=st.characters(blacklist_categories=("Cc", "Cs")), min_size=1, max_size=60
).filter(str.strip)
swedish_numbers = st.builds(
    lambda day, serial, coordination: swedish_number(
        day.strftime("%Y%m") + f"{day.day + (60 if coordination else 0):02d}", f"{serial:03d}"
    ),
    st.dates(datetime.date(1850, 1, 1), datetime.date(2030, 12, 31)),
    st.integers(0, 999),
    st.booleans(),
)


@given(
    country=st.sampled_from(["DE", "NO", "FR", "IT", "ES", "NL", "PL"]),
    number=st.text(min_size=1, max_size=200),
    given_name=printable_names,
    birthdate=st.dates().map(datetime.date.isoformat),
)
def test_a_foreign_number_with_eight_identifying_characters_always_gives_a_prid(
    country: str, number: str, given_name: str, birthdate: str
) -> None:
    verified = pid(
        issuing_country=country,
        personal_administrative_number=number,
        given_name=given_name,
        birthdate=birthdate,
    )
    identifying = re.sub(r"[^a-z0-9]", "", number.lower())
    try:
        identity = identity_of(verified)
    except NoIdentifier:
        assert len(identifying) < 8
        return
    assert identity.prid is not None and PRID_SYNTAX.match(identity.prid)
    assert (identity.given_name, identity.birthdate) == (given_name, birthdate)


@given(number=swedish_numbers, family_name=printable_names)
def test_every_valid_swedish_number_is_taken(number: str, family_name: str) -> None:
    identity = identity_of(
        pid(issuing_country="SE", personal_administrative_number=number, family_name=family_name)
    )
    assert number in (identity.personal_identity_number, identity.coordination_number)
    coordination = identity.coordination_number is not None
    assert coordination == (int(number[6:8]) > 60)
    assert valid_swedish_number(number, coordination=coordination)
