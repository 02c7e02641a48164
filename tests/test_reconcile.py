"""Reconciliation: nothing left open in LiveKit, nothing lost, whatever went missing."""

from __future__ import annotations

import asyncio
import functools
import json
import os
import sys
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from livekit import api
from temporalio.client import Client, ScheduleIntervalSpec, WorkflowExecutionStatus
from temporalio.common import SearchAttributePair, TypedSearchAttributes
from temporalio.testing import WorkflowEnvironment

from livekit_emulator import LiveKitEmulator
from telephony import contracts
from telephony.contracts import (
    MANAGED_BY_ATTRIBUTE,
    MANAGED_BY_VALUE,
    ROOM_ID_ATTRIBUTE,
    room_workflow_id,
)
from telephony.models import REPORT_SAMPLE_SIZE, PinLeaseRequest, ReconcileInput, RoomMemo
from tests.fixtures import keys
from tests.fixtures.livekit import EMULATOR_API_KEY, EMULATOR_API_SECRET
from tests.fixtures.polling import eventually
from tests.fixtures.stack import Stack, telephony_stack
from worker.schedule import ensure_reconcile_schedule
from workflows.reconcile import ReconcileWorkflow


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

    assert (report.orphans_deleted, report.orphan_sample) == (1, [orphan])
    assert orphan not in rule_ids(stack)


async def test_a_rule_this_service_does_not_manage_is_left_alone(
    stack: Stack, livekit: api.LiveKitAPI
) -> None:
    foreign = await create_rule(livekit, "someone-elses-room", "11223344", managed=False)

    report = await stack.client.reconcile()

    assert report.managed_rules == 0 and report.orphans_deleted == 0
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

    assert room in report.notified_sample
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

    assert room in report.notified_sample and report.orphans_deleted == 0
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
        **keys.ENVIRONMENT,
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
    assert (report["orphans_deleted"], report["orphan_sample"]) == (1, [orphan])


# --- paging and continue-as-new -------------------------------------------------------------


async def run_histories(client: Client, workflow_id: str, first_run_id: str) -> list[int]:
    """The history length of each run of a continue-as-new chain, in order."""
    lengths: list[int] = []
    run_id: str | None = first_run_id
    while run_id:
        handle = client.get_workflow_handle(workflow_id, run_id=run_id)
        events = [event async for event in handle.fetch_history_events()]
        lengths.append(len(events))
        last = events[-1]
        run_id = (
            last.workflow_execution_continued_as_new_event_attributes.new_execution_run_id
            if last.HasField("workflow_execution_continued_as_new_event_attributes")
            else None
        )
    return lengths


async def test_a_pass_pages_through_the_rules_and_continues_as_new_with_short_histories(
    stack: Stack, livekit: api.LiveKitAPI
) -> None:
    orphans = {
        await create_rule(livekit, str(uuid.uuid4()), f"{4000000 + n:08d}") for n in range(300)
    }
    page_size, pages_per_run = 50, 2
    handle = await stack.env.client.start_workflow(
        ReconcileWorkflow.run,
        ReconcileInput(page_size=page_size, pages_per_run=pages_per_run),
        id=f"reconcile-paging-{uuid.uuid4()}",
        task_queue=stack.settings.telephony_task_queue,
    )

    report = await asyncio.wait_for(handle.result(), 120)

    lengths = await run_histories(stack.env.client, handle.id, handle.first_execution_run_id or "")
    assert report.orphans_deleted == 300 and not orphans & rule_ids(stack)
    assert report.pages >= 300 // page_size and report.runs == len(lengths) >= 3
    # The stated bound (workflows/reconcile.py): about 6 events per page, plus a few per run.
    assert max(lengths) <= 6 * pages_per_run + 10
    assert len(report.orphan_sample) == REPORT_SAMPLE_SIZE


# --- sessions -------------------------------------------------------------------------------


async def test_a_registered_room_that_missed_its_room_started_is_opened_by_a_pass(
    stack: Stack,
) -> None:
    room = str(uuid.uuid4())
    info = await stack.client.register_room(room)
    await eventually(lambda: _memo_of(stack, room), message="registration reconciled")
    # LiveKit opens the room; its room_started reaches nobody (no gateway in this stack).
    await stack.emulator.create_room(room, empty_timeout=600)

    report = await stack.client.reconcile()

    assert room in report.repaired_sample
    await eventually(lambda: stack.rules_for(room), message="rule created for the live room")
    assert (await stack.emulator.simulate_call(info.pin, number=stack.number)).accepted


async def test_a_pass_leaves_a_room_alone_that_knows_its_session(stack: Stack) -> None:
    room = str(uuid.uuid4())
    await stack.client.register_room(room)
    sid = await stack.start_room(room)
    await eventually(lambda: _memo_of(stack, room, session_sid=sid), message="session in memo")

    report = await stack.client.reconcile()

    assert report.sessions_repaired == 0


# --- leases ---------------------------------------------------------------------------------


async def start_lease(stack: Stack, owner_room: str, pin: str) -> str:
    lease_id = stack.settings.pin_lease_id(pin)
    await stack.env.client.start_workflow(
        contracts.PIN_LEASE_WORKFLOW,
        PinLeaseRequest(owner_workflow_id=room_workflow_id(owner_room)),
        id=lease_id,
        task_queue=stack.settings.telephony_task_queue,
        search_attributes=TypedSearchAttributes(
            [SearchAttributePair(contracts.TELEPHONY_ROOM_ID, owner_room)]
        ),
    )
    return lease_id


async def lease_running(stack: Stack, lease_id: str) -> bool:
    description = await stack.env.client.get_workflow_handle(lease_id).describe()
    return description.status is WorkflowExecutionStatus.RUNNING


async def _in_visibility(stack: Stack, lease_id: str) -> bool:
    query = f"WorkflowId = '{lease_id}' AND ExecutionStatus = 'Running'"
    return bool([e async for e in stack.env.client.list_workflows(query)])


async def test_a_lease_whose_owner_room_is_gone_is_released(stack: Stack) -> None:
    lease_id = await start_lease(stack, f"gone-{uuid.uuid4()}", "6152430987")
    await eventually(lambda: _in_visibility(stack, lease_id), message="lease listed")

    report = await stack.client.reconcile()

    assert lease_id in report.released_sample
    assert not await lease_running(stack, lease_id)


async def test_a_lease_its_open_owner_does_not_hold_is_released_after_the_grace_period(
    temporal_env: WorkflowEnvironment, emulator: LiveKitEmulator
) -> None:
    async with telephony_stack(temporal_env, emulator, telephony_reconcile_lease_grace=0) as s:
        room = str(uuid.uuid4())
        info = await s.client.register_room(room)
        await eventually(lambda: _memo_of(s, room), message="registration reconciled")
        stray = await start_lease(s, room, "7261530498")  # e.g. a retried lease attempt's
        held = s.settings.pin_lease_id(info.pin)
        await eventually(lambda: _in_visibility(s, stray), message="stray lease listed")

        report = await s.client.reconcile()

        assert stray in report.released_sample and not await lease_running(s, stray)
        assert await lease_running(s, held)


async def test_a_lease_its_owner_does_not_list_yet_is_kept_within_the_grace_period(
    stack: Stack,
) -> None:
    room = str(uuid.uuid4())
    await stack.client.register_room(room)
    await eventually(lambda: _memo_of(stack, room), message="registration reconciled")
    young = await start_lease(stack, room, "8371625049")
    await eventually(lambda: _in_visibility(stack, young), message="lease listed")

    report = await stack.client.reconcile()

    assert report.leases_released == 0 and await lease_running(stack, young)


async def test_a_rotated_pins_lease_is_listed_at_once_and_kept_while_livekit_is_down(
    temporal_env: WorkflowEnvironment, emulator: LiveKitEmulator
) -> None:
    # Found by the chaos suite: the memo was written only once LiveKit had answered, so a
    # reconciliation during an outage released the room's new lease (its PIN then free for
    # another room while the room's rule still routes it).
    async with telephony_stack(temporal_env, emulator, telephony_reconcile_lease_grace=0) as s:
        room = str(uuid.uuid4())
        await s.client.register_room(room)
        await s.start_room(room)
        await eventually(lambda: s.rules_for(room), message="the room's rule")
        emulator.faults.fail_next("CreateSIPDispatchRule", code="unavailable", count=1000)
        rotation = asyncio.create_task(s.client.rotate_pin(room))

        async def both_leases_listed() -> list[str] | None:
            description = await s.handle(room).describe()
            memo = await description.memo_value(contracts.ROOM_MEMO_KEY, None, type_hint=RoomMemo)
            return memo.lease_ids if memo is not None and len(memo.lease_ids) == 2 else None

        leases = await eventually(both_leases_listed, message="old and new lease in the memo")
        for lease_id in leases:
            await eventually(functools.partial(_in_visibility, s, lease_id))
        report = await s.client.reconcile()

        assert report.leases_released == 0
        assert [await lease_running(s, lease_id) for lease_id in leases] == [True, True]
        emulator.faults.clear()
        rotated = await asyncio.wait_for(rotation, 60)
        assert await lease_running(s, s.settings.pin_lease_id(rotated.pin))


async def _memo_of(stack: Stack, room: str, **expected: Any) -> bool:
    description = await stack.handle(room).describe()
    memo = await description.memo_value(contracts.ROOM_MEMO_KEY, None, type_hint=RoomMemo)
    return memo is not None and all(getattr(memo, k) == v for k, v in expected.items())
