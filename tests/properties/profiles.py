"""Hypothesis settings for the properties: a quick run in `make test` and a long one in the slow
suite. Both are derandomized and keep no example database, so CI sees the same examples on
every run (no flaky failures); the long run explores further in the same reproducible way.
PORTVAKT_PROPERTY_EXAMPLES overrides the quick run's count per endpoint while developing.

The counts are sized for CI's 20 minutes on 2 shared cores: 60 examples per endpoint take about
2 minutes of `make test`, 150 about 5 minutes of the slow suite. They were 100 and 250 until
issues 21 and 23 added endpoints to probe and about 800 tests, which put CI near its budget
(`make test` alone is now about 13 minutes). Issue 25 added the deployment checks (promtool,
kustomize, the Redis Sentinel start scripts through real failovers, about 90 s of the slow
suite), so the long run went to 90 (about 3 minutes); on 2026-12-01 CI took 19 min 12 s on a
quiet machine, so it is 75 (about 2.5 minutes)."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

QUICK_EXAMPLES = int(os.environ.get("PORTVAKT_PROPERTY_EXAMPLES", "0")) or 60
LONG_EXAMPLES = 75

settings.register_profile(
    "portvakt-quick",
    max_examples=QUICK_EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,  # round trips to a served app on shared cores: time is not the property
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "portvakt-long", settings.get_profile("portvakt-quick"), max_examples=LONG_EXAMPLES
)
QUICK = settings(settings.get_profile("portvakt-quick"))
LONG = settings(settings.get_profile("portvakt-long"))
# One parameter at a time (tests/properties/endpoints.py each_authorize_parameter): fewer each.
QUICK_FOCUSED = settings(QUICK, max_examples=max(QUICK_EXAMPLES * 2 // 5, 10))
LONG_FOCUSED = settings(LONG, max_examples=LONG_EXAMPLES // 3)
