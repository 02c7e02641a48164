"""Dial-in numbers discovered from LiveKit's inbound trunks (ROOM_TELEPHONY_DISCOVER_NUMBERS)."""

from __future__ import annotations

import uuid

from temporalio.testing import WorkflowEnvironment

from livekit_emulator import LiveKitEmulator
from tests.fixtures.stack import PHONE_NUMBER, Stack, telephony_stack

SECOND_TRUNK_NUMBER = "+14155552671"


async def test_dial_in_info_lists_the_numbers_of_the_inbound_trunks_when_discovery_is_on(
    temporal_env: WorkflowEnvironment, emulator: LiveKitEmulator
) -> None:
    await emulator.create_inbound_trunk(numbers=[SECOND_TRUNK_NUMBER], name="us trunk")
    async with telephony_stack(
        temporal_env, emulator, room_telephony_discover_numbers=True
    ) as stack:
        info = await stack.client.register_room(str(uuid.uuid4()))
        config = await stack.client.telephony_config()

    assert [n.e164 for n in info.numbers] == [PHONE_NUMBER, SECOND_TRUNK_NUMBER]
    assert info.numbers[1].tel_uri == f"tel:{SECOND_TRUNK_NUMBER},,{info.pin}%23"
    assert [n.e164 for n in config.numbers] == [PHONE_NUMBER, SECOND_TRUNK_NUMBER]


async def test_trunk_numbers_that_are_not_phone_numbers_are_left_out(
    temporal_env: WorkflowEnvironment, emulator: LiveKitEmulator
) -> None:
    await emulator.create_inbound_trunk(numbers=["not-a-number"], name="odd trunk")
    async with telephony_stack(
        temporal_env, emulator, room_telephony_discover_numbers=True
    ) as stack:
        info = await stack.client.register_room(str(uuid.uuid4()))

    assert [n.e164 for n in info.numbers] == [PHONE_NUMBER]


async def test_without_discovery_only_the_configured_numbers_are_shown(stack: Stack) -> None:
    await stack.emulator.create_inbound_trunk(numbers=[SECOND_TRUNK_NUMBER], name="us trunk")

    info = await stack.client.register_room(str(uuid.uuid4()))

    assert [n.e164 for n in info.numbers] == [PHONE_NUMBER]
