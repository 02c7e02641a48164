"""Durability: a room survives its worker, and recorded histories replay deterministically."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

from temporalio.client import WorkflowHistory
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer

from livekit_emulator import LiveKitEmulator
from telephony.client import TelephonyClient
from telephony.models import LiveKitEventKind, TelephonyState
from tests.fixtures.keys import DATA_CONVERTER
from tests.fixtures.polling import eventually
from tests.fixtures.stack import ScriptedPins, Stack, stack_settings
from worker.app import WORKFLOWS, running_worker


async def test_a_room_continues_when_its_worker_is_replaced_mid_session(
    temporal_env: WorkflowEnvironment, emulator: LiveKitEmulator
) -> None:
    settings = stack_settings(emulator)
    await emulator.create_inbound_trunk(numbers=[settings.configured_phone_numbers[0]])
    client = TelephonyClient(temporal_env.client, settings)
    stack = Stack(temporal_env, emulator, settings, client, trunk_id="", pins=ScriptedPins())
    room = str(uuid.uuid4())

    async with running_worker(settings, temporal_env.client):
        info = await client.register_room(room)
        sid = await stack.start_room(room)
        await eventually(lambda: len(stack.rules_for(room)) == 1, message="rule created")

    # No worker now: the room's end is recorded by Temporal and waits for the next worker.
    await stack.finish_room(room, sid)
    assert len(stack.rules_for(room)) == 1

    async with running_worker(settings, temporal_env.client):
        # The first worker's sticky queue holds the next task until its schedule-to-start
        # timeout (10 s) sends it to the shared queue: allow for that.
        await eventually(
            lambda: stack.rules_for(room) == [], within=60, message="rule removed by worker 2"
        )
        second_sid = await stack.start_room(room)
        await eventually(lambda: len(stack.rules_for(room)) == 1, message="rule for session 2")
        status = await client.get_status(room)

    assert status.pin == info.pin
    assert status.session is not None and status.session.sid == second_sid
    assert status.state is TelephonyState.OPEN
    assert len(stack.rules_for(room)) == 1


async def test_recorded_histories_replay_without_nondeterminism(stack: Stack) -> None:
    # A full life, so the histories hold every kind of step, then everything recorded so far.
    room = str(uuid.uuid4())
    await stack.client.register_room(room)
    sid = await stack.start_room(room)
    await eventually(lambda: len(stack.rules_for(room)) == 1)
    await stack.client.rotate_pin(room)
    await stack.send(room, LiveKitEventKind.ACTIVITY, sid)
    await stack.finish_room(room, sid)
    await eventually(lambda: stack.rules_for(room) == [])
    await stack.client.unregister_room(room)
    await asyncio.wait_for(stack.handle(room).result(), 60)
    await eventually(lambda: _closed_in_visibility(stack, room), message="room closed, listed")

    # Closed runs only: a running workflow's history can end inside a workflow task (an update
    # admitted, a task started), which the replayer waits on instead of replaying.
    query = (
        "WorkflowType IN ('RoomTelephonyWorkflow', 'PinLeaseWorkflow') "
        "AND ExecutionStatus != 'Running'"
    )
    replayed: list[str] = []

    async def recorded() -> AsyncIterator[WorkflowHistory]:
        async for history in stack.env.client.list_workflows(query).map_histories():
            replayed.append(history.workflow_id)
            yield history

    replayer = Replayer(workflows=list(WORKFLOWS), data_converter=DATA_CONVERTER)
    results = await replayer.replay_workflows(recorded(), raise_on_replay_failure=False)
    # One run or two: the room continues-as-new after its session unless unregistered first.
    assert replayed.count(f"telephony-room-{room}") >= 1
    failures = {run_id: str(failure) for run_id, failure in results.replay_failures.items()}
    assert failures == {}


async def _closed_in_visibility(stack: Stack, room: str) -> bool:
    query = f"WorkflowId = '{stack.handle(room).id}' AND ExecutionStatus = 'Completed'"
    return bool([execution async for execution in stack.env.client.list_workflows(query)])
