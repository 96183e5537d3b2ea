"""docs/integrating.md "Verifying a BankID signature offline", kept true: its shell commands
(xmlsec1, OpenSSL) and its Python example run on evidence from the bundled simulator, accept it,
and refuse it when one signed byte changes or the root is another."""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
from cryptography import x509
from starlette.testclient import TestClient

from gateway.demo.defaults import BANKID_SIMULATOR_PATH, demo_settings
from providers.bankid.signature_check import SignatureNotVerified
from providers.bankid.simulator import BankIDSimulator
from providers.bankid.simulator_pki import SimulatorPki
from tests.clock import ManualClock
from tests.harness import LiveGateway, free_port
from tests.providers.bankid.test_evidence import (
    TBS,
    VISIBLE,
    MonotonicClock,
    completed,
    root_pem,
    with_altered_non_visible_data,
)
from tests.test_docs_example import doc_text, fenced_blocks

SECTION = "### Verifying a BankID signature offline"
SIGNATURE_CLAIM = "https://id.oidc.se/claim/userSignature"
EVIDENCE_CLAIM = "https://id.oidc.se/claim/authnEvidence"


@pytest.fixture(scope="module", autouse=True)
def command_line_tools() -> None:
    for tool in ("xmlsec1", "openssl"):
        assert shutil.which(tool), f"{tool} is missing: run scripts/ensure-test-tools.sh"


@pytest.fixture(scope="module")
def evidence() -> Iterator[tuple[dict[str, Any], bytes]]:
    """One signature from the simulator over HTTP, and the simulator's root."""
    simulator = BankIDSimulator(clock=MonotonicClock(), wall_clock=ManualClock())
    with TestClient(simulator.app) as api:
        yield completed(api, userVisibleData=VISIBLE, userNonVisibleData=TBS), root_pem(api)


def run_shell_example(directory: Path, signature: str, ocsp: str, root: bytes) -> str:
    [script] = fenced_blocks(SECTION, "sh")
    (directory / "signature.b64").write_text(signature)
    (directory / "ocsp.b64").write_text(ocsp)
    (directory / "member-banks-root.pem").write_bytes(root)
    finished = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=directory,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    if finished.returncode != 0:
        raise AssertionError(finished.stdout + finished.stderr)
    return finished.stdout + finished.stderr


def test_the_documented_commands_accept_a_simulator_signature(
    tmp_path: Path, evidence: tuple[dict[str, Any], bytes]
) -> None:
    completion, root = evidence
    output = run_shell_example(tmp_path, completion["signature"], completion["ocspResponse"], root)
    assert "OK\nSignedInfo References (ok/all): 2/2" in output
    assert "Response verify OK" in output and "cert1.pem: good" in output
    assert "nonce OK" in output
    assert "serialNumber = 196408233234" in output


def test_the_documented_commands_refuse_one_altered_byte(
    tmp_path: Path, evidence: tuple[dict[str, Any], bytes]
) -> None:
    completion, root = evidence
    altered = with_altered_non_visible_data(completion["signature"])
    with pytest.raises(AssertionError, match="FAIL"):
        run_shell_example(tmp_path, altered, completion["ocspResponse"], root)


def test_the_documented_commands_refuse_another_root(
    tmp_path: Path, evidence: tuple[dict[str, Any], bytes]
) -> None:
    completion, _ = evidence
    other = SimulatorPki(ManualClock()).root_pem()
    with pytest.raises(AssertionError, match="unable to get local issuer certificate"):
        run_shell_example(tmp_path, completion["signature"], completion["ocspResponse"], other)


def test_the_documented_nonce_check_refuses_another_signature(
    tmp_path: Path, evidence: tuple[dict[str, Any], bytes]
) -> None:
    """A signature that verifies, with the OCSP response of another: only the nonce tells."""
    completion, root = evidence
    xml = base64.b64decode(completion["signature"])
    # the same signed XML with another declaration: another Base64 text, the same signature
    other = base64.b64encode(xml.replace(b'standalone="no"', b'standalone="yes"')).decode()
    with pytest.raises(AssertionError) as refused:
        run_shell_example(tmp_path, other, completion["ocspResponse"], root)
    assert "cert1.pem: good" in str(refused.value) and "nonce OK" not in str(refused.value)


def run_python_example(tmp_path: Path, signature: str, ocsp: str, root: bytes) -> Any:
    [code] = fenced_blocks(SECTION, "python")
    (tmp_path / "member-banks-root.pem").write_bytes(root)
    claims = {SIGNATURE_CLAIM: signature, EVIDENCE_CLAIM: ocsp}
    namespace: dict[str, Any] = {"claims": claims, "tbs_data": TBS}
    previous = Path.cwd()
    os.chdir(tmp_path)
    try:
        exec(compile(code, SECTION, "exec"), namespace)  # noqa: S102 - our own document's example
    finally:
        os.chdir(previous)
    return namespace["facts"]


def test_the_documented_python_accepts_a_simulator_signature(
    tmp_path: Path, evidence: tuple[dict[str, Any], bytes], capsys: pytest.CaptureFixture[str]
) -> None:
    completion, root = evidence
    facts = run_python_example(tmp_path, completion["signature"], completion["ocspResponse"], root)
    assert facts.non_visible_data == TBS and facts.visible_data == VISIBLE
    assert capsys.readouterr().out.startswith("196408233234 Signing ")


def test_the_documented_python_refuses_one_altered_byte(
    tmp_path: Path, evidence: tuple[dict[str, Any], bytes]
) -> None:
    completion, root = evidence
    altered = with_altered_non_visible_data(completion["signature"])
    with pytest.raises(SignatureNotVerified):
        run_python_example(tmp_path, altered, completion["ocspResponse"], root)


def test_make_run_serves_the_simulator_root_where_the_document_says() -> None:
    documented = f"http://127.0.0.1:8080{BANKID_SIMULATOR_PATH}/member-banks-root.pem"
    assert documented in doc_text()
    with LiveGateway(demo_settings(f"http://127.0.0.1:{free_port()}")) as gateway:
        path = documented.removeprefix("http://127.0.0.1:8080")
        served = httpx2.get(gateway.url + path)
    assert served.status_code == 200
    subject = x509.load_pem_x509_certificate(served.content).subject.rfc4514_string()
    assert subject.startswith("CN=Portvakt BankID simulator Root CA - TEST,")
