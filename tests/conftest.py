"""Fixtures come from `tests/fixtures/`, one module per real component."""

pytest_plugins = [
    "tests.fixtures.temporal",
    "tests.fixtures.livekit",
    "tests.fixtures.stack",
    "tests.fixtures.gateway",
    "tests.fixtures.livekit_real",
    "tests.fixtures.temporal_cluster",
]
