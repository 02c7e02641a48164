"""Timers on the time-skipping server: liveness checks, max session duration, schedule windows,
idle rooms and leases holding no timer. Time moves only when a test skips it (`env.sleep`)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from temporalio.client import WorkflowExecutionStatus, WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from livekit_emulator import LiveKitEmulator
from telephony.contracts import room_workflow_id
from telephony.models import (
    LiveKitEvent,
    LiveKitEventKind,
    RegisterRoom,
    RoomStatus,
    ScheduleWindow,
)
from tests.fixtures.polling import eventually
from tests.fixtures.stack import Stack, telephony_stack

ROOM_WORKFLOW = "RoomTelephonyWorkflow"


@pytest.fixture
async def timed_stack(
    time_skipping_env: WorkflowEnvironment, emulator: LiveKitEmulator
) -> AsyncIterator[Stack]:
    async with telephony_stack(
        time_skipping_env,
        emulator,
        room_telephony_liveness_interval="PT1H",
        room_telephony_max_session_duration="PT3H",
        room_telephony_schedule_lead="PT10M",
    ) as stack:
        yield stack


async def register(
    stack: Stack, room: str, schedule: list[ScheduleWindow] | None = None
) -> tuple[WorkflowHandle[Any, RoomStatus], RoomStatus]:
    """Start + update: update-with-start results are unreliable on the time-skipping server."""
    handle = await stack.env.client.start_workflow(
        ROOM_WORKFLOW,
        {"room_id": room},
        id=room_workflow_id(room),
        task_queue=stack.settings.telephony_task_queue,
        result_type=RoomStatus,
    )
    status = await handle.execute_update(
        "register",
        RegisterRoom(room_id=room, policy=stack.settings.room_policy(), schedule=schedule),
        result_type=RoomStatus,
    )
    return handle, status


async def started(stack: Stack, handle: WorkflowHandle[Any, RoomStatus], room: str) -> str:
    livekit_room = await stack.emulator.create_room(room, empty_timeout=10_000)
    await stack.emulator.join_participant(room, "web-alice")
    await handle.signal(
        "livekit_event",
        LiveKitEvent(
            kind=LiveKitEventKind.STARTED,
            room_sid=livekit_room.sid,
            event_id=f"EV_{uuid.uuid4().hex[:8]}",
            created_at=await stack.env.get_current_time(),
        ),
    )
    await eventually(lambda: len(stack.rules_for(room)) == 1, message="rule created")
    return str(livekit_room.sid)


async def test_a_lost_room_finished_is_caught_by_the_liveness_check(timed_stack: Stack) -> None:
    stack, room = timed_stack, str(uuid.uuid4())
    handle, _ = await register(stack, room)
    await started(stack, handle, room)

    await stack.emulator.delete_room(room)  # no webhook reaches the workflow: it is "lost"
    await stack.env.sleep(timedelta(minutes=30))
    assert len(stack.rules_for(room)) == 1  # not yet: the check runs every hour
    await stack.env.sleep(timedelta(minutes=31))

    await eventually(lambda: stack.rules_for(room) == [], message="rule closed by liveness")
    status = await handle.query("status", result_type=RoomStatus)
    assert status.session is None


async def test_the_liveness_check_keeps_a_room_that_is_still_live(timed_stack: Stack) -> None:
    stack, room = timed_stack, str(uuid.uuid4())
    handle, _ = await register(stack, room)
    sid = await started(stack, handle, room)

    await stack.env.sleep(timedelta(minutes=150))

    status = await handle.query("status", result_type=RoomStatus)
    assert status.session is not None and status.session.sid == sid
    assert len(stack.rules_for(room)) == 1


async def test_the_max_session_duration_closes_the_rule_of_a_live_room(
    timed_stack: Stack,
) -> None:
    stack, room = timed_stack, str(uuid.uuid4())
    handle, _ = await register(stack, room)
    await started(stack, handle, room)

    await stack.env.sleep(timedelta(hours=3, minutes=5))

    await eventually(lambda: stack.rules_for(room) == [], message="closed at max duration")
    assert len(stack.emulator.rooms()) == 1  # LiveKit still has the room: closed regardless


async def test_a_schedule_window_opens_the_rule_lead_early_and_closes_it_at_its_end(
    timed_stack: Stack,
) -> None:
    stack, room = timed_stack, str(uuid.uuid4())
    now = await stack.env.get_current_time()
    window = ScheduleWindow(starts_at=now + timedelta(hours=1), ends_at=now + timedelta(hours=2))
    await register(stack, room, schedule=[window])

    await stack.env.sleep(timedelta(minutes=45))
    assert stack.rules_for(room) == []
    await stack.env.sleep(timedelta(minutes=10))  # 55 min: inside the 10-minute lead
    await eventually(lambda: len(stack.rules_for(room)) == 1, message="opened early")

    await stack.env.sleep(timedelta(minutes=70))  # past the window's end
    await eventually(lambda: stack.rules_for(room) == [], message="closed at the end")


async def test_a_live_session_keeps_the_rule_past_the_window_until_it_ends(
    timed_stack: Stack,
) -> None:
    stack, room = timed_stack, str(uuid.uuid4())
    now = await stack.env.get_current_time()
    window = ScheduleWindow(
        starts_at=now + timedelta(minutes=5), ends_at=now + timedelta(minutes=30)
    )
    handle, _ = await register(stack, room, schedule=[window])
    sid = await started(stack, handle, room)

    await stack.env.sleep(timedelta(minutes=40))
    assert len(stack.rules_for(room)) == 1  # the window is over, the meeting is not

    await handle.signal(
        "livekit_event",
        LiveKitEvent(
            kind=LiveKitEventKind.FINISHED,
            room_sid=sid,
            event_id="EV_end",
            created_at=await stack.env.get_current_time(),
        ),
    )
    await eventually(lambda: stack.rules_for(room) == [], message="closed with the session")


async def pending_timers(handle: WorkflowHandle[Any, Any]) -> list[int]:
    """The ids of timers started in the current run and neither fired nor cancelled."""
    started_ids: list[int] = []
    ended: set[int] = set()
    async for event in handle.fetch_history_events():
        if event.HasField("timer_started_event_attributes"):
            started_ids.append(event.event_id)
        elif event.HasField("timer_fired_event_attributes"):
            ended.add(event.timer_fired_event_attributes.started_event_id)
        elif event.HasField("timer_canceled_event_attributes"):
            ended.add(event.timer_canceled_event_attributes.started_event_id)
    return [timer for timer in started_ids if timer not in ended]


async def history_length(handle: WorkflowHandle[Any, Any]) -> int:
    return len([event async for event in handle.fetch_history_events()])


async def test_an_idle_room_has_no_pending_timer_and_does_nothing_for_a_month(
    timed_stack: Stack,
) -> None:
    stack, room = timed_stack, str(uuid.uuid4())
    handle, _ = await register(stack, room)
    await eventually(
        lambda: _memo_published(handle), message="registration reconciled (memo published)"
    )
    before = await history_length(handle)

    await stack.env.sleep(timedelta(days=30))

    assert await pending_timers(handle) == []
    assert await history_length(handle) == before


async def test_a_pin_lease_holds_no_timer_and_stays_while_its_room_is_registered(
    timed_stack: Stack,
) -> None:
    stack, room = timed_stack, str(uuid.uuid4())
    _, status = await register(stack, room)
    assert status.pin is not None
    lease = stack.env.client.get_workflow_handle(stack.settings.pin_lease_id(status.pin))

    await stack.env.sleep(timedelta(days=30))

    assert (await lease.describe()).status is WorkflowExecutionStatus.RUNNING
    assert [
        event async for event in lease.fetch_history_events()
        if event.HasField("timer_started_event_attributes")
    ] == []  # fmt: skip


async def _memo_published(handle: WorkflowHandle[Any, Any]) -> bool:
    description = await handle.describe()
    return bool(await description.memo())
