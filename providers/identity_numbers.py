"""Swedish personal identity numbers (personnummer) and coordination numbers (samordningsnummer).

Format and check digit per Folkbokföringslag 18 § and SKVM 2010:3 (digest in
shared/reference/test-identities.md): the Luhn digit is computed over the 10-digit form only.
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass

_NUMBER = re.compile(r"^(\d{2})?(\d{6})([-+]?)(\d{4})$")
COORDINATION_DAY_OFFSET = 60


class InvalidIdentityNumber(ValueError):
    """Not a formally valid personnummer or samordningsnummer; `reason` says which rule failed."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class IdentityNumber:
    digits: str  # always 12 digits, century included
    is_coordination_number: bool

    @property
    def birthdate(self) -> str:
        day = int(self.digits[6:8])
        if self.is_coordination_number:
            day -= COORDINATION_DAY_OFFSET
        return f"{self.digits[0:4]}-{self.digits[4:6]}-{day:02d}"


def luhn_check_digit(nine_digits: str) -> int:
    total = sum(sum(divmod(int(d) * (2 - i % 2), 10)) for i, d in enumerate(nine_digits))
    return (10 - total % 10) % 10


def mask(number: str | None) -> str:
    """`19121212****`: enough for support to match a case, never the whole number."""
    if not number:
        return ""
    return number[:-4] + "****" if len(number) > 4 else "****"


def parse_identity_number(text: str, today: datetime.date | None = None) -> IdentityNumber:
    """Accepts YYYYMMDDNNNC, YYYYMMDD-NNNC, YYMMDD-NNNC and YYMMDD+NNNC (100 years or older)."""
    match = _NUMBER.match(text.strip().replace(" ", ""))
    if match is None:
        raise InvalidIdentityNumber("format")
    century, yymmdd, separator, tail = match.groups()
    if luhn_check_digit(yymmdd + tail[:3]) != int(tail[3]):
        raise InvalidIdentityNumber("check_digit")
    full_year = _full_year(century, yymmdd[:2], separator, today or datetime.date.today())
    digits = f"{full_year:04d}{yymmdd[2:]}{tail}"
    month, day = int(digits[4:6]), int(digits[6:8])
    coordination = day > COORDINATION_DAY_OFFSET
    if coordination:
        # Skatteverket's own coordination numbers may carry an unconfirmed date: be lenient.
        if not (
            0 <= month <= 12 and COORDINATION_DAY_OFFSET <= day <= COORDINATION_DAY_OFFSET + 31
        ):
            raise InvalidIdentityNumber("date")
    else:
        _require_calendar_date(full_year, month, day)
    return IdentityNumber(digits=digits, is_coordination_number=coordination)


def _full_year(century: str | None, yy: str, separator: str, today: datetime.date) -> int:
    if century is not None:
        if century not in ("18", "19", "20"):
            raise InvalidIdentityNumber("format")
        return int(century + yy)
    year = (today.year // 100) * 100 + int(yy)
    if year > today.year:
        year -= 100
    return year - 100 if separator == "+" else year


def _require_calendar_date(year: int, month: int, day: int) -> None:
    try:
        datetime.date(year, month, day)
    except ValueError as error:
        raise InvalidIdentityNumber("date") from error
