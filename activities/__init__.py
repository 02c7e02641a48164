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
from activities.reconcile import ReconcileActivities
from telephony.settings import Settings

__all__ = [
    "LiveKitActivities",
    "LiveKitNotConfigured",
    "PinActivities",
    "PinSource",
    "ReconcileActivities",
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
    """The activity callables for a worker. Without a Temporal client, the activities that call
    Temporal (PIN leases, reconciliation's look-ups) are left out."""
    lk = LiveKitActivities(settings, livekit_api)
    activities: list[Callable[..., Any]] = [
        lk.ensure_dispatch_rule,
        lk.delete_dispatch_rule,
        lk.check_room_liveness,
        lk.list_trunk_numbers,
    ]
    if temporal_client is not None:
        reconcile = ReconcileActivities(settings, livekit_api, temporal_client)
        activities += [
            PinActivities(
                temporal_client, settings.telephony_task_queue, settings.pin_lease_id, pin_source
            ).lease_pin,
            reconcile.reconcile_sentinel,
            reconcile.reconcile_rules,
            reconcile.reconcile_rooms,
            reconcile.reconcile_sessions,
            reconcile.reconcile_leases,
        ]
    return activities
