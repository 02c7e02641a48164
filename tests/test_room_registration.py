"""Registration: one workflow and one leased PIN per room, however often it is registered."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from temporalio.client import WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment

from livekit_emulator import LiveKitEmulator
from telephony.client import InvalidRoomId, PinSpaceExhausted, RoomNotRegistered, TelephonyDisabled
from tests.fixtures.stack import ScriptedPins, Stack, telephony_stack

# Scripted PINs have a length no random draw in this session uses: the dev server is shared, and a
# random lease (the 200-room test holds 4-digit ones) must not take a PIN a test scripts.
SCRIPTED_PIN_LENGTH = 6


def new_room() -> str:
    return str(uuid.uuid4())


async def lease_status(stack: Stack, pin: str) -> WorkflowExecutionStatus | None:
    description = await stack.env.client.get_workflow_handle(
        stack.settings.pin_lease_id(pin)
    ).describe()
    return description.status


async def test_register_returns_a_pin_of_the_configured_length(stack: Stack) -> None:
    info = await stack.client.register_room(new_room())

    assert len(info.pin) == stack.settings.room_telephony_pin_length
    assert info.pin.isdigit()
    assert info.numbers[0].tel_uri == f"tel:{stack.number},,{info.pin}%23"


async def test_registering_again_returns_the_same_pin(stack: Stack) -> None:
    room = new_room()
    first = await stack.client.register_room(room)
    second = await stack.client.register_room(room)

    assert second.pin == first.pin
    assert stack.pins.draws == [first.pin]


async def test_concurrent_registrations_yield_one_workflow_and_one_pin(stack: Stack) -> None:
    room = new_room()
    infos = await asyncio.gather(*(stack.client.register_room(room) for _ in range(20)))

    assert {info.pin for info in infos} == {infos[0].pin}
    # Under this contention a workflow task can fail to complete and its lease local activity
    # run again, drawing again: those extra leases are strays that reconciliation releases
    # (tests/test_reconcile.py). The room's answer is always the lease it holds.
    assert infos[0].pin in stack.pins.draws
    assert await lease_status(stack, infos[0].pin) == WorkflowExecutionStatus.RUNNING
    runs = [
        execution
        async for execution in stack.env.client.list_workflows(
            f"WorkflowId = 'telephony-room-{room}'"
        )
    ]
    assert len(runs) == 1


async def test_the_pin_is_backed_by_a_running_lease(stack: Stack) -> None:
    info = await stack.client.register_room(new_room())

    assert await lease_status(stack, info.pin) == WorkflowExecutionStatus.RUNNING


async def test_two_hundred_rooms_get_distinct_pins_each_with_a_running_lease(
    temporal_env: WorkflowEnvironment, emulator: LiveKitEmulator
) -> None:
    async with telephony_stack(temporal_env, emulator, room_telephony_pin_length=4) as stack:
        infos = await asyncio.gather(*(stack.client.register_room(new_room()) for _ in range(200)))

        pins = [info.pin for info in infos]
        assert len(set(pins)) == 200
        statuses = await asyncio.gather(*(lease_status(stack, pin) for pin in pins))
        assert set(statuses) == {WorkflowExecutionStatus.RUNNING}


async def test_a_pin_held_by_another_room_is_drawn_again(
    temporal_env: WorkflowEnvironment, emulator: LiveKitEmulator
) -> None:
    pins = ScriptedPins(["482113", "482113", "482113", "730519"])
    async with telephony_stack(
        temporal_env, emulator, pins=pins, room_telephony_pin_length=SCRIPTED_PIN_LENGTH
    ) as stack:
        first = await stack.client.register_room(new_room())
        second = await stack.client.register_room(new_room())

    assert (first.pin, second.pin) == ("482113", "730519")
    assert pins.draws == ["482113", "482113", "482113", "730519"]


async def test_pin_exhaustion_fails_registration_with_an_error_naming_the_length(
    temporal_env: WorkflowEnvironment, emulator: LiveKitEmulator
) -> None:
    pins = ScriptedPins(["555531"] * 6)
    async with telephony_stack(
        temporal_env,
        emulator,
        pins=pins,
        room_telephony_pin_length=SCRIPTED_PIN_LENGTH,
        room_telephony_pin_max_retries=5,
    ) as stack:
        await stack.client.register_room(new_room())
        refused = new_room()
        with pytest.raises(PinSpaceExhausted, match="6-digit"):
            await stack.client.register_room(refused)

        # No room is left registered without a PIN.
        with pytest.raises(RoomNotRegistered):
            await stack.client.get_room(refused)
        result = await stack.handle(refused).result()
        assert result.registered is False and result.pin is None


async def test_register_is_refused_when_telephony_is_disabled(
    temporal_env: WorkflowEnvironment, emulator: LiveKitEmulator
) -> None:
    async with telephony_stack(temporal_env, emulator, room_telephony_enabled=False) as stack:
        with pytest.raises(TelephonyDisabled):
            await stack.client.register_room(new_room())


async def test_register_is_refused_for_an_invalid_room_id(stack: Stack) -> None:
    with pytest.raises(InvalidRoomId):
        await stack.client.register_room("../etc/passwd")


async def test_get_room_of_an_unknown_room_raises_room_not_registered(stack: Stack) -> None:
    with pytest.raises(RoomNotRegistered):
        await stack.client.get_room(new_room())
