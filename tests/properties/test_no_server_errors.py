"""Property: no input to any public endpoint yields a 5xx, and every answer has its protocol's
shape (tests/properties/checks.py). Each endpoint is probed with generated methods, parameters,
headers (Authorization, Cookie, Content-Type, Accept, ...) and bodies (form, JSON, raw bytes,
huge, non-UTF-8, deeply nested), mixed with live values of a real login part of the way through,
against the whole gateway served by uvicorn (tests/properties/site.py)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.properties import checks
from tests.properties.endpoints import ENDPOINTS, Endpoint, each_authorize_parameter
from tests.properties.profiles import LONG, LONG_FOCUSED, QUICK, QUICK_FOCUSED
from tests.properties.site import Live, Site

# When to probe with a live state: fresh from a real login, the previous one (often used up by
# then), or none at all.
STATES = ("fresh", "previous", "none")
previous: dict[str, Live] = {}


def probe_once(site: Site, endpoint: Endpoint, data: st.DataObject) -> None:
    live = Live()
    if endpoint.live is not None:
        state = data.draw(st.sampled_from(STATES), label="live state")
        if state == "fresh" or (state == "previous" and endpoint.name not in previous):
            live = previous[endpoint.name] = endpoint.live(site)
        elif state == "previous":
            live = previous[endpoint.name]
    request = data.draw(endpoint.probes(site, live), label="request")
    response = site.send(request.method, request.target, **request.options())
    if request.method == "HEAD":  # no body to judge
        checks.no_server_error(request, response)
    else:
        endpoint.check(request, response)


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda endpoint: endpoint.name)
@QUICK
@given(data=st.data())
def test_no_input_yields_a_server_error(
    site: Site, endpoint: Endpoint, data: st.DataObject
) -> None:
    probe_once(site, endpoint, data)


@pytest.mark.parametrize("endpoint", each_authorize_parameter(), ids=lambda endpoint: endpoint.name)
@QUICK_FOCUSED
@given(data=st.data())
def test_no_authorize_parameter_yields_a_server_error(
    site: Site, endpoint: Endpoint, data: st.DataObject
) -> None:
    """Each parameter hostile in an otherwise valid request, so the probe reaches its check."""
    probe_once(site, endpoint, data)


@pytest.mark.slow
@pytest.mark.parametrize("endpoint", each_authorize_parameter(), ids=lambda endpoint: endpoint.name)
@LONG_FOCUSED
@given(data=st.data())
def test_no_authorize_parameter_yields_a_server_error_in_a_long_run(
    site: Site, endpoint: Endpoint, data: st.DataObject
) -> None:
    probe_once(site, endpoint, data)


@pytest.mark.slow
@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda endpoint: endpoint.name)
@LONG
@given(data=st.data())
def test_no_input_yields_a_server_error_in_a_long_run(
    site: Site, endpoint: Endpoint, data: st.DataObject
) -> None:
    probe_once(site, endpoint, data)
