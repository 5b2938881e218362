"""Shared pytest setup: Hypothesis profiles, and the helper installed as an admin would."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from tests.e2e.harness import proxy_dir, system_install

# CI: derandomised, so a red run is reproducible; no per-example deadline
# (the machine is shared and 2-core).
settings.register_profile(
    "ci",
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
settings.register_profile(
    "dev",
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
settings.load_profile("ci" if os.environ.get("CI") else os.environ.get("HYPOTHESIS_PROFILE", "dev"))


@pytest.fixture(scope="session")
def installed() -> Iterator[Path]:
    """The helper installed by ./setup.sh system-install under a prefix Squid's user can
    read (once per run: every test that runs it under the real Squid shares it); the
    installed squidguard-bloom script's path."""
    prefix = proxy_dir("sgb-install-")
    try:
        yield system_install(prefix)
    finally:
        shutil.rmtree(prefix, ignore_errors=True)
