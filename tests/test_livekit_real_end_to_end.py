"""End to end on the real LiveKit server: Temporal dev server, worker, gateway, LiveKit + Redis.

LiveKit's own webhooks drive the room: no event is sent by the test.
"""

from __future__ import annotations

import uuid
from typing import Any

import aiohttp
import pytest
from livekit import api
from temporalio.client import WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment

from telephony.client import TelephonyClient
from telephony.contracts import (
    MANAGED_BY_ATTRIBUTE,
    MANAGED_BY_VALUE,
    ROOM_ID_ATTRIBUTE,
    SENTINEL_ATTRIBUTE,
    SENTINEL_ROOM_ID,
)
from telephony.settings import Settings, load_settings
from tests.fixtures.keys import PAYLOAD_KEYS, PIN_HASH_KEY
from tests.fixtures.livekit_real import RealLiveKit
from tests.fixtures.polling import eventually
from webhook_gateway.app import create_app
from webhook_gateway.server import serving
from worker.app import running_worker

pytestmark = pytest.mark.livekit_real
API_TOKEN = "real-livekit-end-to-end-token"


def real_settings(real_livekit: RealLiveKit, queue: str, **extra: Any) -> Settings:
    """Telephony on the real server, on a task queue of its own."""
    return load_settings(
        room_telephony_enabled=True,
        livekit_url=real_livekit.url,
        livekit_api_key=real_livekit.api_key,
        livekit_api_secret=real_livekit.api_secret,
        telephony_task_queue=f"{queue}-{uuid.uuid4().hex[:8]}",
        telephony_pin_hash_key=PIN_HASH_KEY,
        telephony_payload_keys=PAYLOAD_KEYS,
        **extra,
    )


async def rules_of(livekit: api.LiveKitAPI, room: str) -> list[api.SIPDispatchRuleInfo]:
    listing = await livekit.sip.list_dispatch_rule(api.ListSIPDispatchRuleRequest())
    return [r for r in listing.items if r.rule.dispatch_rule_direct.room_name == room]


async def test_a_room_driven_by_real_livekit_webhooks_opens_and_closes_its_rule(
    temporal_env: WorkflowEnvironment, real_livekit: RealLiveKit
) -> None:
    settings = real_settings(
        real_livekit,
        "real-e2e",
        room_telephony_phone_number="+33123456789",
        room_telephony_default_country="FR",
        telephony_api_token=API_TOKEN,
    )
    client = TelephonyClient(temporal_env.client, settings)
    room = f"real-{uuid.uuid4()}"
    headers = {"Authorization": f"Bearer {API_TOKEN}"}
    app = create_app(settings, client)

    async with (
        running_worker(settings, temporal_env.client),
        serving(app, "127.0.0.1", real_livekit.webhook_port) as gateway,
        aiohttp.ClientSession(headers=headers) as http,
        real_livekit.api() as livekit,
    ):
        async with http.put(f"{gateway}/api/v1/rooms/{room}") as response:
            assert response.status == 200, await response.text()
            pin = (await response.json())["pin"]

        # LiveKit's own room_started webhook reaches the gateway and opens the rule.
        await livekit.room.create_room(api.CreateRoomRequest(name=room, empty_timeout=600))
        (rule,) = await eventually(lambda: rules_of(livekit, room), message="rule in LiveKit")
        assert rule.rule.dispatch_rule_direct.pin == pin
        assert dict(rule.attributes) == {
            MANAGED_BY_ATTRIBUTE: MANAGED_BY_VALUE,
            ROOM_ID_ATTRIBUTE: room,
        }
        assert rule.name == f"telephony-room-{room}"

        # And its room_finished webhook closes it.
        await livekit.room.delete_room(api.DeleteRoomRequest(room=room))
        await eventually(lambda: _no_rules(livekit, room), message="rule gone after room_finished")

        async with http.delete(f"{gateway}/api/v1/rooms/{room}") as response:
            assert response.status == 204
        await eventually(
            lambda: _lease_closed(temporal_env, settings.pin_lease_id(pin)),
            message="lease released",
        )


async def test_a_reconciliation_keeps_the_sentinel_rule_on_the_real_server(
    temporal_env: WorkflowEnvironment, real_livekit: RealLiveKit
) -> None:
    settings = real_settings(real_livekit, "real-sentinel")
    client = TelephonyClient(temporal_env.client, settings)

    async with running_worker(settings, temporal_env.client), real_livekit.api() as livekit:
        first = await client.reconcile()
        second = await client.reconcile()
        (rule,) = await rules_of(livekit, SENTINEL_ROOM_ID)
        try:
            assert first.sentinel_rule_id == second.sentinel_rule_id == rule.sip_dispatch_rule_id
            assert rule.rule.dispatch_rule_direct.pin == settings.sentinel_pin()
            assert dict(rule.attributes) == {
                MANAGED_BY_ATTRIBUTE: MANAGED_BY_VALUE,
                ROOM_ID_ATTRIBUTE: SENTINEL_ROOM_ID,
                SENTINEL_ATTRIBUTE: "true",
            }
        finally:  # the server is shared with other tests
            await livekit.sip.delete_dispatch_rule(
                api.DeleteSIPDispatchRuleRequest(sip_dispatch_rule_id=rule.sip_dispatch_rule_id)
            )


async def _no_rules(livekit: api.LiveKitAPI, room: str) -> bool:
    return await rules_of(livekit, room) == []


async def _lease_closed(env: WorkflowEnvironment, lease_id: str) -> bool:
    description = await env.client.get_workflow_handle(lease_id).describe()
    return description.status is not WorkflowExecutionStatus.RUNNING
