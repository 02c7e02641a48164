"""The sentinel rule: with it, LiveKit SIP always answers and asks for the PIN (with no rule at
all on a trunk, it leaves the call ringing unanswered). Its PIN is leased like a room's, so no
room can get it; reconciliation ensures both, and removes them when the setting is off."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from livekit.api import DeleteSIPDispatchRuleRequest
from temporalio.client import WorkflowExecutionStatus
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from livekit_emulator import LiveKitEmulator
from telephony import contracts
from telephony.client import InvalidRoomId, PinTaken
from tests.fixtures.polling import eventually
from tests.fixtures.stack import Stack, telephony_stack

UNKNOWN_PIN = "5550001111"


def sentinels(stack: Stack) -> list[Any]:
    return [
        rule
        for rule in stack.emulator.dispatch_rules()
        if rule.attributes.get(contracts.SENTINEL_ATTRIBUTE) == "true"
    ]


async def lease_running(stack: Stack, lease_id: str) -> bool:
    try:
        description = await stack.env.client.get_workflow_handle(lease_id).describe()
    except RPCError:
        return False
    return description.status is WorkflowExecutionStatus.RUNNING


@pytest.fixture
async def reconciled(
    temporal_env: WorkflowEnvironment, emulator: LiveKitEmulator
) -> AsyncIterator[Stack]:
    """A stack after one reconciliation pass (as at every worker start)."""
    async with telephony_stack(temporal_env, emulator) as stack:
        await stack.client.reconcile()
        yield stack


async def test_a_pass_creates_the_sentinel_rule_with_the_sentinel_pin(reconciled: Stack) -> None:
    (rule,) = sentinels(reconciled)

    assert rule.rule.dispatch_rule_direct.pin == reconciled.settings.sentinel_pin()
    assert rule.rule.dispatch_rule_direct.room_name == contracts.SENTINEL_ROOM_ID
    assert rule.attributes[contracts.MANAGED_BY_ATTRIBUTE] == contracts.MANAGED_BY_VALUE
    assert len(reconciled.settings.sentinel_pin()) == 16


async def test_a_pass_leases_the_sentinel_pin(reconciled: Stack) -> None:
    settings = reconciled.settings

    assert await lease_running(reconciled, settings.pin_lease_id(settings.sentinel_pin()))


async def test_the_next_pass_keeps_the_same_sentinel_rule(reconciled: Stack) -> None:
    (before,) = sentinels(reconciled)

    report = await reconciled.client.reconcile()

    (after,) = sentinels(reconciled)
    assert after.sip_dispatch_rule_id == before.sip_dispatch_rule_id == report.sentinel_rule_id
    assert report.orphans_deleted == 0 and report.leases_released == 0


async def test_a_caller_with_a_pin_no_room_has_hears_wrong_pin_instead_of_ringing(
    reconciled: Stack,
) -> None:
    result = await reconciled.emulator.simulate_call(UNKNOWN_PIN, number=reconciled.number)

    assert (result.accepted, result.answered, result.reason) == (False, True, "wrong_pin")


async def test_without_the_sentinel_a_trunk_with_no_rule_leaves_the_call_unanswered(
    temporal_env: WorkflowEnvironment, emulator: LiveKitEmulator
) -> None:
    async with telephony_stack(temporal_env, emulator, room_telephony_sentinel_rule=False) as s:
        report = await s.client.reconcile()
        result = await emulator.simulate_call(UNKNOWN_PIN, number=s.number)

    assert report.sentinel_rule_id is None and sentinels(s) == []
    assert (result.answered, result.reason) == (False, "no_answer")


async def test_a_lost_sentinel_rule_is_created_again_by_the_next_pass(reconciled: Stack) -> None:
    (lost,) = sentinels(reconciled)
    reconciled.emulator.sip.delete_dispatch_rule(
        DeleteSIPDispatchRuleRequest(sip_dispatch_rule_id=lost.sip_dispatch_rule_id)
    )

    await reconciled.client.reconcile()

    (again,) = sentinels(reconciled)
    assert again.sip_dispatch_rule_id != lost.sip_dispatch_rule_id


async def test_unregistering_every_room_leaves_the_sentinel_in_place(reconciled: Stack) -> None:
    room = str(uuid.uuid4())
    await reconciled.client.register_room(room)
    await reconciled.start_room(room)
    await eventually(lambda: reconciled.rules_for(room), message="the room's rule")

    await reconciled.client.unregister_room(room)
    await reconciled.client.reconcile()

    assert reconciled.rules_for(room) == []
    assert len(sentinels(reconciled)) == 1


async def test_no_room_can_take_the_sentinel_pin(reconciled: Stack) -> None:
    with pytest.raises(PinTaken):
        await reconciled.client.register_room(
            str(uuid.uuid4()), pin=reconciled.settings.sentinel_pin()
        )


async def test_no_room_can_be_registered_under_the_sentinel_room_id(reconciled: Stack) -> None:
    with pytest.raises(InvalidRoomId):
        await reconciled.client.register_room(contracts.SENTINEL_ROOM_ID)


async def test_turning_the_sentinel_off_removes_its_rule_and_releases_its_lease(
    temporal_env: WorkflowEnvironment, emulator: LiveKitEmulator
) -> None:
    # A key of its own: the sentinel's PIN (and lease) is this test's alone on the shared server.
    same: dict[str, Any] = {
        "telephony_task_queue": f"telephony-test-{uuid.uuid4().hex[:8]}",
        "telephony_pin_hash_key": secrets.token_hex(32),
    }
    async with telephony_stack(temporal_env, emulator, **same) as on:
        await on.client.reconcile()
        lease_id = on.settings.pin_lease_id(on.settings.sentinel_pin())
        assert len(sentinels(on)) == 1 and await lease_running(on, lease_id)
        await eventually(lambda: _listed(on, lease_id), message="the lease in visibility")

    async with telephony_stack(
        temporal_env, emulator, room_telephony_sentinel_rule=False, **same
    ) as off:
        report = await off.client.reconcile()

        assert sentinels(off) == []
        assert report.orphans_deleted == 1 and report.leases_released == 1
        await eventually(lambda: _released(off, lease_id), message="the lease released")


async def _listed(stack: Stack, lease_id: str) -> bool:
    query = contracts.running_leases_query(task_queue=stack.settings.telephony_task_queue)
    return any([e.id async for e in stack.env.client.list_workflows(query) if e.id == lease_id])


async def _released(stack: Stack, lease_id: str) -> bool:
    return not await lease_running(stack, lease_id)
