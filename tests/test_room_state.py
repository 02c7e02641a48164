"""`RoomWorkflowState` without a server: how events, the phase, the schedule and the clock decide
whether the room's dispatch rule should exist, and when the workflow must wake up next."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest

from telephony.models import (
    DispatchMode,
    LeasedPin,
    LiveKitEvent,
    LiveKitEventKind,
    RoomOverrides,
    RoomPolicy,
    ScheduleWindow,
    TelephonyState,
)
from workflows.state import RoomPhase, RoomWorkflowState, RuleRef

NOW = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
PIN = "12345678"
STARTED, FINISHED, ACTIVITY = (
    LiveKitEventKind.STARTED,
    LiveKitEventKind.FINISHED,
    LiveKitEventKind.ACTIVITY,
)


def policy(mode: DispatchMode = DispatchMode.WHILE_ACTIVE) -> RoomPolicy:
    return RoomPolicy(
        enabled=True,
        pin_length=8,
        pin_max_retries=5,
        dispatch_mode=mode,
        schedule_lead=timedelta(minutes=10),
        liveness_interval=timedelta(minutes=5),
        max_session_duration=timedelta(hours=24),
    )


def room(
    phase: RoomPhase = RoomPhase.REGISTERED,
    mode: DispatchMode = DispatchMode.WHILE_ACTIVE,
    **fields: object,
) -> RoomWorkflowState:
    return RoomWorkflowState.model_validate(
        {"room_id": "room", "phase": phase, "policy": policy(mode), "pin": PIN, **fields}
    )


_ids = itertools.count()


def event(
    kind: LiveKitEventKind,
    sid: str,
    at: datetime = NOW,
    event_id: str | None = None,
    room_created_at: datetime | None = None,
) -> LiveKitEvent:
    return LiveKitEvent(
        kind=kind,
        room_sid=sid,
        event_id=event_id or f"EV_{next(_ids)}",
        created_at=at,
        room_created_at=room_created_at,
    )


def session_after(events: list[LiveKitEvent]) -> str | None:
    state = room()
    for e in events:
        state.apply_event(e, NOW)
    return state.session.sid if state.session else None


# --- apply_event --------------------------------------------------------------------------------

EARLY, LATE = NOW - timedelta(minutes=1), NOW
# Two incarnations within one second (a reconnect: livekit/livekit#2945): same `created_at`
# second, told apart by the room's creation time in milliseconds.
FIRST_MS, SECOND_MS = NOW + timedelta(milliseconds=100), NOW + timedelta(milliseconds=700)

# (what happened, in arrival order) -> the live session afterwards
EVENT_ORDERS: list[tuple[str, list[LiveKitEvent], str | None]] = [
    ("started", [event(STARTED, "RM_a")], "RM_a"),
    ("started then finished", [event(STARTED, "RM_a"), event(FINISHED, "RM_a")], None),
    ("finished before its started", [event(FINISHED, "RM_a"), event(STARTED, "RM_a")], None),
    ("activity opens a lost start", [event(ACTIVITY, "RM_a")], "RM_a"),
    ("activity after finished", [event(STARTED, "RM_a"), event(FINISHED, "RM_a"),
                                 event(ACTIVITY, "RM_a")], None),
    ("newer incarnation replaces", [event(STARTED, "RM_a", EARLY), event(STARTED, "RM_b", LATE)],
     "RM_b"),
    ("older incarnation after newer", [event(STARTED, "RM_b", LATE),
                                       event(STARTED, "RM_a", EARLY)], "RM_b"),
    ("stale start after a newer session ended", [event(STARTED, "RM_b", LATE),
                                                 event(FINISHED, "RM_b", LATE),
                                                 event(STARTED, "RM_a", EARLY)], None),
    ("finished of an older incarnation", [event(STARTED, "RM_b", LATE),
                                          event(FINISHED, "RM_a", EARLY)], "RM_b"),
    ("same-second incarnations, the older one late",
     [event(STARTED, "RM_b", NOW, room_created_at=SECOND_MS),
      event(STARTED, "RM_a", NOW, room_created_at=FIRST_MS)], "RM_b"),
    ("same-second incarnations in order",
     [event(STARTED, "RM_a", NOW, room_created_at=FIRST_MS),
      event(FINISHED, "RM_a", NOW, room_created_at=FIRST_MS),
      event(STARTED, "RM_b", NOW, room_created_at=SECOND_MS)], "RM_b"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("events", "live"), [(e, s) for _, e, s in EVENT_ORDERS], ids=[n for n, _, _ in EVENT_ORDERS]
)
def test_events_in_any_order_leave_the_expected_session(
    events: list[LiveKitEvent], live: str | None
) -> None:
    assert session_after(events) == live


def test_a_duplicated_event_changes_nothing_the_second_time() -> None:
    state = room()
    started = event(STARTED, "RM_a")
    state.apply_event(started, NOW)
    state.apply_event(event(FINISHED, "RM_a"), NOW)

    assert state.apply_event(started, NOW) is False
    assert state.session is None


def test_a_redelivered_finished_after_a_new_session_does_not_close_it() -> None:
    state = room()
    finished = event(FINISHED, "RM_a", EARLY)
    for e in (event(STARTED, "RM_a", EARLY), finished, event(STARTED, "RM_b", LATE), finished):
        state.apply_event(e, NOW)

    assert state.session is not None and state.session.sid == "RM_b"


@pytest.mark.parametrize("phase", [RoomPhase.NEW, RoomPhase.UNREGISTERING, RoomPhase.FAILED])
def test_events_are_ignored_unless_the_room_is_registered(phase: RoomPhase) -> None:
    state = room(phase=phase)

    assert state.apply_event(event(STARTED, "RM_a"), NOW) is False
    assert state.session is None


def test_apply_event_reports_whether_the_session_changed() -> None:
    state = room()

    assert state.apply_event(event(STARTED, "RM_a"), NOW) is True
    assert state.apply_event(event(ACTIVITY, "RM_a"), NOW) is False
    assert state.apply_event(event(FINISHED, "RM_a"), NOW) is True


# --- rule_wanted --------------------------------------------------------------------------------

WINDOW = ScheduleWindow(starts_at=NOW + timedelta(minutes=5), ends_at=NOW + timedelta(hours=1))
PAST_WINDOW = ScheduleWindow(starts_at=NOW - timedelta(hours=2), ends_at=NOW - timedelta(hours=1))


def live(state: RoomWorkflowState) -> RoomWorkflowState:
    state.start_session("RM_a", NOW, NOW)
    return state


RULE_WANTED: list[tuple[str, RoomWorkflowState, bool]] = [
    ("registered, idle", room(), False),
    ("registered, live session", live(room()), True),
    ("always mode, idle", room(mode=DispatchMode.ALWAYS), True),
    ("window opening within the lead", room(schedule=[WINDOW]), True),
    ("window over", room(schedule=[PAST_WINDOW]), False),
    ("unregistering, live session", live(room(phase=RoomPhase.UNREGISTERING)), False),
    ("new, always mode", room(phase=RoomPhase.NEW, mode=DispatchMode.ALWAYS), False),
    ("registered without a PIN", room(mode=DispatchMode.ALWAYS, pin=None), False),
    (
        "the room's own always mode over the settings'",
        room(overrides=RoomOverrides(dispatch_mode=DispatchMode.ALWAYS)),
        True,
    ),
    (
        "the room's own while_active mode over the settings' always",
        room(mode=DispatchMode.ALWAYS, overrides=RoomOverrides(dispatch_mode="while_active")),
        False,
    ),
]


@pytest.mark.parametrize(
    ("state", "wanted"), [(s, w) for _, s, w in RULE_WANTED], ids=[n for n, _, _ in RULE_WANTED]
)
def test_rule_wanted(state: RoomWorkflowState, wanted: bool) -> None:
    assert state.rule_wanted(NOW) is wanted


def test_a_window_opens_exactly_at_its_start_minus_the_lead() -> None:
    state = room(schedule=[WINDOW])
    opens = WINDOW.starts_at - timedelta(minutes=10)

    assert not state.rule_wanted(opens - timedelta(microseconds=1))
    assert state.rule_wanted(opens)
    assert not state.rule_wanted(WINDOW.ends_at)


# --- converged ----------------------------------------------------------------------------------

RULE = RuleRef(rule_id="SDR_1", pin=PIN)
OLD_RULE = RuleRef(rule_id="SDR_0", pin="87654321")
NUMBER = "+33187210000"
OLD_LEASE = LeasedPin(pin="87654321", lease_id="telephony-pin-87654321")

CONVERGED: list[tuple[str, RoomWorkflowState, bool]] = [
    ("idle without a rule", room(), True),
    ("idle with a rule left", room(rule=RULE), False),
    ("live with its rule", live(room(rule=RULE)), True),
    ("live without a rule", live(room()), False),
    ("live with the rule of an old PIN", live(room(rule=OLD_RULE)), False),
    ("a stray rule to delete", room(stray_rule_ids=["SDR_9"]), False),
    ("an old PIN to release", room(leases_to_release=[OLD_LEASE]), False),
    ("unregistering, PIN not yet released", room(phase=RoomPhase.UNREGISTERING), False),
    ("unregistering, all released", room(phase=RoomPhase.UNREGISTERING, pin=None), True),
    (
        "live, the rule on every number while the room wants one",
        live(room(rule=RULE, overrides=RoomOverrides(numbers=[NUMBER]))),
        False,
    ),
    (
        "live, the rule on the room's numbers",
        live(
            room(
                rule=RULE.model_copy(update={"numbers": [NUMBER]}),
                overrides=RoomOverrides(numbers=[NUMBER]),
            )
        ),
        True,
    ),
    (
        "live, callers' numbers shown while the room hides them",
        live(room(rule=RULE, overrides=RoomOverrides(hide_phone_number=True))),
        False,
    ),
]


@pytest.mark.parametrize(
    ("state", "done"), [(s, d) for _, s, d in CONVERGED], ids=[n for n, _, _ in CONVERGED]
)
def test_converged(state: RoomWorkflowState, done: bool) -> None:
    assert state.converged(NOW) is done


# --- next_deadline ------------------------------------------------------------------------------


def test_an_idle_room_has_no_deadline() -> None:
    assert room().next_deadline(NOW) is None


def test_a_live_session_wakes_for_its_liveness_check() -> None:
    assert live(room()).next_deadline(NOW) == NOW + timedelta(minutes=5)


def test_a_future_window_wakes_at_its_opening_then_at_its_end() -> None:
    state = room(schedule=[WINDOW])
    opens = WINDOW.starts_at - timedelta(minutes=10)

    assert state.next_deadline(opens - timedelta(minutes=1)) == opens
    assert state.next_deadline(opens) == WINDOW.ends_at


def test_a_pending_retry_comes_first() -> None:
    retry = NOW + timedelta(seconds=30)

    assert live(room(retry_at=retry)).next_deadline(NOW) == retry


# --- phase → what callers see -------------------------------------------------------------------

PHASES: list[tuple[RoomWorkflowState, TelephonyState, bool]] = [
    (room(phase=RoomPhase.NEW), TelephonyState.CLOSED, False),
    (room(phase=RoomPhase.FAILED), TelephonyState.CLOSED, False),
    (room(), TelephonyState.IDLE, True),
    (room(rule=RULE), TelephonyState.OPEN, True),
    (room(phase=RoomPhase.UNREGISTERING, rule=RULE), TelephonyState.CLOSED, False),
]


@pytest.mark.parametrize(("state", "shown", "registered"), PHASES)
def test_the_phase_maps_to_the_state_and_registration_callers_see(
    state: RoomWorkflowState, shown: TelephonyState, registered: bool
) -> None:
    status = state.status()

    assert (state.telephony_state, status.state, status.registered) == (shown, shown, registered)


# --- the room's own phone policy ----------------------------------------------------------------


def test_overrides_given_replace_and_overrides_left_out_keep_what_the_room_has() -> None:
    current = RoomOverrides(dispatch_mode=DispatchMode.ALWAYS, numbers=[NUMBER])

    merged = RoomOverrides(hide_phone_number=True).over(current)

    assert merged == RoomOverrides(
        dispatch_mode=DispatchMode.ALWAYS, numbers=[NUMBER], hide_phone_number=True
    )
    assert RoomOverrides(numbers=[]).over(merged).numbers == []


def test_the_status_shows_the_rooms_own_policy_over_the_settings() -> None:
    state = room(
        overrides=RoomOverrides(
            dispatch_mode=DispatchMode.ALWAYS, numbers=[NUMBER], hide_phone_number=True
        )
    )

    status = state.status()

    assert (status.dispatch_mode, status.numbers, status.hide_phone_number) == (
        DispatchMode.ALWAYS,
        [NUMBER],
        True,
    )


def test_the_ui_details_show_the_rooms_numbers_and_never_its_pin() -> None:
    details = room(rule=RULE, overrides=RoomOverrides(numbers=[NUMBER])).details()

    assert NUMBER in details and PIN not in details
