"""The dispatch rule follows the room's life: sessions, modes, rotation, unregistration."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from livekit.api import DeleteSIPDispatchRuleRequest
from temporalio.client import WorkflowExecutionStatus, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment

from livekit_emulator import LiveKitEmulator
from telephony import contracts
from telephony.client import RoomNotRegistered
from telephony.contracts import (
    MANAGED_BY_ATTRIBUTE,
    MANAGED_BY_VALUE,
    ROOM_ID_ATTRIBUTE,
)
from telephony.models import (
    DialInInfo,
    LiveKitEvent,
    LiveKitEventKind,
    RegisterRoom,
    RoomStatus,
    Schedule,
    ScheduleWindow,
    TelephonyState,
)
from tests.fixtures.polling import eventually
from tests.fixtures.stack import ScriptedPins, Stack, telephony_stack


def new_room() -> str:
    return str(uuid.uuid4())


async def registered_and_started(stack: Stack) -> tuple[str, str, str]:
    """A registered room with a live session and its rule in place: (room, pin, sid)."""
    room = new_room()
    info = await stack.client.register_room(room)
    sid = await stack.start_room(room)
    await eventually(lambda: len(stack.rules_for(room)) == 1, message="rule created")
    return room, info.pin, sid


async def test_room_started_creates_exactly_one_rule_for_the_room(stack: Stack) -> None:
    room, pin, _ = await registered_and_started(stack)

    (rule,) = stack.rules_for(room)
    assert rule.rule.dispatch_rule_direct.pin == pin
    assert rule.name == f"telephony-room-{room}"
    assert dict(rule.attributes) == {
        MANAGED_BY_ATTRIBUTE: MANAGED_BY_VALUE,
        ROOM_ID_ATTRIBUTE: room,
    }
    assert list(rule.trunk_ids) == []
    status = await stack.client.get_status(room)
    assert status.state is TelephonyState.OPEN and status.rule_id == rule.sip_dispatch_rule_id


async def test_rule_uses_the_configured_trunk_ids(
    temporal_env: WorkflowEnvironment, emulator: LiveKitEmulator
) -> None:
    async with telephony_stack(temporal_env, emulator) as probe:
        trunk_id = probe.trunk_id
    async with telephony_stack(temporal_env, emulator, room_telephony_trunk_ids=trunk_id) as stack:
        room, _, _ = await registered_and_started(stack)
        (rule,) = stack.rules_for(room)
        assert list(rule.trunk_ids) == [trunk_id]


async def test_room_finished_removes_the_rule(stack: Stack) -> None:
    room, _, sid = await registered_and_started(stack)

    await stack.finish_room(room, sid)

    await eventually(lambda: stack.rules_for(room) == [], message="rule deleted")
    status = await stack.client.get_status(room)
    assert status.state is TelephonyState.IDLE and status.session is None


async def test_a_call_with_the_pin_lands_while_open_and_is_refused_after(stack: Stack) -> None:
    room, pin, sid = await registered_and_started(stack)

    landed = await stack.emulator.simulate_call(pin, number=stack.number, caller="+33612345678")
    assert landed.accepted and landed.room_name == room

    await stack.finish_room(room, sid)
    await eventually(lambda: stack.rules_for(room) == [])
    refused = await stack.emulator.simulate_call(pin, number=stack.number, caller="+33612345678")
    assert not refused.accepted


async def test_duplicated_events_change_nothing(stack: Stack) -> None:
    room, _, sid = await registered_and_started(stack)
    (rule,) = stack.rules_for(room)
    started = stack.events[-1]

    for _ in range(3):
        await stack.send(room, started.kind, sid, started.created_at, event_id=started.event_id)
    await stack.send(room, LiveKitEventKind.STARTED, sid)  # same sid, new event id

    status = await stack.client.get_status(room)
    assert status.session is not None and status.session.sid == sid
    assert [r.sip_dispatch_rule_id for r in stack.rules_for(room)] == [rule.sip_dispatch_rule_id]


async def test_finished_before_started_ends_that_session(stack: Stack) -> None:
    room = new_room()
    await stack.client.register_room(room)
    now = datetime.now(UTC)

    await stack.send(room, LiveKitEventKind.FINISHED, "RM_late", now + timedelta(seconds=5))
    await stack.send(room, LiveKitEventKind.STARTED, "RM_late", now)

    status = await stack.client.get_status(room)
    assert status.session is None and status.state is TelephonyState.IDLE
    assert stack.rules_for(room) == []


async def test_a_stale_finished_for_an_older_sid_keeps_the_newer_session_open(
    stack: Stack,
) -> None:
    room = new_room()
    await stack.client.register_room(room)
    now = datetime.now(UTC)
    await stack.send(room, LiveKitEventKind.STARTED, "RM_old", now - timedelta(minutes=30))
    await stack.send(room, LiveKitEventKind.STARTED, "RM_new", now)

    await stack.send(room, LiveKitEventKind.FINISHED, "RM_old", now - timedelta(minutes=1))

    status = await stack.client.get_status(room)
    assert status.session is not None and status.session.sid == "RM_new"
    await eventually(lambda: len(stack.rules_for(room)) == 1, message="rule for RM_new")


async def test_a_late_started_for_an_older_sid_does_not_reopen_the_room(stack: Stack) -> None:
    room = new_room()
    await stack.client.register_room(room)
    now = datetime.now(UTC)
    await stack.send(room, LiveKitEventKind.STARTED, "RM_b", now)
    await stack.send(room, LiveKitEventKind.FINISHED, "RM_b", now + timedelta(seconds=1))

    await stack.send(room, LiveKitEventKind.STARTED, "RM_a", now - timedelta(minutes=5))

    status = await stack.client.get_status(room)
    assert status.session is None


async def test_participant_activity_opens_a_session_whose_room_started_was_lost(
    stack: Stack,
) -> None:
    room = new_room()
    await stack.client.register_room(room)

    await stack.send(room, LiveKitEventKind.ACTIVITY, "RM_busy")

    await eventually(lambda: len(stack.rules_for(room)) == 1, message="rule from activity")


async def test_livekit_down_when_the_room_starts_the_rule_appears_once_it_returns(
    stack: Stack,
) -> None:
    room = new_room()
    await stack.client.register_room(room)
    stack.emulator.faults.fail_next("CreateSIPDispatchRule", "unavailable", count=3)

    await stack.start_room(room)

    status = await eventually(lambda: _open_status(stack, room), within=30, message="open")
    (rule,) = stack.rules_for(room)
    assert status.rule_id == rule.sip_dispatch_rule_id


async def test_a_lost_create_response_leaves_exactly_one_rule(stack: Stack) -> None:
    room = new_room()
    await stack.client.register_room(room)
    stack.emulator.faults.apply_then_fail("CreateSIPDispatchRule", count=1)

    await stack.start_room(room)

    status = await eventually(lambda: _open_status(stack, room), within=30, message="open")
    (rule,) = stack.rules_for(room)
    assert status.rule_id == rule.sip_dispatch_rule_id


async def _open_status(stack: Stack, room: str) -> RoomStatus | None:
    status = await stack.client.get_status(room)
    return status if status.state is TelephonyState.OPEN else None


async def test_always_mode_keeps_the_rule_from_registration_to_unregistration(
    temporal_env: WorkflowEnvironment, emulator: LiveKitEmulator
) -> None:
    async with telephony_stack(
        temporal_env, emulator, room_telephony_dispatch_mode="always"
    ) as stack:
        room = new_room()
        info = await stack.client.register_room(room)
        await eventually(lambda: len(stack.rules_for(room)) == 1, message="rule at registration")
        assert (await stack.client.get_status(room)).state is TelephonyState.OPEN
        assert (await stack.emulator.simulate_call(info.pin, number=stack.number)).accepted

        await stack.client.unregister_room(room)

        assert stack.rules_for(room) == []


async def test_a_schedule_window_that_is_open_now_creates_the_rule_before_anyone_joins(
    stack: Stack,
) -> None:
    room = new_room()
    now = datetime.now(UTC)
    window = ScheduleWindow(starts_at=now + timedelta(minutes=5), ends_at=now + timedelta(hours=1))

    await stack.client.register_room(room, schedule=[window])  # lead (10 min) reaches now

    await eventually(lambda: len(stack.rules_for(room)) == 1, message="rule opened early")


async def test_a_window_later_than_the_lead_leaves_the_room_closed(stack: Stack) -> None:
    room = new_room()
    now = datetime.now(UTC)
    window = ScheduleWindow(starts_at=now + timedelta(hours=2), ends_at=now + timedelta(hours=3))

    info = await stack.client.register_room(room, schedule=[window])

    assert info.state is TelephonyState.IDLE
    assert info.schedule == [window]
    assert stack.rules_for(room) == []


async def test_rotation_while_open_swaps_the_rule_to_the_new_pin(stack: Stack) -> None:
    room, old_pin, _ = await registered_and_started(stack)

    rotated = await stack.client.rotate_pin(room)

    assert rotated.pin != old_pin
    (rule,) = stack.rules_for(room)
    assert rule.rule.dispatch_rule_direct.pin == rotated.pin
    assert (await stack.emulator.simulate_call(rotated.pin, number=stack.number)).accepted
    assert not (await stack.emulator.simulate_call(old_pin, number=stack.number)).accepted
    await eventually(lambda: _lease_closed(stack, old_pin), message="old lease released")


async def test_rotation_while_closed_changes_the_pin_and_creates_no_rule(stack: Stack) -> None:
    room = new_room()
    old = await stack.client.register_room(room)

    rotated = await stack.client.rotate_pin(room)

    assert rotated.pin != old.pin
    assert (await stack.client.get_room(room)).pin == rotated.pin
    assert stack.rules_for(room) == []
    await eventually(lambda: _lease_closed(stack, old.pin), message="old lease released")


async def test_a_rotated_away_pin_can_be_leased_by_another_room(
    temporal_env: WorkflowEnvironment, emulator: LiveKitEmulator
) -> None:
    # Six digits: no random draw in the session uses that length (see test_room_registration).
    pins = ScriptedPins(["111161", "222262", "111161"])
    async with telephony_stack(
        temporal_env, emulator, pins=pins, room_telephony_pin_length=6
    ) as stack:
        first = new_room()
        await stack.client.register_room(first)
        await stack.client.rotate_pin(first)
        await eventually(lambda: _lease_closed(stack, "111161"), message="old lease released")

        second = await stack.client.register_room(new_room())

        assert second.pin == "111161"


async def test_unregister_deletes_the_rule_releases_the_lease_and_completes(stack: Stack) -> None:
    room, pin, _ = await registered_and_started(stack)

    await stack.client.unregister_room(room)

    assert stack.rules_for(room) == []
    await eventually(lambda: _lease_closed(stack, pin), message="lease released")
    result = await stack.handle(room).result()
    assert result.state is TelephonyState.CLOSED
    with pytest.raises(RoomNotRegistered):
        await stack.client.get_room(room)


async def test_events_after_unregister_are_ignored(stack: Stack) -> None:
    room = new_room()
    await stack.client.register_room(room)
    await stack.client.unregister_room(room)

    delivered = await stack.client.send_event(
        room,
        LiveKitEvent(
            kind=LiveKitEventKind.STARTED,
            room_sid="RM_after",
            event_id="EV_after",
            created_at=datetime.now(UTC),
        ),
    )

    assert delivered is False
    assert stack.rules_for(room) == []


async def test_continue_as_new_keeps_pin_state_and_open_rule(stack: Stack) -> None:
    room, pin, sid = await registered_and_started(stack)
    handle = stack.handle(room)
    first_run = (await handle.describe()).run_id
    (rule,) = stack.rules_for(room)
    # Test seam: a short history threshold, set through a repeated registration.
    await handle.execute_update(
        "register",
        RegisterRoom(
            room_id=room,
            policy=stack.settings.room_policy(),
            history_event_threshold=30,
        ),
        result_type=RoomStatus,
    )

    for _ in range(20):  # each new event id is a signal in history
        await stack.send(room, LiveKitEventKind.ACTIVITY, sid)

    await eventually(
        lambda: _run_id(stack, room, first_run), message="a new run after continue-as-new"
    )
    status = await stack.client.get_status(room)
    assert status.pin == pin and status.state is TelephonyState.OPEN
    assert status.session is not None and status.session.sid == sid
    assert status.rule_id == rule.sip_dispatch_rule_id
    assert [r.sip_dispatch_rule_id for r in stack.rules_for(room)] == [rule.sip_dispatch_rule_id]


async def _run_id(stack: Stack, room: str, previous: str | None) -> bool:
    return (await stack.handle(room).describe()).run_id != previous


async def _lease_closed(stack: Stack, pin: str) -> bool:
    description = await stack.env.client.get_workflow_handle(
        stack.settings.pin_lease_id(pin)
    ).describe()
    return description.status is not WorkflowExecutionStatus.RUNNING


async def test_rejected_livekit_credentials_are_reported_in_the_room_status(
    temporal_env: WorkflowEnvironment, emulator: LiveKitEmulator
) -> None:
    async with telephony_stack(
        temporal_env, emulator, livekit_api_secret="not-the-emulator-secret-0123456789"
    ) as stack:
        room = new_room()
        await stack.client.register_room(room)
        await stack.send(room, LiveKitEventKind.STARTED, "RM_denied")

        status = await eventually(
            lambda: _status_with_error(stack, room), message="error reported in status"
        )

    assert status.last_error.startswith("LiveKitCredentialsRejected")
    assert "not-the-emulator-secret" not in status.last_error
    assert stack.rules_for(room) == []


async def _status_with_error(stack: Stack, room: str) -> RoomStatus | None:
    status = await stack.client.get_status(room)
    return status if status.last_error else None


async def test_a_room_registered_while_its_livekit_room_is_live_opens_at_once(
    stack: Stack,
) -> None:
    room = new_room()
    await stack.emulator.create_room(room, empty_timeout=600)  # its room_started came first
    await stack.emulator.join_participant(room, "web-alice")

    info = await stack.client.register_room(room)

    await eventually(lambda: len(stack.rules_for(room)) == 1, message="rule without any event")
    assert (await stack.emulator.simulate_call(info.pin, number=stack.number)).accepted


@pytest.fixture
async def always(
    temporal_env: WorkflowEnvironment, emulator: LiveKitEmulator
) -> AsyncIterator[Stack]:
    """The stack with ROOM_TELEPHONY_DISPATCH_MODE=always: a room's rule exists from its
    registration on."""
    async with telephony_stack(temporal_env, emulator, room_telephony_dispatch_mode="always") as s:
        yield s


async def registered_with_rule(stack: Stack) -> tuple[str, DialInInfo, Any]:
    """A room registered in `always` mode, once its rule exists: (room, dial-in info, rule)."""
    room = new_room()
    info = await stack.client.register_room(room)
    (rule,) = await eventually(lambda: stack.rules_for(room), message="always: rule at once")
    return room, info, rule


async def test_a_new_session_verifies_a_rule_believed_present_and_recreates_a_lost_one(
    always: Stack,
) -> None:
    s = always
    room, info, rule = await registered_with_rule(s)
    # LiveKit loses its rules (a LiveKit/Redis restart); the room still believes in its own.
    for held in s.rules_for(room):
        s.emulator.sip.delete_dispatch_rule(
            DeleteSIPDispatchRuleRequest(sip_dispatch_rule_id=held.sip_dispatch_rule_id)
        )

    await s.start_room(room)  # the next meeting's room_started

    (recreated,) = await eventually(lambda: s.rules_for(room), message="rule re-created")
    assert recreated.sip_dispatch_rule_id != rule.sip_dispatch_rule_id
    assert (await s.emulator.simulate_call(info.pin, number=s.number)).accepted


async def test_a_new_session_keeps_a_rule_livekit_still_holds(always: Stack) -> None:
    s = always
    room, _, rule = await registered_with_rule(s)

    await s.start_room(room)
    await eventually(lambda: _session_started(s, room), message="the session is recorded")

    assert [r.sip_dispatch_rule_id for r in s.rules_for(room)] == [rule.sip_dispatch_rule_id]


async def test_a_session_verifies_its_rule_once_however_many_events_it_brings(
    always: Stack,
) -> None:
    s = always
    room, _, _ = await registered_with_rule(s)

    sid = await s.start_room(room)
    for _ in range(3):  # participants joining: the same session
        await s.send(room, LiveKitEventKind.ACTIVITY, sid)
    # An update answers once the loop has handled every earlier message and converged.
    await s.client.set_schedule(room, [])

    history = await s.handle(room).fetch_history()
    ensures = [
        e
        for e in history.events
        if e.HasField("activity_task_scheduled_event_attributes")
        and e.activity_task_scheduled_event_attributes.activity_type.name
        == contracts.ENSURE_DISPATCH_RULE
    ]
    assert len(ensures) == 2  # the create at registration, then one check for the session


async def _session_started(stack: Stack, room: str) -> bool:
    return (await stack.client.get_status(room)).session is not None


async def test_a_window_out_of_bounds_sent_past_the_client_fails_the_update_not_the_room(
    stack: Stack,
) -> None:
    room = new_room()
    await stack.client.register_room(room)
    ancient = ScheduleWindow(
        starts_at=datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=14))),
        ends_at=datetime(1, 1, 1, 23, 59, 59, tzinfo=UTC),
    )

    with pytest.raises(WorkflowUpdateFailedError) as failed:
        await stack.handle(room).execute_update(
            contracts.SET_SCHEDULE_UPDATE, Schedule(windows=[ancient]), result_type=RoomStatus
        )

    assert isinstance(failed.value.cause, ApplicationError)
    assert failed.value.cause.type == contracts.INVALID_SCHEDULE
    status = await stack.client.get_status(room)  # the workflow answers: no task failed
    assert status.registered and status.schedule == []


async def test_a_rotation_while_the_rule_is_being_created_ends_with_the_new_pin_routing(
    stack: Stack,
) -> None:
    # Found by the long chaos run: the created rule was recorded with the PIN the room had when
    # LiveKit answered, not the one it was created with, so the old PIN kept routing for good.
    room = new_room()
    await stack.client.register_room(room)
    stack.emulator.faults.set_latency(1.5, "CreateSIPDispatchRule")
    try:
        await stack.start_room(room)

        async def creating() -> bool:
            description = await stack.handle(room).describe()
            pending = description.raw_description.pending_activities
            return any(a.activity_type.name == contracts.ENSURE_DISPATCH_RULE for a in pending)

        await eventually(creating, message="the first rule's create in flight")
        rotated = await stack.client.rotate_pin(room)
    finally:
        stack.emulator.faults.set_latency(0, "CreateSIPDispatchRule")

    def routed_pins() -> list[str]:
        return [rule.rule.dispatch_rule_direct.pin for rule in stack.rules_for(room)]

    await eventually(lambda: routed_pins() == [rotated.pin], message="only the new PIN routes")
