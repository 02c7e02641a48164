"""Webhooks as LiveKit sends them: signed JWT without "Bearer", body hash claim, WebhookEvent
JSON. Needs a receiver the server can reach (see the `livekit_webhooks` marker)."""

from __future__ import annotations

import asyncio
import json

import jwt
import pytest
from livekit import api

from tests.conformance.conftest import Resources
from tests.fixtures.livekit import LiveKitTarget, ReceivedWebhook, WebhookSink

pytestmark = pytest.mark.livekit_webhooks


async def _room_started(sink: WebhookSink, room: str, within: float = 10.0) -> ReceivedWebhook:
    """The room_started webhook of `room` (a shared server may send others too)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while loop.time() < deadline:
        for hook in sink.accepted:
            event = json.loads(hook.body)
            if event.get("event") == "room_started" and event["room"]["name"] == room:
                return hook
        await asyncio.sleep(0.01)
    raise AssertionError(f"no room_started webhook for {room} within {within}s")


async def test_webhook_verifies_with_webhook_receiver(
    livekit_target: LiveKitTarget, target_webhook_sink: WebhookSink, resources: Resources
) -> None:
    room = await resources.room()
    hook = await _room_started(target_webhook_sink, room.name)
    receiver = api.WebhookReceiver(
        api.TokenVerifier(livekit_target.api_key, livekit_target.api_secret)
    )
    event = receiver.receive(hook.body, hook.headers["Authorization"])
    assert (event.event, event.room.name, event.room.sid) == ("room_started", room.name, room.sid)


async def test_webhook_headers_are_webhook_json_and_bare_token(
    livekit_target: LiveKitTarget, target_webhook_sink: WebhookSink, resources: Resources
) -> None:
    room = await resources.room()
    hook = await _room_started(target_webhook_sink, room.name)
    assert hook.headers["Content-Type"].startswith("application/webhook+json")
    assert not hook.headers["Authorization"].startswith("Bearer ")


async def test_webhook_token_is_valid_for_five_minutes(
    livekit_target: LiveKitTarget, target_webhook_sink: WebhookSink, resources: Resources
) -> None:
    room = await resources.room()
    hook = await _room_started(target_webhook_sink, room.name)
    claims = jwt.decode(hook.headers["Authorization"], options={"verify_signature": False})
    assert claims["iss"] == livekit_target.api_key
    assert claims["exp"] - claims["nbf"] == 300


async def test_webhook_event_has_id_and_created_at(
    livekit_target: LiveKitTarget, target_webhook_sink: WebhookSink, resources: Resources
) -> None:
    room = await resources.room()
    hook = await _room_started(target_webhook_sink, room.name)
    receiver = api.WebhookReceiver(
        api.TokenVerifier(livekit_target.api_key, livekit_target.api_secret)
    )
    event = receiver.receive(hook.body, hook.headers["Authorization"])
    assert event.id.startswith("EV_")
    assert event.created_at >= room.creation_time


async def _hooks_for(
    sink: WebhookSink, room: str, count: int, within: float = 10.0
) -> list[ReceivedWebhook]:
    """The first `count` requests (any answer) carrying `room`'s room_started."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while loop.time() < deadline:
        mine = [hook for hook in sink.received if _is_started(hook, room)]
        if len(mine) >= count:
            return mine[:count]
        await asyncio.sleep(0.01)
    raise AssertionError(f"fewer than {count} room_started requests for {room} in {within}s")


async def test_webhook_body_is_compact_camel_case_protojson(
    target_webhook_sink: WebhookSink, resources: Resources
) -> None:
    room = await resources.room()
    hook = await _room_started(target_webhook_sink, room.name)
    event = json.loads(hook.body)
    assert sorted(event) == ["createdAt", "event", "id", "room"]
    assert isinstance(event["createdAt"], str) and event["createdAt"].isdigit()
    assert (event["room"]["sid"], event["room"]["creationTime"]) == (
        room.sid,
        str(room.creation_time),
    )
    assert '"createdAt":"' in hook.body


async def test_failed_webhook_is_redelivered_a_second_later_with_the_same_id(
    target_webhook_sink: WebhookSink, resources: Resources
) -> None:
    target_webhook_sink.fail_next = 1
    room = await resources.room()
    first, second = await _hooks_for(target_webhook_sink, room.name, 2)
    assert (first.status, second.status) == (500, 200)
    assert json.loads(first.body)["id"] == json.loads(second.body)["id"]
    gap = second.received_at - first.received_at
    assert 0.8 <= gap <= 3.0


async def test_webhook_answered_4xx_is_not_redelivered(
    target_webhook_sink: WebhookSink, resources: Resources
) -> None:
    target_webhook_sink.fail_next = 1
    target_webhook_sink.status_when_failing = 400
    room = await resources.room()
    await _hooks_for(target_webhook_sink, room.name, 1)
    # A retry would come about 1 s after the first attempt.
    await asyncio.sleep(1.5)
    hooks = [h for h in target_webhook_sink.received if _is_started(h, room.name)]
    assert [h.status for h in hooks] == [400]


def _is_started(hook: ReceivedWebhook, room: str) -> bool:
    event = json.loads(hook.body)
    return bool(event.get("event") == "room_started" and event["room"].get("name") == room)
