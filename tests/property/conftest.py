"""Hypothesis profiles: "ci" runs a known number of examples, "dev" fewer.

Pick one with the HYPOTHESIS_PROFILE environment variable (default "ci").
"""

from __future__ import annotations

import os

from hypothesis import settings

settings.register_profile("ci", max_examples=300, stateful_step_count=60, deadline=None)
settings.register_profile("dev", max_examples=50, stateful_step_count=30, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
