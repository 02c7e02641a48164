"""A room's own phone policy over the settings' defaults: dispatch mode, dial-in numbers and
callers' number hiding, set at registration and changed by registering again."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from temporalio.testing import WorkflowEnvironment

from livekit_emulator import LiveKitEmulator
from telephony.client import InvalidNumbers
from telephony.models import DispatchMode, TelephonyState
from tests.fixtures.gateway import GatewayStack, gateway_stack
from tests.fixtures.polling import eventually
from tests.fixtures.stack import PHONE_NUMBER, Stack

# A second dial-in number, on a trunk of its own; both are configured.
OTHER_NUMBER = "+33187210000"


@pytest.fixture
async def gw_two_numbers(
    temporal_env: WorkflowEnvironment, emulator: LiveKitEmulator
) -> AsyncIterator[GatewayStack]:
    """The stack behind its gateway, with both numbers configured."""
    await emulator.create_inbound_trunk(numbers=[OTHER_NUMBER], name="second trunk")
    async with gateway_stack(
        temporal_env, emulator, room_telephony_phone_numbers=OTHER_NUMBER
    ) as running:
        yield running


@pytest.fixture
def two_numbers(gw_two_numbers: GatewayStack) -> Stack:
    return gw_two_numbers.stack


def new_room() -> str:
    return str(uuid.uuid4())


async def test_a_room_on_one_number_gets_a_rule_for_that_number_and_lists_only_it(
    two_numbers: Stack,
) -> None:
    stack, room = two_numbers, new_room()

    info = await stack.client.register_room(room, numbers=["01 87 21 00 00"])
    await stack.start_room(room)

    (rule,) = await eventually(lambda: stack.rules_for(room), message="rule created")
    assert list(rule.numbers) == [OTHER_NUMBER]
    assert [n.e164 for n in info.numbers] == [OTHER_NUMBER]
    assert (await stack.emulator.simulate_call(info.pin, number=OTHER_NUMBER)).accepted
    refused = await stack.emulator.simulate_call(info.pin, number=PHONE_NUMBER)
    assert not refused.accepted and refused.reason == "no_answer"  # no rule for that number


async def test_a_room_without_numbers_of_its_own_lists_every_number(two_numbers: Stack) -> None:
    info = await two_numbers.client.register_room(new_room())

    assert [n.e164 for n in info.numbers] == [PHONE_NUMBER, OTHER_NUMBER]


async def test_registering_again_with_other_numbers_replaces_the_live_rule_in_place(
    two_numbers: Stack,
) -> None:
    stack, room = two_numbers, new_room()
    info = await stack.client.register_room(room)
    await stack.start_room(room)
    (before,) = await eventually(lambda: stack.rules_for(room), message="rule created")

    again = await stack.client.register_room(room, numbers=[PHONE_NUMBER])

    (after,) = stack.rules_for(room)  # the answer waits for LiveKit to hold the new rule
    assert after.sip_dispatch_rule_id == before.sip_dispatch_rule_id  # replaced, never deleted
    assert list(after.numbers) == [PHONE_NUMBER]
    assert again.pin == info.pin and [n.e164 for n in again.numbers] == [PHONE_NUMBER]
    assert (await stack.emulator.simulate_call(info.pin, number=PHONE_NUMBER)).accepted
    assert not (await stack.emulator.simulate_call(info.pin, number=OTHER_NUMBER)).accepted


async def test_every_number_again_lifts_the_rooms_restriction(two_numbers: Stack) -> None:
    stack, room = two_numbers, new_room()
    await stack.client.register_room(room, numbers=[PHONE_NUMBER])
    await stack.start_room(room)
    await eventually(lambda: stack.rules_for(room), message="rule created")

    info = await stack.client.register_room(room, numbers=[])

    (rule,) = stack.rules_for(room)
    assert list(rule.numbers) == []
    assert [n.e164 for n in info.numbers] == [PHONE_NUMBER, OTHER_NUMBER]


async def test_a_registration_that_leaves_the_policy_out_keeps_the_rooms_own(
    two_numbers: Stack,
) -> None:
    stack, room = two_numbers, new_room()
    await stack.client.register_room(
        room, numbers=[OTHER_NUMBER], dispatch_mode=DispatchMode.ALWAYS, hide_phone_number=True
    )

    await stack.client.register_room(room)

    status = await stack.client.get_status(room)
    assert (status.numbers, status.dispatch_mode, status.hide_phone_number) == (
        [OTHER_NUMBER],
        DispatchMode.ALWAYS,
        True,
    )


async def test_a_number_that_is_not_a_dial_in_number_is_refused(two_numbers: Stack) -> None:
    room = new_room()

    with pytest.raises(InvalidNumbers, match=r"\+33199999999 is not one of the dial-in numbers"):
        await two_numbers.client.register_room(room, numbers=["+33199999999"])
    with pytest.raises(InvalidNumbers, match="'banana' is not a phone number"):
        await two_numbers.client.register_room(room, numbers=["banana"])


async def test_a_room_in_always_mode_has_its_rule_with_no_meeting_live(stack: Stack) -> None:
    room = new_room()

    info = await stack.client.register_room(room, dispatch_mode=DispatchMode.ALWAYS)

    await eventually(lambda: len(stack.rules_for(room)) == 1, message="rule without a session")
    assert info.pin and stack.settings.room_telephony_dispatch_mode is DispatchMode.WHILE_ACTIVE
    assert (await stack.client.get_status(room)).state is TelephonyState.OPEN


async def test_switching_a_room_back_to_while_active_removes_its_idle_rule(stack: Stack) -> None:
    room = new_room()
    await stack.client.register_room(room, dispatch_mode=DispatchMode.ALWAYS)
    await eventually(lambda: len(stack.rules_for(room)) == 1, message="rule without a session")

    await stack.client.register_room(room, dispatch_mode=DispatchMode.WHILE_ACTIVE)

    assert stack.rules_for(room) == []


async def test_a_room_that_hides_callers_numbers_gets_a_rule_that_hides_them(stack: Stack) -> None:
    room = new_room()
    await stack.client.register_room(room, hide_phone_number=True)

    await stack.start_room(room)

    (rule,) = await eventually(lambda: stack.rules_for(room), message="rule created")
    assert rule.hide_phone_number and not stack.settings.room_telephony_hide_phone_number


# --- over HTTP ----------------------------------------------------------------------------------


async def test_put_with_a_phone_policy_registers_the_room_with_it(
    gw_two_numbers: GatewayStack,
) -> None:
    room = new_room()

    reply = await gw_two_numbers.gateway.api(
        "PUT",
        f"/rooms/{room}",
        json={"dispatch_mode": "always", "numbers": ["+33 1 87 21 00 00"]},
    )

    assert reply.status == 200, reply.json
    assert [n["e164"] for n in reply.json["numbers"]] == [OTHER_NUMBER]
    stack = gw_two_numbers.stack
    (rule,) = await eventually(lambda: stack.rules_for(room), message="rule without a session")
    assert list(rule.numbers) == [OTHER_NUMBER]


async def test_put_with_a_number_that_is_not_configured_is_400_invalid_numbers(
    gw_two_numbers: GatewayStack,
) -> None:
    reply = await gw_two_numbers.gateway.api(
        "PUT", f"/rooms/{new_room()}", json={"numbers": ["+33199999999"]}
    )

    assert reply.status == 400
    assert reply.json["error"] == "invalid_numbers"


async def test_put_with_an_unknown_dispatch_mode_is_400(gw_two_numbers: GatewayStack) -> None:
    reply = await gw_two_numbers.gateway.api(
        "PUT", f"/rooms/{new_room()}", json={"dispatch_mode": "sometimes"}
    )

    assert reply.status == 400
    assert reply.json["error"] == "invalid_body"
