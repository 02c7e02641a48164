"""Reconciliation: nothing left open in LiveKit, nothing lost, whatever went missing."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import uuid
from collections.abc import AsyncIterator

import pytest
from livekit import api
from temporalio.client import ScheduleIntervalSpec

from telephony import contracts
from telephony.contracts import MANAGED_BY_ATTRIBUTE, MANAGED_BY_VALUE, ROOM_ID_ATTRIBUTE
from tests.fixtures.livekit import EMULATOR_API_KEY, EMULATOR_API_SECRET
from tests.fixtures.polling import eventually
from tests.fixtures.stack import Stack
from worker.schedule import ensure_reconcile_schedule


@pytest.fixture
async def livekit(stack: Stack) -> AsyncIterator[api.LiveKitAPI]:
    client = api.LiveKitAPI(stack.emulator.url, EMULATOR_API_KEY, EMULATOR_API_SECRET)
    try:
        yield client
    finally:
        await client.aclose()


async def create_rule(
    livekit: api.LiveKitAPI, room_id: str, pin: str, *, managed: bool = True
) -> str:
    attributes = (
        {MANAGED_BY_ATTRIBUTE: MANAGED_BY_VALUE, ROOM_ID_ATTRIBUTE: room_id} if managed else {}
    )
    rule = await livekit.sip.create_dispatch_rule(
        api.CreateSIPDispatchRuleRequest(
            dispatch_rule=api.SIPDispatchRuleInfo(
                name=f"telephony-room-{room_id}",
                rule=api.SIPDispatchRule(
                    dispatch_rule_direct=api.SIPDispatchRuleDirect(room_name=room_id, pin=pin)
                ),
                attributes=attributes,
            )
        )
    )
    return str(rule.sip_dispatch_rule_id)


def rule_ids(stack: Stack) -> set[str]:
    return {rule.sip_dispatch_rule_id for rule in stack.emulator.dispatch_rules()}


async def test_a_managed_rule_of_an_unknown_room_is_deleted_as_an_orphan(
    stack: Stack, livekit: api.LiveKitAPI
) -> None:
    orphan = await create_rule(livekit, str(uuid.uuid4()), "81726354")

    report = await stack.client.reconcile()

    assert report.orphans_deleted == [orphan]
    assert orphan not in rule_ids(stack)


async def test_a_rule_this_service_does_not_manage_is_left_alone(
    stack: Stack, livekit: api.LiveKitAPI
) -> None:
    foreign = await create_rule(livekit, "someone-elses-room", "11223344", managed=False)

    report = await stack.client.reconcile()

    assert report.managed_rules == 0 and report.orphans_deleted == []
    assert foreign in rule_ids(stack)


async def test_a_room_whose_rule_vanished_creates_it_again(
    stack: Stack, livekit: api.LiveKitAPI
) -> None:
    room = str(uuid.uuid4())
    info = await stack.client.register_room(room)
    await stack.start_room(room)
    (rule,) = await eventually(lambda: stack.rules_for(room), message="rule created")
    await livekit.sip.delete_dispatch_rule(
        api.DeleteSIPDispatchRuleRequest(sip_dispatch_rule_id=rule.sip_dispatch_rule_id)
    )
    await eventually(
        lambda: _search_attribute_open(stack, room), message="visibility shows the room open"
    )

    report = await stack.client.reconcile()

    assert room in report.rooms_notified
    (recreated,) = await eventually(lambda: stack.rules_for(room), message="rule re-created")
    assert recreated.rule.dispatch_rule_direct.pin == info.pin
    assert (await stack.emulator.simulate_call(info.pin, number=stack.number)).accepted


async def test_a_stray_managed_rule_of_an_open_room_is_deleted_by_the_room(
    stack: Stack, livekit: api.LiveKitAPI
) -> None:
    room = str(uuid.uuid4())
    await stack.client.register_room(room)
    await stack.start_room(room)
    (kept,) = await eventually(lambda: stack.rules_for(room), message="rule created")
    stray = await create_rule(livekit, room, "99887766")

    report = await stack.client.reconcile()

    assert room in report.rooms_notified and report.orphans_deleted == []
    await eventually(lambda: stray not in rule_ids(stack), message="stray rule deleted")
    assert [r.sip_dispatch_rule_id for r in stack.rules_for(room)] == [kept.sip_dispatch_rule_id]


async def test_the_worker_schedules_reconciliation_at_the_configured_interval(
    stack: Stack,
) -> None:
    await ensure_reconcile_schedule(stack.env.client, stack.settings)

    handle = stack.env.client.get_schedule_handle(contracts.RECONCILE_SCHEDULE_ID)
    description = await handle.describe()
    (interval,) = description.schedule.spec.intervals
    assert isinstance(interval, ScheduleIntervalSpec)
    assert interval.every == stack.settings.telephony_reconcile_interval
    await handle.delete()


async def _search_attribute_open(stack: Stack, room: str) -> bool:
    query = (
        f"TelephonyRoomId = '{room}' AND TelephonyState = 'open' AND ExecutionStatus = 'Running'"
    )
    return bool([e async for e in stack.env.client.list_workflows(query)])


async def test_the_reconcile_command_runs_a_pass_and_reports_it(
    stack: Stack, livekit: api.LiveKitAPI
) -> None:
    orphan = await create_rule(livekit, str(uuid.uuid4()), "55443322")
    environment = {
        **os.environ,
        "TEMPORAL_ADDRESS": stack.env.client.service_client.config.target_host,
        "TELEPHONY_TASK_QUEUE": stack.settings.telephony_task_queue,
    }

    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "operator_tools.cli",
        "reconcile",
        "--json",
        env=environment,
        stdout=asyncio.subprocess.PIPE,
    )
    output, _ = await asyncio.wait_for(process.communicate(), 60)

    assert process.returncode == 0
    report = json.loads(output)
    assert report["orphans_deleted"] == [orphan]
