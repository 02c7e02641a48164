"""Fault injection: failing calls, lost responses, latency, misbehaving webhook delivery."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from livekit import api
from livekit.protocol.sip import CreateSIPDispatchRuleRequest, ListSIPDispatchRuleRequest

from livekit_emulator import Faults, LiveKitEmulator
from tests.conformance.conftest import direct_rule
from tests.fixtures.livekit import (
    EMULATOR_API_KEY,
    EMULATOR_API_SECRET,
    EmulatorFactory,
    WebhookSink,
)
from tests.fixtures.polling import eventually

RECEIVER = api.WebhookReceiver(api.TokenVerifier(EMULATOR_API_KEY, EMULATOR_API_SECRET))


@pytest.fixture
async def lk(emulator: LiveKitEmulator) -> AsyncIterator[api.LiveKitAPI]:
    async with api.LiveKitAPI(emulator.url, emulator.api_key, emulator.api_secret) as client:
        yield client


async def create(lk: api.LiveKitAPI, pin: str = "1234") -> api.SIPDispatchRuleInfo:
    return await lk.sip.create_dispatch_rule(
        CreateSIPDispatchRuleRequest(dispatch_rule=direct_rule(pin))
    )


async def hooked(factory: EmulatorFactory, sink: WebhookSink, **kw: Any) -> LiveKitEmulator:
    return await factory(webhook_urls=[sink.url], webhook_retry_backoff=0.01, **kw)


def event_names(sink: WebhookSink) -> list[tuple[str, str]]:
    events = [RECEIVER.receive(h.body, h.headers["Authorization"]) for h in sink.accepted]
    return [(e.event, e.room.name) for e in events]


async def test_fail_next_unavailable_is_503_and_changes_nothing(
    emulator: LiveKitEmulator, lk: api.LiveKitAPI
) -> None:
    emulator.faults.fail_next("CreateSIPDispatchRule")
    with pytest.raises(api.TwirpError) as err:
        await create(lk)
    assert (err.value.status, err.value.code) == (503, "unavailable")
    assert emulator.dispatch_rules() == []


async def test_fail_next_internal_is_500(emulator: LiveKitEmulator, lk: api.LiveKitAPI) -> None:
    emulator.faults.fail_next("ListSIPDispatchRule", code="internal")
    with pytest.raises(api.TwirpError) as err:
        await lk.sip.list_dispatch_rule(ListSIPDispatchRuleRequest())
    assert (err.value.status, err.value.code) == (500, "internal")


async def test_fail_next_is_spent_after_count_calls(
    emulator: LiveKitEmulator, lk: api.LiveKitAPI
) -> None:
    emulator.faults.fail_next("CreateSIPDispatchRule", count=2)
    for _ in range(2):
        with pytest.raises(api.TwirpError):
            await create(lk)
    rule = await create(lk)
    assert [r.sip_dispatch_rule_id for r in emulator.dispatch_rules()] == [
        rule.sip_dispatch_rule_id
    ]


async def test_fail_next_only_affects_the_named_method(
    emulator: LiveKitEmulator, lk: api.LiveKitAPI
) -> None:
    emulator.faults.fail_next("DeleteSIPDispatchRule")
    rule = await create(lk)
    assert rule.sip_dispatch_rule_id.startswith("SDR_")


async def test_apply_then_fail_stores_the_rule_but_answers_503(
    emulator: LiveKitEmulator, lk: api.LiveKitAPI
) -> None:
    emulator.faults.apply_then_fail("CreateSIPDispatchRule")
    with pytest.raises(api.TwirpError) as err:
        await create(lk, pin="4321")
    assert (err.value.status, err.value.code) == (503, "unavailable")
    (stored,) = emulator.dispatch_rules()
    assert stored.rule.dispatch_rule_direct.pin == "4321"


async def test_retried_create_after_lost_response_conflicts_with_the_first(
    emulator: LiveKitEmulator, lk: api.LiveKitAPI
) -> None:
    emulator.faults.apply_then_fail("CreateSIPDispatchRule")
    with pytest.raises(api.TwirpError):
        await create(lk)
    with pytest.raises(api.TwirpError) as err:
        await create(lk)
    assert err.value.code == "invalid_argument"
    assert emulator.dispatch_rules()[0].sip_dispatch_rule_id in err.value.message


async def test_global_latency_delays_every_call(
    emulator: LiveKitEmulator, lk: api.LiveKitAPI
) -> None:
    emulator.faults.set_latency(0.2)
    started = time.monotonic()
    await lk.room.list_rooms(api.ListRoomsRequest())
    assert time.monotonic() - started >= 0.2


async def test_method_latency_leaves_other_methods_fast(
    emulator: LiveKitEmulator, lk: api.LiveKitAPI
) -> None:
    emulator.faults.set_latency(0.3, method="CreateSIPDispatchRule")
    started = time.monotonic()
    await lk.room.list_rooms(api.ListRoomsRequest())
    fast = time.monotonic() - started
    started = time.monotonic()
    await create(lk)
    slow = time.monotonic() - started
    assert fast < 0.3 <= slow


async def test_latency_longer_than_the_caller_deadline_times_out(
    emulator: LiveKitEmulator, lk: api.LiveKitAPI
) -> None:
    # livekit-api 1.2.2 passes timeout=None per request, which disables the session's
    # ClientTimeout: a deadline has to come from the caller (asyncio.timeout).
    emulator.faults.set_latency(0.5)
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.1):
            await lk.room.list_rooms(api.ListRoomsRequest())


async def test_latency_can_be_set_from_the_constructor(
    emulator_factory: EmulatorFactory,
) -> None:
    emu = await emulator_factory(latency=0.2)
    async with api.LiveKitAPI(emu.url, emu.api_key, emu.api_secret) as client:
        started = time.monotonic()
        await client.room.list_rooms(api.ListRoomsRequest())
    assert time.monotonic() - started >= 0.2


async def test_clear_removes_pending_faults(emulator: LiveKitEmulator, lk: api.LiveKitAPI) -> None:
    emulator.faults.fail_next("CreateSIPDispatchRule")
    emulator.faults.set_latency(5.0)
    emulator.faults.clear()
    rule = await create(lk)
    assert rule.sip_dispatch_rule_id.startswith("SDR_")


async def test_faults_route_injects_an_error(emulator: LiveKitEmulator, lk: api.LiveKitAPI) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            emulator.url + "/_emulator/faults/fail_next",
            json={"method": "ListRooms", "code": "internal"},
        ) as resp,
    ):
        assert resp.status == 200
    with pytest.raises(api.TwirpError) as err:
        await lk.room.list_rooms(api.ListRoomsRequest())
    assert err.value.code == "internal"


async def test_faults_route_delete_clears(emulator: LiveKitEmulator, lk: api.LiveKitAPI) -> None:
    emulator.faults.fail_next("ListRooms")
    async with (
        aiohttp.ClientSession() as session,
        session.delete(emulator.url + "/_emulator/faults") as resp,
    ):
        assert resp.status == 204
    listed = await lk.room.list_rooms(api.ListRoomsRequest())
    assert list(listed.rooms) == []


async def test_drop_webhooks_loses_the_next_events(
    emulator_factory: EmulatorFactory, webhook_sink: WebhookSink
) -> None:
    emu = await hooked(emulator_factory, webhook_sink)
    emu.faults.drop_webhooks(1)
    await emu.create_room("dropped")
    await emu.create_room("kept")
    await webhook_sink.wait_for(1)
    await eventually(lambda: len(emu.webhook_events) == 2)
    assert event_names(webhook_sink) == [("room_started", "kept")]


async def test_duplicate_webhooks_sends_the_same_event_twice(
    emulator_factory: EmulatorFactory, webhook_sink: WebhookSink
) -> None:
    emu = await hooked(emulator_factory, webhook_sink)
    emu.faults.duplicate_webhooks(1)
    await emu.create_room("twice")
    hooks = await webhook_sink.wait_for(2)
    assert hooks[0].body == hooks[1].body


async def test_delay_webhooks_lets_later_events_overtake(
    emulator_factory: EmulatorFactory, webhook_sink: WebhookSink
) -> None:
    emu = await hooked(emulator_factory, webhook_sink)
    emu.faults.delay_webhooks(0.2, count=1)
    await emu.create_room("late")
    await emu.create_room("early")
    await webhook_sink.wait_for(2)
    assert event_names(webhook_sink) == [("room_started", "early"), ("room_started", "late")]


async def test_reorder_webhooks_reverses_the_next_events(
    emulator_factory: EmulatorFactory, webhook_sink: WebhookSink
) -> None:
    emu = await hooked(emulator_factory, webhook_sink)
    emu.faults.reorder_webhooks(2)
    await emu.join_participant("r", "alice")
    await webhook_sink.wait_for(2)
    assert event_names(webhook_sink) == [("participant_joined", "r"), ("room_started", "r")]


async def test_faults_prepared_before_start_apply_from_the_first_call(
    emulator_factory: EmulatorFactory,
) -> None:
    faults = Faults()
    faults.fail_next("ListRooms", code="unavailable")
    emu = await emulator_factory(faults=faults)
    async with api.LiveKitAPI(emu.url, emu.api_key, emu.api_secret) as client:
        with pytest.raises(api.TwirpError) as err:
            await client.room.list_rooms(api.ListRoomsRequest())
    assert err.value.status == 503
