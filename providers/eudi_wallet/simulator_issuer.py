"""The simulator's test PID provider: PIDs in SD-JWT VC form and their status lists, written
from the specifications with joserfc and `hashlib` (neither PyJWT, which the tests use, nor the
verifier's code).

- SD-JWT, RFC 9901 §4: every claim selectively disclosable, recursively (`place_of_birth`'s
  members, each `nationalities` element), `_sd` arrays sorted with decoy digests (§4.2.5),
  `_sd_alg` `sha-256`, digests over the ASCII of the base64url disclosure.
- SD-JWT VC draft -13 (the version HAIP 1.0 pins): `typ` `dc+sd-jwt`, `vct` `urn:eudi:pid:1`,
  `iat`, `exp`, `cnf.jwk` the wallet's key, `status.status_list`; HAIP §6.1: `x5c` is the
  country's signing certificate alone (no trust anchor).
- Token Status List draft -14 (HAIP's pin; status-list digest §6): a `statuslist+jwt` with
  `x5c`, `sub` = its URI, `iat`, `exp`, `ttl`, `status_list` {`bits` 2, `lst` zlib+base64url},
  bits packed least significant first; each PID gets a random unused index (HAIP §6.1, ARF
  VCR_17).
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from joserfc import jws
from joserfc.jwk import ECKey

from providers.eudi_wallet.simulator_people import PEOPLE, VALID, SimulatedPerson
from providers.eudi_wallet.simulator_pki import PID_COUNTRIES, Issued, SimulatorPki

PID_VCT = "urn:eudi:pid:1"
PID_LIFETIME = 14 * 86400  # a technical PID lives days or weeks (PID Rulebook §2)
STATUS_BITS = 2
STATUS_LIST_SIZE = 1 << 14  # entries: indices are drawn from a space far larger than the PIDs
STATUS_LIST_EXP = 86400
STATUS_LIST_TTL = 300
DECOYS = 2
RESERVED = 64  # indices set aside per revoked or suspended test person
MAX_HEADER_BYTES = 16_000  # room for an x5c of a few certificates

Path = tuple[str | int, ...]  # where a disclosed value sits: object keys and array indices


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def sd_digest(text: str) -> str:
    """RFC 9901 §4.2.3 (and §4.3.1's sd_hash): SHA-256 of the ASCII text, base64url."""
    return b64url(hashlib.sha256(text.encode("ascii")).digest())


def es256_registry() -> jws.JWSRegistry:
    """ES256 only; joserfc's default 512-byte header limit is too small for an `x5c`."""
    registry = jws.JWSRegistry(algorithms=["ES256"])
    registry.max_header_length = MAX_HEADER_BYTES
    return registry


def signed(header: Mapping[str, Any], payload: Mapping[str, Any], key: ECKey) -> str:
    body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
    return jws.serialize_compact(dict(header), body, key, registry=es256_registry())


def private_jwk(issued: Issued) -> ECKey:
    return ECKey.import_key(issued.key)


@dataclass(frozen=True)
class Disclosure:
    encoded: str
    path: Path


@dataclass(frozen=True)
class IssuedPid:
    issuer_jwt: str
    disclosures: tuple[Disclosure, ...]
    expires_at: int
    status_uri: str
    status_idx: int


def _disclose(*parts: Any) -> str:
    """`[salt, name, value]` or, for an array element, `[salt, value]` (RFC 9901 §4.2.1-2)."""
    salt = b64url(secrets.token_bytes(16))
    return b64url(json.dumps([salt, *parts], ensure_ascii=False).encode())


def _decoy() -> str:
    return sd_digest(b64url(secrets.token_bytes(32)))


def _conceal_object(claims: Mapping[str, Any], at: Path) -> tuple[dict[str, Any], list[Disclosure]]:
    digests, disclosures = [], []
    for name, value in claims.items():
        inner, nested = _conceal(value, (*at, name))
        encoded = _disclose(name, inner)
        disclosures += [Disclosure(encoded, (*at, name)), *nested]
        digests.append(sd_digest(encoded))
    digests += [_decoy() for _ in range(DECOYS)]
    return {"_sd": sorted(digests)}, disclosures


def _conceal_array(values: list[Any], at: Path) -> tuple[list[Any], list[Disclosure]]:
    elements: list[Any] = []
    disclosures: list[Disclosure] = []
    for index, value in enumerate(values):
        inner, nested = _conceal(value, (*at, index))
        encoded = _disclose(inner)
        disclosures += [Disclosure(encoded, (*at, index)), *nested]
        elements.append({"...": sd_digest(encoded)})
    return [*elements, {"...": _decoy()}], disclosures


def _conceal(value: Any, at: Path) -> tuple[Any, list[Disclosure]]:
    if isinstance(value, Mapping):
        return _conceal_object(value, at)
    if isinstance(value, list):
        return _conceal_array(value, at)
    return value, []


class StatusList:
    """One status list (Token Status List §4): 2 bits per PID, served as a signed JWT."""

    def __init__(self, signer: Issued) -> None:
        self.signer = signer
        self._statuses = bytearray(STATUS_LIST_SIZE * STATUS_BITS // 8)
        self._used: set[int] = set()

    def allocate(self, status: int) -> int:
        idx = secrets.randbelow(STATUS_LIST_SIZE)
        while idx in self._used:
            idx = secrets.randbelow(STATUS_LIST_SIZE)
        self._used.add(idx)
        self.set(idx, status)
        return idx

    def set(self, idx: int, status: int) -> None:
        per_byte = 8 // STATUS_BITS
        shift = (idx % per_byte) * STATUS_BITS
        mask = ((1 << STATUS_BITS) - 1) << shift
        current = self._statuses[idx // per_byte]
        self._statuses[idx // per_byte] = (current & ~mask) | (status << shift)

    def token(self, uri: str, now: float) -> str:
        header = {"alg": "ES256", "typ": "statuslist+jwt", "x5c": [self.signer.x5c_member]}
        issued_at = int(now)
        payload = {
            "sub": uri,
            "iat": issued_at,
            "exp": issued_at + STATUS_LIST_EXP,
            "ttl": STATUS_LIST_TTL,
            "status_list": {
                "bits": STATUS_BITS,
                "lst": b64url(zlib.compress(bytes(self._statuses), 9)),
            },
        }
        return signed(header, payload, private_jwk(self.signer))


@dataclass(frozen=True)
class PidOptions:
    """How to bend one issuance for a negative test: another signer, another time."""

    signer: Issued | None = None
    issued_at: float | None = None
    lifetime: int = PID_LIFETIME


class PidIssuer:
    """Issues PIDs for the test persons; one status list per issuing country, numbered from 1
    in `PID_COUNTRIES` order and served at `{base}/status-lists/{n}`."""

    def __init__(self, pki: SimulatorPki, clock: Callable[[], float]) -> None:
        self._pki = pki
        self._clock = clock
        self.lists = {n: StatusList(pki.pid_signer(c)) for n, c in enumerate(PID_COUNTRIES, 1)}
        # A verifier caches a list for its ttl: indices set at issuance would reach it late,
        # so the revoked and suspended persons' indices are on the list from the start.
        self._reserved = {
            person.key: [self._list_of(person).allocate(person.status) for _ in range(RESERVED)]
            for person in PEOPLE.values()
            if person.status != VALID
        }

    def _number(self, person: SimulatedPerson) -> int:
        return PID_COUNTRIES.index(person.issuing_country) + 1

    def _list_of(self, person: SimulatedPerson) -> StatusList:
        return self.lists[self._number(person)]

    def _index(self, person: SimulatedPerson) -> int:
        reserved = self._reserved.get(person.key)
        return reserved.pop() if reserved else self._list_of(person).allocate(person.status)

    def issue(
        self,
        person: SimulatedPerson,
        holder: Mapping[str, Any],
        base_url: str,
        options: PidOptions | None = None,
    ) -> IssuedPid:
        """`holder` is the wallet's public JWK (`cnf.jwk`); `base_url` where the simulator
        serves its status lists."""
        chosen = options or PidOptions()
        status_uri = f"{base_url}/status-lists/{self._number(person)}"
        idx = self._index(person)
        concealed, disclosures = _conceal_object(person.claims, ())
        issued_at = int(self._clock() if chosen.issued_at is None else chosen.issued_at)
        payload = {
            **concealed,
            "_sd_alg": "sha-256",
            "vct": PID_VCT,
            "iat": issued_at,
            "exp": issued_at + chosen.lifetime,
            "cnf": {"jwk": dict(holder)},
            "status": {"status_list": {"idx": idx, "uri": status_uri}},
        }
        signer = chosen.signer or self._pki.pid_signer(person.issuing_country)
        header = {"alg": "ES256", "typ": "dc+sd-jwt", "x5c": [signer.x5c_member]}
        token = signed(header, payload, private_jwk(signer))
        return IssuedPid(token, tuple(disclosures), issued_at + chosen.lifetime, status_uri, idx)
