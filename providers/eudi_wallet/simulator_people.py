"""The wallet simulator's test persons: their PID claims in SD-JWT VC form (PID Rulebook v1.7
§4.1 names) and the status their PID is listed with (Token Status List: 0 valid, 1 invalid
(revoked), 2 suspended).

Swedish numbers are Skatteverket's official test personnummer (test-identities.md §4), never a
real person's. The Finnish identifier is a personal identity code in the 900-999 individual
number range Finland keeps for tests, with its check character computed; it is only meant to look
Finnish.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

VALID, REVOKED, SUSPENDED = 0x00, 0x01, 0x02


@dataclass(frozen=True)
class SimulatedPerson:
    key: str
    label: str  # what the simulator's page shows
    claims: Mapping[str, Any]
    status: int = VALID

    @property
    def issuing_country(self) -> str:
        return str(self.claims["issuing_country"])


def _swede(given: str, family: str, number: str | None, **extra: Any) -> dict[str, Any]:
    birthdate = f"{number[0:4]}-{number[4:6]}-{number[6:8]}" if number else "1985-06-15"
    claims: dict[str, Any] = {
        "given_name": given,
        "family_name": family,
        "birthdate": birthdate,
        "place_of_birth": {"country": "SE", "locality": "Uppsala"},
        "nationalities": ["SE"],
        "issuing_country": "SE",
        "issuing_authority": "Test PID Provider SE - TEST",
        **extra,
    }
    if number is not None:
        claims["personal_administrative_number"] = number
    return claims


PEOPLE: dict[str, SimulatedPerson] = {
    person.key: person
    for person in (
        SimulatedPerson(
            "se",
            "Astrid Testsson (SE, valid PID)",
            _swede("Astrid", "Testsson", "199908072391", sex=2),
        ),
        SimulatedPerson(
            "se-revoked",
            "Bertil Återkallad (SE, PID revoked)",
            _swede("Bertil", "Återkallad", "196408233234"),
            status=REVOKED,
        ),
        SimulatedPerson(
            "se-suspended",
            "Cecilia Vilande (SE, PID suspended)",
            _swede("Cecilia", "Vilande", "200002292399"),
            status=SUSPENDED,
        ),
        SimulatedPerson(
            "se-no-number",
            "David Nummerlös (SE, no personal_administrative_number)",
            _swede("David", "Nummerlös", None),
        ),
        SimulatedPerson(
            "fi",
            "Aino Testinen (FI, valid PID)",
            {
                "given_name": "Aino",
                "family_name": "Testinen",
                "birthdate": "1975-12-24",
                "place_of_birth": {"country": "FI", "region": "Uusimaa", "locality": "Espoo"},
                "nationalities": ["FI", "SE"],
                "personal_administrative_number": "241275-902L",
                "issuing_country": "FI",
                "issuing_authority": "Test PID Provider FI - TEST",
            },
        ),
    )
}
