"""The Singer SDK's standard tap tests, against a sandbox that lives as long as this module."""

from __future__ import annotations

import atexit

from singer_sdk.testing import get_tap_test_class

from tap_leadtrackr.sandbox import Project, Sandbox, generate_leads
from tap_leadtrackr.tap import TapLeadTrackr

# The SDK builds its test class at collection time and syncs once per class, so the
# sandbox must be up before that and stay up for the whole module.
_SANDBOX = Sandbox(Project(generate_leads(600, seed=21)))
_SANDBOX.start()
atexit.register(_SANDBOX.stop)

TestTapLeadTrackr = get_tap_test_class(
    tap_class=TapLeadTrackr,
    config={"api_key": _SANDBOX.api_key, "api_url": _SANDBOX.url, "page_size": 50},
    parse_env_config=False,
)
