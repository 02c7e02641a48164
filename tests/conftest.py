"""Fixtures come from `tests/fixtures/`, one module per real component."""

from __future__ import annotations

import pytest

pytest_plugins = [
    "tests.fixtures.temporal",
    "tests.fixtures.livekit",
    "tests.fixtures.stack",
    "tests.fixtures.gateway",
    "tests.fixtures.livekit_real",
    "tests.fixtures.temporal_cluster",
]

# Fixtures of servers that may still be building beside the tests (`tests/fixtures/builds.py`).
_BUILT_SERVERS = frozenset({"real_livekit", "temporal_cluster", "helm"})


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The tests that need a built server run last, so that the rest run while it builds."""

    def needs_build(item: pytest.Item) -> bool:
        callspec = getattr(item, "callspec", None)
        real_target = callspec is not None and callspec.params.get("livekit_target") == "real"
        return real_target or not _BUILT_SERVERS.isdisjoint(getattr(item, "fixturenames", ()))

    items.sort(key=needs_build)  # stable: each group keeps its order
