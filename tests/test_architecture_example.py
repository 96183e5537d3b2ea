"""docs/architecture.md's worked example is true: its provider module, run from the page as it
is written there, and its one registration row log a citizen in through the whole gateway."""

from __future__ import annotations

import re
import sys
import types
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.settings import SettingsError, settings_from_data
from providers.registry import ProviderType, register, unregister
from tests.harness import Browser, code_form, running_gateway, token_request

DOC = Path(__file__).resolve().parents[1] / "docs" / "architecture.md"
PERSON = "199908072391"  # the one the page names


def example_module() -> types.ModuleType:
    """The page's `providers/kiosk.py` block, executed as a module."""
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)
    source = next(block for block in blocks if block.startswith("# providers/kiosk.py"))
    module = types.ModuleType("kiosk_from_the_docs")
    sys.modules[module.__name__] = module  # pydantic resolves the annotations through it
    code = compile(source, str(DOC), "exec", dont_inherit=True)  # as the page reads, no futures
    exec(code, module.__dict__)  # noqa: S102  our own page
    return module


@pytest.fixture
def kiosk() -> Iterator[types.ModuleType]:
    module = example_module()
    register(ProviderType("kiosk", module.KioskConfig, module.KioskProvider))
    try:
        yield module
    finally:
        unregister("kiosk")


def test_the_documented_row_registers_the_type_and_a_citizen_logs_in(
    kiosk: types.ModuleType,
) -> None:
    desk = {"type": "kiosk", "checked_person": PERSON}
    with running_gateway(providers={"desk": desk}) as gateway:
        citizen = Browser(gateway)
        started = citizen.authorize(**citizen.authorize_params("basic"))
        assert started.status_code == 303, started.text
        callback = citizen.follow_to_client(started)
        tokens = token_request(gateway, code_form_of(callback), auth=("basic", "basic-secret"))
        userinfo = citizen.http.get(
            "/userinfo", headers={"Authorization": f"Bearer {tokens.json()['access_token']}"}
        )
        citizen.close()
    assert tokens.status_code == 200
    assert userinfo.json()["https://id.oidc.se/claim/personalIdentityNumber"] == PERSON


def test_the_documented_type_refuses_production_and_unknown_keys(
    kiosk: types.ModuleType,
) -> None:
    data = {
        "issuer": "https://login.kommun.example",
        "environment": "production",
        "secret_key": "k" * 40,
        "subject_salt": "a-salt-of-sixteen-or-more",
        "providers": {"desk": {"type": "kiosk", "checked_person": PERSON, "colour": "red"}},
        "clients": [{"client_id": "a", "client_secret": "s", "redirect_uris": ["https://x/cb"]}],
    }
    with pytest.raises(SettingsError) as refused:
        settings_from_data(data)
    assert any("colour" in problem for problem in refused.value.problems)
    del data["providers"]["desk"]["colour"]  # type: ignore[attr-defined]
    with pytest.raises(SettingsError) as refused:
        settings_from_data(data)
    assert any("refuses to load in production" in p for p in refused.value.problems)


def code_form_of(callback: dict[str, str]) -> dict[str, str]:
    from tests.harness import LoginResult

    return code_form(LoginResult(callback, None))
