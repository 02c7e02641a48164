"""Emulator webhooks: signed like LiveKit's, one per room/participant event, unique ids,
asynchronous per-URL delivery with retries."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from livekit import api

from livekit_emulator import LiveKitEmulator
from tests.fixtures.livekit import (
    EMULATOR_API_KEY,
    EMULATOR_API_SECRET,
    EmulatorFactory,
    WebhookSink,
    running_webhook_sink,
)
from tests.fixtures.polling import eventually

RECEIVER = api.WebhookReceiver(api.TokenVerifier(EMULATOR_API_KEY, EMULATOR_API_SECRET))


def events_of(sink: WebhookSink) -> list[api.WebhookEvent]:
    return [RECEIVER.receive(h.body, h.headers["Authorization"]) for h in sink.accepted]


def rooms_of(sink: WebhookSink) -> list[dict[str, Any]]:
    """The raw `room` object of every accepted webhook (protojson, as sent)."""
    return [json.loads(h.body)["room"] for h in sink.accepted]


async def room_life(emu: LiveKitEmulator) -> None:
    """room_started, participant_joined, participant_left, room_finished."""
    await emu.create_room("r")
    await emu.join_participant("r", "alice")
    await emu.leave_participant("r", "alice")
    await emu.delete_room("r")


ROOM_LIFE = ["room_started", "participant_joined", "participant_left", "room_finished"]


async def emulator_for(
    factory: EmulatorFactory, *sinks: WebhookSink, **options: Any
) -> LiveKitEmulator:
    options.setdefault("webhook_retry_backoff", 0.01)
    return await factory(webhook_urls=[s.url for s in sinks], **options)


async def test_room_started_webhook_verifies_with_webhook_receiver(
    emulator_factory: EmulatorFactory, webhook_sink: WebhookSink
) -> None:
    emu = await emulator_for(emulator_factory, webhook_sink)
    room = await emu.create_room("verified")
    await webhook_sink.wait_for(1)
    (event,) = events_of(webhook_sink)
    assert (event.event, event.room.name, event.room.sid) == ("room_started", "verified", room.sid)


async def test_tampered_body_fails_verification(
    emulator_factory: EmulatorFactory, webhook_sink: WebhookSink
) -> None:
    emu = await emulator_for(emulator_factory, webhook_sink)
    await emu.create_room("tampered")
    (hook,) = await webhook_sink.wait_for(1)
    with pytest.raises(Exception, match="hash mismatch"):
        RECEIVER.receive(hook.body.replace("tampered", "tempered"), hook.headers["Authorization"])


async def test_every_event_has_a_unique_ev_id(
    emulator_factory: EmulatorFactory, webhook_sink: WebhookSink
) -> None:
    emu = await emulator_for(emulator_factory, webhook_sink)
    await emu.join_participant("r", "alice")
    await emu.join_participant("r", "bob")
    await emu.delete_room("r")
    await webhook_sink.wait_for(6)
    ids = [e.id for e in events_of(webhook_sink)]
    assert len(ids) == 6 and len(set(ids)) == 6
    assert all(i.startswith("EV_") for i in ids)


async def test_room_life_events_arrive_in_order(
    emulator_factory: EmulatorFactory, webhook_sink: WebhookSink
) -> None:
    emu = await emulator_for(emulator_factory, webhook_sink)
    await emu.join_participant("r", "alice")
    await emu.leave_participant("r", "alice")
    await webhook_sink.wait_for(4)
    assert [e.event for e in events_of(webhook_sink)] == [
        "room_started",
        "participant_joined",
        "participant_left",
        "room_finished",
    ]


async def test_participant_events_carry_the_participant(
    emulator_factory: EmulatorFactory, webhook_sink: WebhookSink
) -> None:
    emu = await emulator_for(emulator_factory, webhook_sink)
    await emu.join_participant("r", "alice", name="Alice")
    await webhook_sink.wait_for(2)
    joined = events_of(webhook_sink)[1]
    assert (joined.participant.identity, joined.participant.name) == ("alice", "Alice")
    assert joined.room.name == "r"


async def test_created_at_is_unix_seconds(
    emulator_factory: EmulatorFactory, webhook_sink: WebhookSink
) -> None:
    emu = await emulator_for(emulator_factory, webhook_sink)
    before = int(time.time())
    await emu.create_room("r")
    await webhook_sink.wait_for(1)
    (event,) = events_of(webhook_sink)
    assert before <= event.created_at <= int(time.time())


async def test_room_finished_after_empty_timeout_when_nobody_joins(
    emulator_factory: EmulatorFactory, webhook_sink: WebhookSink
) -> None:
    emu = await emulator_for(emulator_factory, webhook_sink, empty_timeout=0.1)
    await emu.create_room("lonely")
    await webhook_sink.wait_for(2, within=2.0)
    assert [e.event for e in events_of(webhook_sink)] == ["room_started", "room_finished"]
    assert emu.rooms() == []


async def test_failed_delivery_is_retried_until_accepted(
    emulator_factory: EmulatorFactory, webhook_sink: WebhookSink
) -> None:
    webhook_sink.fail_next = 2
    emu = await emulator_for(emulator_factory, webhook_sink)
    await emu.create_room("retry")
    await webhook_sink.wait_for(1)
    assert [h.status for h in webhook_sink.received] == [500, 500, 200]
    assert [d[1] for d in emu.webhook_deliveries] == ["room_started"]


async def test_retries_resend_the_same_event_id(
    emulator_factory: EmulatorFactory, webhook_sink: WebhookSink
) -> None:
    webhook_sink.fail_next = 1
    emu = await emulator_for(emulator_factory, webhook_sink)
    await emu.create_room("retry")
    await webhook_sink.wait_for(1)
    assert webhook_sink.received[0].body == webhook_sink.received[1].body


async def test_delivery_gives_up_after_max_attempts(
    emulator_factory: EmulatorFactory, webhook_sink: WebhookSink
) -> None:
    webhook_sink.fail_next = 100
    emu = await emulator_for(emulator_factory, webhook_sink, webhook_max_attempts=3)
    await emu.create_room("hopeless")
    await eventually(lambda: bool(emu.webhook_failures))
    assert len(webhook_sink.received) == 3
    assert [f[1] for f in emu.webhook_failures] == ["room_started"]
    assert emu.webhook_deliveries == []


async def test_unreachable_receiver_does_not_block_other_urls(
    emulator_factory: EmulatorFactory, webhook_sink: WebhookSink
) -> None:
    dead = WebhookSink(url="http://127.0.0.1:9/unreachable")
    emu = await emulator_for(emulator_factory, dead, webhook_sink, webhook_max_attempts=2)
    await emu.create_room("r")
    await webhook_sink.wait_for(1)
    await eventually(lambda: bool(emu.webhook_failures))
    assert emu.webhook_failures == [(dead.url, "room_started", emu.webhook_events[0].id)]


async def test_each_url_gets_every_event_in_order_even_while_retrying(
    emulator_factory: EmulatorFactory, webhook_sink: WebhookSink
) -> None:
    webhook_sink.fail_next = 3
    async with running_webhook_sink() as second:
        emu = await emulator_for(emulator_factory, webhook_sink, second)
        await room_life(emu)
        await webhook_sink.wait_for(4)
        await second.wait_for(4)
    emitted = [e.id for e in emu.webhook_events]
    assert [e.event for e in emu.webhook_events] == ROOM_LIFE
    assert [e.id for e in events_of(webhook_sink)] == emitted
    assert [e.id for e in events_of(second)] == emitted


async def test_a_failing_url_does_not_hold_back_the_other(
    emulator_factory: EmulatorFactory, webhook_sink: WebhookSink
) -> None:
    webhook_sink.fail_next = 3  # the first event is retried after 0.1 s, 0.2 s, 0.4 s
    async with running_webhook_sink() as healthy:
        emu = await emulator_for(emulator_factory, webhook_sink, healthy, webhook_retry_backoff=0.1)
        await room_life(emu)
        await healthy.wait_for(4)
        await webhook_sink.wait_for(4)
    assert healthy.accepted[-1].received_at < webhook_sink.accepted[0].received_at


async def test_every_event_of_one_room_incarnation_carries_the_same_creation_times(
    emulator_factory: EmulatorFactory, webhook_sink: WebhookSink
) -> None:
    emu = await emulator_for(emulator_factory, webhook_sink)
    await room_life(emu)
    await webhook_sink.wait_for(4)
    times = {(room["creationTime"], room["creationTimeMs"]) for room in rooms_of(webhook_sink)}
    assert len(times) == 1, times


async def test_a_room_reopened_at_once_has_a_new_sid_and_creation_time_ms(
    emulator_factory: EmulatorFactory, webhook_sink: WebhookSink
) -> None:
    emu = await emulator_for(emulator_factory, webhook_sink)
    await emu.create_room("reused")
    await emu.delete_room("reused")
    await emu.create_room("reused")
    await webhook_sink.wait_for(3)
    _, finished, restarted = rooms_of(webhook_sink)
    assert restarted["sid"] != finished["sid"]
    assert int(restarted["creationTimeMs"]) > int(finished["creationTimeMs"])


async def test_room_sid_differs_per_incarnation_in_webhooks(
    emulator_factory: EmulatorFactory, webhook_sink: WebhookSink
) -> None:
    emu = await emulator_for(emulator_factory, webhook_sink)
    await emu.create_room("reused")
    await emu.delete_room("reused")
    await emu.create_room("reused")
    await webhook_sink.wait_for(3)
    started, finished, restarted = events_of(webhook_sink)
    assert started.room.sid == finished.room.sid != restarted.room.sid
