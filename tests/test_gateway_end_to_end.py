"""The gateway end to end: the backend talks HTTP, LiveKit (the emulator) sends its own signed
webhooks to the gateway, the worker keeps the dispatch rule in step, a phone call gets in."""

from __future__ import annotations

import uuid

from temporalio.client import WorkflowExecutionStatus

from tests.fixtures.gateway import GatewayStack
from tests.fixtures.polling import eventually
from tests.fixtures.stack import PHONE_NUMBER


async def lease_status(gw: GatewayStack, pin: str) -> WorkflowExecutionStatus | None:
    handle = gw.stack.env.client.get_workflow_handle(gw.stack.settings.pin_lease_id(pin))
    return (await handle.describe()).status


async def test_a_room_registered_over_http_follows_livekit_webhooks_until_deleted(
    gw: GatewayStack,
) -> None:
    room = str(uuid.uuid4())
    emulator = gw.emulator
    emulator.add_webhook_url(f"{gw.gateway.url}/livekit/webhook")

    registered = await gw.gateway.api("PUT", f"/rooms/{room}")
    assert registered.status == 200
    pin = registered.json["pin"]
    assert registered.json["numbers"][0]["tel_uri"] == f"tel:{PHONE_NUMBER},,{pin}%23"
    assert gw.stack.rules_for(room) == []

    await emulator.create_room(room, empty_timeout=600)
    await emulator.join_participant(room, "web-alice")
    await eventually(lambda: gw.stack.rules_for(room), message="dispatch rule created")
    call = await emulator.simulate_call(pin, number=PHONE_NUMBER)
    assert call.accepted, call.reason
    assert call.room_name == room
    assert (await gw.gateway.api("GET", f"/rooms/{room}")).json["state"] == "open"

    await emulator.delete_room(room)
    await eventually(lambda: not gw.stack.rules_for(room), message="dispatch rule deleted")
    assert emulator.webhook_failures == []

    unregistered = await gw.gateway.api("DELETE", f"/rooms/{room}")
    assert unregistered.status == 204
    await eventually(lambda: _is_completed(gw, pin), message=f"lease of PIN {pin} completed")
    assert (await gw.gateway.api("GET", f"/rooms/{room}")).status == 404


async def _is_completed(gw: GatewayStack, pin: str) -> bool:
    return await lease_status(gw, pin) == WorkflowExecutionStatus.COMPLETED
