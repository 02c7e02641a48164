"""`POST /livekit/webhook`: signed LiveKit events become room workflow signals; everything else is
refused with the status LiveKit should see, or acknowledged and ignored with a reason."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator

from temporalio.testing import WorkflowEnvironment

from livekit_emulator import LiveKitEmulator
from tests.fixtures.gateway import GatewayStack, gateway_stack, sign_webhook, webhook_body
from tests.fixtures.polling import eventually
from webhook_gateway.bodies import MAX_BODY_BYTES


def new_room() -> str:
    return str(uuid.uuid4())


async def registered_open_room(gw: GatewayStack) -> tuple[str, str]:
    """A registered room, open in LiveKit (a participant keeps it open): (room id, room sid)."""
    room = new_room()
    assert (await gw.gateway.api("PUT", f"/rooms/{room}")).status == 200
    livekit_room = await gw.emulator.create_room(room, empty_timeout=600)
    await gw.emulator.join_participant(room, "web-alice")
    return room, livekit_room.sid


# --- events that are acted on -----------------------------------------------------------------


async def test_room_started_for_a_registered_room_is_processed_and_opens_its_rule(
    gw: GatewayStack,
) -> None:
    room, sid = await registered_open_room(gw)

    reply = await gw.gateway.signed_webhook(webhook_body("room_started", room, sid=sid))

    assert (reply.status, reply.json) == (200, {"status": "processed", "reason": None})
    await eventually(lambda: gw.stack.rules_for(room), message="rule created")


async def test_participant_joined_counts_as_activity_and_opens_the_rule(gw: GatewayStack) -> None:
    room, sid = await registered_open_room(gw)

    reply = await gw.gateway.signed_webhook(webhook_body("participant_joined", room, sid=sid))

    assert reply.json["status"] == "processed"
    await eventually(lambda: gw.stack.rules_for(room), message="rule created")


async def test_room_finished_closes_the_rule(gw: GatewayStack) -> None:
    room, sid = await registered_open_room(gw)
    await gw.gateway.signed_webhook(webhook_body("room_started", room, sid=sid))
    await eventually(lambda: gw.stack.rules_for(room), message="rule created")
    await gw.emulator.delete_room(room)

    reply = await gw.gateway.signed_webhook(webhook_body("room_finished", room, sid=sid))

    assert reply.json["status"] == "processed"
    await eventually(lambda: not gw.stack.rules_for(room), message="rule deleted")


async def test_a_bearer_prefixed_signature_is_accepted(gw: GatewayStack) -> None:
    room, sid = await registered_open_room(gw)
    body = webhook_body("room_started", room, sid=sid)

    reply = await gw.gateway.webhook(body, f"Bearer {sign_webhook(body)}")

    assert reply.json["status"] == "processed"


# --- events acknowledged and ignored -----------------------------------------------------------


async def test_an_event_for_an_unregistered_room_is_ignored_not_refused(gw: GatewayStack) -> None:
    reply = await gw.gateway.signed_webhook(webhook_body("room_started", new_room()))

    assert (reply.status, reply.json) == (
        200,
        {"status": "ignored", "reason": "room is not registered"},
    )


async def test_an_event_type_that_is_not_handled_is_ignored(gw: GatewayStack) -> None:
    reply = await gw.gateway.signed_webhook(webhook_body("egress_started", new_room()))

    assert reply.status == 200
    assert reply.json["status"] == "ignored"
    assert "egress_started" in reply.json["reason"]


async def test_a_room_name_that_cannot_be_a_room_id_is_ignored(gw: GatewayStack) -> None:
    reply = await gw.gateway.signed_webhook(webhook_body("room_started", "../not a room"))

    assert (reply.status, reply.json["status"]) == (200, "ignored")


async def test_a_room_outside_the_filter_regex_is_ignored_even_when_registered(
    temporal_env: WorkflowEnvironment, emulator: LiveKitEmulator
) -> None:
    uuid_only = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
    async with gateway_stack(
        temporal_env, emulator, livekit_webhook_events_filter_regex=uuid_only
    ) as gw:
        room = f"survey-{uuid.uuid4().hex[:8]}"
        assert (await gw.gateway.api("PUT", f"/rooms/{room}")).status == 200

        reply = await gw.gateway.signed_webhook(webhook_body("room_started", room))

        assert reply.json["status"] == "ignored"
        assert "LIVEKIT_WEBHOOK_EVENTS_FILTER_REGEX" in reply.json["reason"]
        assert gw.stack.rules_for(room) == []


# --- refusals ---------------------------------------------------------------------------------


async def test_a_webhook_signed_with_another_secret_is_401(gw: GatewayStack) -> None:
    body = webhook_body("room_started", new_room())

    reply = await gw.gateway.signed_webhook(body, api_secret="another-secret-0123456789abcdefghij")

    assert (reply.status, reply.json["error"]) == (401, "bad_signature")


async def test_a_webhook_signed_by_an_unknown_api_key_is_401(gw: GatewayStack) -> None:
    body = webhook_body("room_started", new_room())

    reply = await gw.gateway.signed_webhook(body, api_key="someone-else")

    assert (reply.status, reply.json["error"]) == (401, "bad_signature")


async def test_a_tampered_webhook_body_is_401(gw: GatewayStack) -> None:
    signed = webhook_body("room_finished", new_room())
    tampered = signed.replace("room_finished", "room_started")

    reply = await gw.gateway.webhook(tampered, sign_webhook(signed))

    assert (reply.status, reply.json["error"]) == (401, "body_mismatch")


async def test_an_expired_webhook_token_is_401(gw: GatewayStack) -> None:
    body = webhook_body("room_started", new_room())

    # Expired two minutes ago: beyond the verifier's one-minute leeway.
    reply = await gw.gateway.webhook(body, sign_webhook(body, ttl=-120))

    assert (reply.status, reply.json["error"]) == (401, "expired_signature")


async def test_a_webhook_without_authorization_header_is_401(gw: GatewayStack) -> None:
    reply = await gw.gateway.webhook(webhook_body("room_started", new_room()), None)

    assert (reply.status, reply.json["error"]) == (401, "missing_signature")


async def test_a_signed_body_that_is_not_json_is_400(gw: GatewayStack) -> None:
    reply = await gw.gateway.signed_webhook("room_started, please")

    assert (reply.status, reply.json["error"]) == (400, "malformed_webhook")


async def test_signed_json_that_is_not_a_webhook_event_is_400(gw: GatewayStack) -> None:
    reply = await gw.gateway.signed_webhook(json.dumps({"event": {"nested": True}}))

    assert (reply.status, reply.json["error"]) == (400, "malformed_webhook")


async def test_a_room_event_without_a_room_is_400(gw: GatewayStack) -> None:
    reply = await gw.gateway.signed_webhook(json.dumps({"event": "room_started", "id": "EV_1"}))

    assert (reply.status, reply.json["error"]) == (400, "malformed_webhook")


async def test_a_room_event_without_room_sid_is_400(gw: GatewayStack) -> None:
    reply = await gw.gateway.signed_webhook(webhook_body("room_started", new_room(), sid=None))

    assert reply.status == 400
    assert "room.sid" in reply.json["message"]


async def test_a_room_event_without_an_event_id_is_400(gw: GatewayStack) -> None:
    reply = await gw.gateway.signed_webhook(webhook_body("room_started", new_room(), event_id=""))

    assert reply.status == 400
    assert "event id" in reply.json["message"]


async def test_a_webhook_body_over_one_mebibyte_is_413_even_when_signed(gw: GatewayStack) -> None:
    padding = "x" * MAX_BODY_BYTES
    body = json.dumps({"event": "room_started", "room": {"name": "r", "metadata": padding}})

    reply = await gw.gateway.signed_webhook(body)

    assert (reply.status, reply.json["error"]) == (413, "body_too_large")


async def test_a_chunked_webhook_body_is_cut_off_at_one_mebibyte(gw: GatewayStack) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(20):
            yield b"x" * (128 * 1024)

    reply = await gw.gateway.webhook(chunks(), sign_webhook(b"irrelevant"))

    assert (reply.status, reply.json["error"]) == (413, "body_too_large")
