"""Keeping existing PINs: a room registers (or rotates) with a PIN it already has elsewhere —
La Suite Meet's `pin_code`, printed in invitations — when that PIN is free."""

from __future__ import annotations

import secrets
import uuid

import pytest
from temporalio.client import WorkflowExecutionStatus, WorkflowUpdateFailedError

from telephony import contracts
from telephony.client import InvalidPin, PinConflict, PinTaken
from telephony.models import RoomStatus, RotatePin
from tests.fixtures.polling import eventually
from tests.fixtures.stack import Stack


def new_room() -> str:
    return str(uuid.uuid4())


def requested_pin(length: int = 9) -> str:
    # A length no random draw of the shared dev server uses (10 and 4 digits do).
    return "".join(secrets.choice("0123456789") for _ in range(length))


async def lease_running(stack: Stack, pin: str) -> bool:
    handle = stack.env.client.get_workflow_handle(stack.settings.pin_lease_id(pin))
    return (await handle.describe()).status is WorkflowExecutionStatus.RUNNING


async def test_a_free_requested_pin_is_adopted_with_its_lease(stack: Stack) -> None:
    pin = requested_pin()

    info = await stack.client.register_room(new_room(), pin=pin)

    assert info.pin == pin
    assert await lease_running(stack, pin)
    assert stack.pins.draws == []


async def test_a_requested_pin_of_another_length_than_configured_is_adopted(
    stack: Stack,
) -> None:
    pin = requested_pin(6 if stack.settings.room_telephony_pin_length != 6 else 7)

    info = await stack.client.register_room(new_room(), pin=pin)

    assert info.pin == pin and len(pin) != stack.settings.room_telephony_pin_length


async def test_a_requested_pin_may_be_written_with_spaces_and_dashes(stack: Stack) -> None:
    pin = requested_pin()

    info = await stack.client.register_room(new_room(), pin=f"{pin[:3]} {pin[3:6]}-{pin[6:]}")

    assert info.pin == pin


async def test_a_pin_held_by_another_room_is_refused_without_naming_the_holder(
    stack: Stack,
) -> None:
    pin, holder = requested_pin(), new_room()
    await stack.client.register_room(holder, pin=pin)

    with pytest.raises(PinTaken) as refused:
        await stack.client.register_room(new_room(), pin=pin)

    assert holder not in str(refused.value) and pin not in str(refused.value)
    assert (await stack.client.get_room(holder)).pin == pin


async def test_registering_again_with_the_rooms_own_pin_changes_nothing(stack: Stack) -> None:
    pin, room = requested_pin(), new_room()
    first = await stack.client.register_room(room, pin=pin)

    again = await stack.client.register_room(room, pin=pin)

    assert again.pin == first.pin == pin


async def test_requesting_another_pin_for_a_registered_room_is_a_conflict(stack: Stack) -> None:
    room = new_room()
    drawn = await stack.client.register_room(room)

    with pytest.raises(PinConflict):
        await stack.client.register_room(room, pin=requested_pin())

    assert (await stack.client.get_room(room)).pin == drawn.pin


async def test_rotating_to_a_requested_pin_adopts_it_and_releases_the_old_one(
    stack: Stack,
) -> None:
    room, pin = new_room(), requested_pin()
    old = await stack.client.register_room(room)

    rotated = await stack.client.rotate_pin(room, pin=pin)

    assert rotated.pin == pin and await lease_running(stack, pin)
    await eventually(
        lambda: _not_running(stack, old.pin), message="the old PIN's lease is released"
    )


async def test_rotating_to_a_taken_pin_keeps_the_rooms_pin(stack: Stack) -> None:
    pin, room = requested_pin(), new_room()
    await stack.client.register_room(new_room(), pin=pin)
    before = await stack.client.register_room(room)

    with pytest.raises(PinTaken):
        await stack.client.rotate_pin(room, pin=pin)

    assert (await stack.client.get_room(room)).pin == before.pin


@pytest.mark.parametrize("pin", ["123", "12345678901234567", "12a45", ""])
async def test_a_requested_pin_that_is_not_4_to_16_digits_is_refused(
    stack: Stack, pin: str
) -> None:
    with pytest.raises(InvalidPin) as refused:
        await stack.client.register_room(new_room(), pin=pin)

    assert pin == "" or pin not in str(refused.value)


async def test_the_workflow_rejects_a_bad_requested_pin_in_its_validator(stack: Stack) -> None:
    # Past the client (a caller of its own): rejected before it reaches the history.
    room = new_room()
    await stack.client.register_room(room)

    with pytest.raises(WorkflowUpdateFailedError) as rejected:
        await stack.handle(room).execute_update(
            contracts.ROTATE_PIN_UPDATE, RotatePin(pin="12x4"), result_type=RoomStatus
        )

    assert getattr(rejected.value.cause, "type", None) == contracts.INVALID_PIN
    assert (await stack.client.get_room(room)).pin


async def _not_running(stack: Stack, pin: str) -> bool:
    return not await lease_running(stack, pin)
