"""Every side effect of the service, as Temporal activities.

The worker opens one LiveKit session for its lifetime and registers what `build_activities`
returns:

    async with open_livekit_api(settings) as livekit:
        worker = Worker(client, ..., activities=build_activities(settings, livekit, client))
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from livekit.api import LiveKitAPI
from temporalio.client import Client

from activities.livekit_activities import LiveKitActivities
from activities.livekit_client import (
    LiveKitNotConfigured,
    create_livekit_api,
    open_livekit_api,
)
from activities.livekit_errors import classify
from activities.pins import PinActivities, PinSource, secret_pin
from activities.temporal import TemporalActivities
from telephony.settings import Settings

__all__ = [
    "LiveKitActivities",
    "LiveKitNotConfigured",
    "PinActivities",
    "PinSource",
    "TemporalActivities",
    "build_activities",
    "classify",
    "create_livekit_api",
    "open_livekit_api",
    "secret_pin",
]


def build_activities(
    settings: Settings,
    livekit_api: LiveKitAPI,
    temporal_client: Client | None,
    pin_source: PinSource | None = None,
) -> list[Callable[..., Any]]:
    """The activity callables for a worker. Without a Temporal client, `is_workflow_open` is left
    out (a worker that runs PIN leases needs one)."""
    lk = LiveKitActivities(settings, livekit_api)
    activities: list[Callable[..., Any]] = [
        lk.ensure_dispatch_rule,
        lk.delete_dispatch_rule,
        lk.check_room_liveness,
        lk.list_trunk_numbers,
        lk.list_managed_rules,
        PinActivities(pin_source).draw_pin,
    ]
    if temporal_client is not None:
        temporal = TemporalActivities(temporal_client, settings.telephony_task_queue)
        activities += [
            temporal.is_workflow_open,
            temporal.filter_open_rooms,
            temporal.list_rooms_in_state,
        ]
    return activities
