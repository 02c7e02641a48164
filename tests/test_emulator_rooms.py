"""Room life in the emulator: opening on first participant, closing on empty_timeout or
DeleteRoom, and what a close emits."""

from __future__ import annotations

import asyncio

import pytest
from livekit import api

from livekit_emulator import LiveKitEmulator
from livekit_emulator.rooms import RoomManager
from tests.fixtures.livekit import EMULATOR_EMPTY_TIMEOUT, EmulatorFactory
from tests.fixtures.polling import eventually


def names(emu: LiveKitEmulator) -> list[str]:
    return [r.name for r in emu.rooms()]


async def test_first_web_participant_opens_the_room(emulator: LiveKitEmulator) -> None:
    await emulator.join_participant("r", "alice")
    assert names(emulator) == ["r"]
    assert [e.event for e in emulator.webhook_events] == ["room_started", "participant_joined"]


async def test_room_closes_after_empty_timeout_once_the_last_participant_leaves(
    emulator: LiveKitEmulator,
) -> None:
    await emulator.join_participant("r", "alice")
    await emulator.leave_participant("r", "alice")
    assert names(emulator) == ["r"]  # still within empty_timeout
    await eventually(lambda: names(emulator) == [], within=EMULATOR_EMPTY_TIMEOUT * 4)
    assert emulator.webhook_events[-1].event == "room_finished"


async def test_room_with_a_participant_stays_open_past_empty_timeout(
    emulator_factory: EmulatorFactory,
) -> None:
    emu = await emulator_factory(empty_timeout=0.05)
    await emu.create_room("r")
    await emu.join_participant("r", "alice")
    await asyncio.sleep(0.2)
    assert names(emu) == ["r"]


async def test_rejoin_within_empty_timeout_keeps_the_same_room(
    emulator_factory: EmulatorFactory,
) -> None:
    emu = await emulator_factory(empty_timeout=0.2)
    await emu.join_participant("r", "alice")
    sid = emu.rooms()[0].sid
    await emu.leave_participant("r", "alice")
    await emu.join_participant("r", "bob")
    await asyncio.sleep(0.3)
    assert [r.sid for r in emu.rooms()] == [sid]


async def test_create_room_empty_timeout_overrides_the_default(emulator: LiveKitEmulator) -> None:
    async with api.LiveKitAPI(emulator.url, emulator.api_key, emulator.api_secret) as lk:
        room = await lk.room.create_room(api.CreateRoomRequest(name="long", empty_timeout=60))
    assert room.empty_timeout == 60
    await asyncio.sleep(EMULATOR_EMPTY_TIMEOUT + 0.2)
    assert names(emulator) == ["long"]


async def test_delete_room_emits_participant_left_then_room_finished(
    emulator: LiveKitEmulator,
) -> None:
    await emulator.join_participant("r", "alice")
    await emulator.delete_room("r")
    assert [(e.event, e.participant.identity) for e in emulator.webhook_events[2:]] == [
        ("participant_left", "alice"),
        ("room_finished", ""),
    ]
    assert emulator.rooms() == []


async def test_same_identity_joining_again_replaces_the_first(emulator: LiveKitEmulator) -> None:
    first = await emulator.join_participant("r", "alice")
    second = await emulator.join_participant("r", "alice")
    assert [p.sid for p in emulator.participants("r")] == [second.sid]
    assert first.sid != second.sid
    assert [e.event for e in emulator.webhook_events[-2:]] == [
        "participant_left",
        "participant_joined",
    ]


async def test_list_participants_shows_joined_participants(emulator: LiveKitEmulator) -> None:
    await emulator.join_participant("r", "alice", name="Alice")
    tok = (
        api.AccessToken(emulator.api_key, emulator.api_secret)
        .with_grants(api.VideoGrants(room_admin=True, room="r"))
        .to_jwt()
    )
    async with api.LiveKitAPI(emulator.url, token=tok) as lk:
        listed = await lk.room.list_participants(api.ListParticipantsRequest(room="r"))
    assert [(p.identity, p.name) for p in listed.participants] == [("alice", "Alice")]


async def test_leaving_an_absent_participant_is_a_key_error(emulator: LiveKitEmulator) -> None:
    with pytest.raises(KeyError):
        await emulator.leave_participant("nowhere", "nobody")


async def test_room_counts_its_participants(emulator: LiveKitEmulator) -> None:
    await emulator.join_participant("r", "alice")
    await emulator.join_participant("r", "bob")
    assert emulator.rooms()[0].num_participants == 2


async def test_a_reopened_room_gets_a_later_creation_time_ms_even_within_one_clock_tick() -> None:
    rooms = RoomManager(lambda *_: None, 60.0, clock=lambda: 1_800_000_000.0)
    first = rooms.create("r")
    rooms.delete("r")
    second = rooms.create("r")
    rooms.shutdown()
    assert second.sid != first.sid
    assert second.creation_time_ms > first.creation_time_ms
    assert second.creation_time == second.creation_time_ms // 1000
