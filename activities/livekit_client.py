"""The one `LiveKitAPI` session a worker shares between all its activity calls."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

import aiohttp
from livekit.api import LiveKitAPI

from telephony.settings import Settings, reveal

# Per request: long enough for a loaded LiveKit, short enough that Temporal's retry (not a hung
# socket) decides what happens next. Well under the activities' start-to-close timeouts.
DEFAULT_REQUEST_TIMEOUT = timedelta(seconds=10)


class LiveKitNotConfigured(ValueError):
    """The settings lack LIVEKIT_URL, LIVEKIT_API_KEY or LIVEKIT_API_SECRET."""


def create_livekit_api(
    settings: Settings, *, request_timeout: timedelta = DEFAULT_REQUEST_TIMEOUT
) -> LiveKitAPI:
    """A client for the configured LiveKit. Call inside a running event loop; `aclose()` it."""
    secret = reveal(settings.livekit_api_secret)
    missing = [
        name
        for name, value in (
            ("LIVEKIT_URL", settings.livekit_url),
            ("LIVEKIT_API_KEY", settings.livekit_api_key),
            ("LIVEKIT_API_SECRET", secret),
        )
        if not value
    ]
    if missing:
        raise LiveKitNotConfigured(f"LiveKit is not configured: {', '.join(missing)} unset")
    return LiveKitAPI(
        settings.livekit_url,
        settings.livekit_api_key,
        secret,
        timeout=aiohttp.ClientTimeout(total=request_timeout.total_seconds()),
    )


@asynccontextmanager
async def open_livekit_api(
    settings: Settings, *, request_timeout: timedelta = DEFAULT_REQUEST_TIMEOUT
) -> AsyncIterator[LiveKitAPI]:
    """`async with open_livekit_api(settings) as livekit:` for the worker's lifetime."""
    livekit = create_livekit_api(settings, request_timeout=request_timeout)
    try:
        yield livekit
    finally:
        await livekit.aclose()
