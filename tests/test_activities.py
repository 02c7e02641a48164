"""The activities inside a real Temporal worker (dev server), against the LiveKit emulator.

Each test runs one activity through a tiny workflow with a fast retry policy, so what is checked
is what a room workflow would see: the result after Temporal's retries, or the final failure with
its type, retryability and attempt count.
"""

from __future__ import annotations

import asyncio
import secrets
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import pytest
from livekit.api import (
    CreateSIPDispatchRuleRequest,
    ListUpdate,
    LiveKitAPI,
    SIPDispatchRule,
    SIPDispatchRuleDirect,
    SIPDispatchRuleInfo,
)
from pydantic import BaseModel, Field
from temporalio import activity, workflow
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowFailureError
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, RetryState
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities import build_activities, open_livekit_api
from activities.dispatch_rules import INVALID_PIN, existing_rule_ids, list_rules_after
from activities.livekit_errors import LIVEKIT_TRANSPORT_ERROR, LIVEKIT_UNAVAILABLE
from activities.temporal import describe_room
from livekit_emulator import LiveKitEmulator
from telephony import contracts
from telephony.contracts import (
    MANAGED_BY_ATTRIBUTE,
    MANAGED_BY_VALUE,
    ROOM_ID_ATTRIBUTE,
    dispatch_rule_name,
)
from telephony.models import (
    EnsureRuleRequest,
    EnsureRuleResult,
    LeasedPin,
    LeasePinRequest,
    RoomLiveness,
)
from telephony.settings import Settings
from tests.fixtures import keys

T = TypeVar("T")


def fast_retry(maximum_attempts: int) -> RetryPolicy:
    """Short backoff so retried tests stay quick; bounded so a broken activity cannot hang."""
    return RetryPolicy(
        initial_interval=timedelta(milliseconds=100),
        backoff_coefficient=1.5,
        maximum_interval=timedelta(milliseconds=300),
        maximum_attempts=maximum_attempts,
    )


# --- the test-only workflows ----------------------------------------------------------------


class ActivityCall(BaseModel):
    activity: str
    args: list[Any] = Field(default_factory=list)
    maximum_attempts: int = 10


# Not sandboxed: it only forwards one activity call, and the sandbox would re-import this module
# (emulator, pytest) for every run.
@workflow.defn(sandboxed=False)
class CallActivityWorkflow:
    @workflow.run
    async def run(self, call: ActivityCall) -> Any:
        return await workflow.execute_activity(
            call.activity,
            args=call.args,
            start_to_close_timeout=timedelta(seconds=15),
            retry_policy=fast_retry(call.maximum_attempts),
        )


@workflow.defn(sandboxed=False)
class IdleWorkflow:
    """Stays open until signalled; optionally continues as new once first."""

    def __init__(self) -> None:
        self._finish = False

    @workflow.run
    async def run(self, continue_once: bool) -> None:
        if continue_once:
            workflow.continue_as_new(False)
        await workflow.wait_condition(lambda: self._finish)

    @workflow.signal
    def finish(self) -> None:
        self._finish = True


# --- harness --------------------------------------------------------------------------------


@dataclass
class Failure:
    error: ApplicationError
    retry_state: RetryState | None
    attempts: int


@dataclass
class Harness:
    client: Client
    task_queue: str
    livekit: LiveKitAPI

    async def call(
        self, activity: str, *args: Any, result_type: type[T], maximum_attempts: int = 10
    ) -> T:
        # By name: the typed overloads do not take `result_type`, which decodes the pydantic model.
        result: T = await self.client.execute_workflow(
            "CallActivityWorkflow",
            ActivityCall(activity=activity, args=list(args), maximum_attempts=maximum_attempts),
            id=f"call-{activity}-{uuid.uuid4()}",
            task_queue=self.task_queue,
            result_type=result_type,
        )
        return result

    async def fail(self, activity: str, *args: Any, maximum_attempts: int = 10) -> Failure:
        """Run an activity expected to fail for good; return the failure Temporal recorded."""
        workflow_id = f"fail-{activity}-{uuid.uuid4()}"
        with pytest.raises(WorkflowFailureError) as caught:
            await self.client.execute_workflow(
                CallActivityWorkflow.run,
                ActivityCall(activity=activity, args=list(args), maximum_attempts=maximum_attempts),
                id=workflow_id,
                task_queue=self.task_queue,
            )
        activity_error = caught.value.cause
        assert isinstance(activity_error, ActivityError)
        assert isinstance(activity_error.cause, ApplicationError)
        return Failure(
            error=activity_error.cause,
            retry_state=activity_error.retry_state,
            attempts=await self.last_attempt(workflow_id),
        )

    async def last_attempt(self, workflow_id: str) -> int:
        # The history records the started event of the final attempt only, with its number.
        history = await self.client.get_workflow_handle(workflow_id).fetch_history()
        attempts = [
            event.activity_task_started_event_attributes.attempt
            for event in history.events
            if event.HasField("activity_task_started_event_attributes")
        ]
        return max(attempts)


StartWorker = Callable[..., Awaitable[Harness]]


@pytest.fixture
async def start_worker(
    temporal_env: WorkflowEnvironment, emulator: LiveKitEmulator
) -> AsyncIterator[StartWorker]:
    """Starts a worker on its own task queue; `settings` override the emulator's defaults."""
    async with AsyncExitStack() as stack:

        async def start(
            *,
            make_activities: Callable[[Settings, LiveKitAPI], Sequence[Callable[..., Any]]]
            | None = None,
            pin_source: Callable[[int], str] | None = None,
            **settings_overrides: Any,
        ) -> Harness:
            settings = Settings(
                **{
                    "livekit_url": emulator.url,
                    "livekit_api_key": emulator.api_key,
                    "livekit_api_secret": emulator.api_secret,
                    "telephony_pin_hash_key": keys.PIN_HASH_KEY,
                    **settings_overrides,
                }
            )
            livekit = await stack.enter_async_context(open_livekit_api(settings))
            activities = (
                make_activities(settings, livekit)
                if make_activities
                else build_activities(settings, livekit, temporal_env.client, pin_source)
            )
            task_queue = f"test-activities-{uuid.uuid4()}"
            worker = Worker(
                temporal_env.client,
                task_queue=task_queue,
                workflows=[CallActivityWorkflow, IdleWorkflow],
                activities=activities,
            )
            await stack.enter_async_context(worker)
            return Harness(temporal_env.client, task_queue, livekit)

        yield start


@pytest.fixture
async def harness(start_worker: StartWorker) -> Harness:
    return await start_worker()


def new_room() -> str:
    return f"room-{uuid.uuid4()}"


def new_pin() -> str:
    # Unique across the session: every rule here is a wildcard, so equal PINs would conflict.
    return "".join(secrets.choice("0123456789") for _ in range(12))


def new_number() -> str:
    return "+3319" + "".join(secrets.choice("0123456789") for _ in range(8))


def rules_for_room(emulator: LiveKitEmulator, room_id: str) -> list[SIPDispatchRuleInfo]:
    return [
        rule
        for rule in emulator.dispatch_rules()
        if rule.rule.dispatch_rule_direct.room_name == room_id
    ]


async def ensure(harness: Harness, room_id: str, pin: str, known: str | None = None) -> Any:
    return await harness.call(
        contracts.ENSURE_DISPATCH_RULE,
        EnsureRuleRequest(room_id=room_id, pin=pin, known_rule_id=known),
        result_type=EnsureRuleResult,
    )


async def create_unmanaged_rule(
    livekit: LiveKitAPI, room_id: str, pin: str, trunk_ids: Sequence[str] = ()
) -> str:
    info = await livekit.sip.create_dispatch_rule(
        CreateSIPDispatchRuleRequest(
            dispatch_rule=SIPDispatchRuleInfo(
                name="someone else's",
                trunk_ids=list(trunk_ids),
                rule=SIPDispatchRule(
                    dispatch_rule_direct=SIPDispatchRuleDirect(room_name=room_id, pin=pin)
                ),
            )
        )
    )
    return info.sip_dispatch_rule_id


# --- ensure_dispatch_rule ---------------------------------------------------------------------


async def test_ensure_creates_a_managed_direct_rule_for_the_room(
    harness: Harness, emulator: LiveKitEmulator
) -> None:
    room_id, pin = new_room(), new_pin()

    result = await ensure(harness, room_id, pin)

    assert result.adopted is False
    [rule] = rules_for_room(emulator, room_id)
    assert rule.sip_dispatch_rule_id == result.rule_id
    assert rule.name == dispatch_rule_name(room_id)
    assert rule.rule.dispatch_rule_direct.pin == pin
    assert dict(rule.attributes) == {
        MANAGED_BY_ATTRIBUTE: MANAGED_BY_VALUE,
        ROOM_ID_ATTRIBUTE: room_id,
    }
    assert list(rule.trunk_ids) == []  # no configured trunks: every trunk


async def test_ensure_applies_configured_trunks_and_hidden_phone_number(
    start_worker: StartWorker, emulator: LiveKitEmulator
) -> None:
    trunk_id = await emulator.create_inbound_trunk(numbers=[new_number()], name="trunk")
    harness = await start_worker(
        room_telephony_trunk_ids=[trunk_id], room_telephony_hide_phone_number=True
    )
    room_id = new_room()

    await ensure(harness, room_id, new_pin())

    [rule] = rules_for_room(emulator, room_id)
    assert list(rule.trunk_ids) == [trunk_id]
    assert rule.hide_phone_number is True


async def test_lost_create_response_is_retried_and_adopts_the_stored_rule(
    harness: Harness, emulator: LiveKitEmulator
) -> None:
    room_id, pin = new_room(), new_pin()
    emulator.faults.apply_then_fail("CreateSIPDispatchRule")

    result = await ensure(harness, room_id, pin)

    [rule] = rules_for_room(emulator, room_id)
    assert result == EnsureRuleResult(rule_id=rule.sip_dispatch_rule_id, adopted=True)


FIRST_ID = "SDR_000000000000"  # sorts before every random id


async def add_rule_sorting_first(emulator: LiveKitEmulator, trunk_ids: Sequence[str] = ()) -> None:
    """An unrelated rule with the lowest id: conflict messages then name the new rule
    (`"<new>"`), not the holder, as on any real LiveKit with more than a few rules."""
    await emulator.create_dispatch_rule(
        SIPDispatchRuleInfo(
            name="filler",
            trunk_ids=list(trunk_ids),
            rule=SIPDispatchRule(
                dispatch_rule_direct=SIPDispatchRuleDirect(room_name=new_room(), pin=new_pin())
            ),
        ),
        rule_id=FIRST_ID,
    )


async def test_lost_create_response_is_adopted_when_the_conflict_names_the_new_rule(
    harness: Harness, emulator: LiveKitEmulator
) -> None:
    await add_rule_sorting_first(emulator)
    room_id, pin = new_room(), new_pin()
    emulator.faults.apply_then_fail("CreateSIPDispatchRule")

    result = await ensure(harness, room_id, pin)

    [rule] = rules_for_room(emulator, room_id)
    assert result == EnsureRuleResult(rule_id=rule.sip_dispatch_rule_id, adopted=True)


async def test_lost_create_response_on_configured_trunks_is_adopted_by_listing_them(
    start_worker: StartWorker, emulator: LiveKitEmulator
) -> None:
    trunk_id = await emulator.create_inbound_trunk(numbers=[new_number()], name="trunk")
    await add_rule_sorting_first(emulator, [trunk_id])
    harness = await start_worker(room_telephony_trunk_ids=[trunk_id])
    room_id = new_room()
    emulator.faults.apply_then_fail("CreateSIPDispatchRule")

    result = await ensure(harness, room_id, new_pin())

    [rule] = rules_for_room(emulator, room_id)
    assert result == EnsureRuleResult(rule_id=rule.sip_dispatch_rule_id, adopted=True)


async def test_unavailable_burst_is_ridden_out(harness: Harness, emulator: LiveKitEmulator) -> None:
    room_id = new_room()
    emulator.faults.fail_next("CreateSIPDispatchRule", code="unavailable", count=3)

    result = await ensure(harness, room_id, new_pin())

    [rule] = rules_for_room(emulator, room_id)
    assert result == EnsureRuleResult(rule_id=rule.sip_dispatch_rule_id, adopted=False)


async def test_unavailable_failure_is_retryable_until_attempts_run_out(
    harness: Harness, emulator: LiveKitEmulator
) -> None:
    emulator.faults.fail_next("ListRooms", code="unavailable", count=5)

    failure = await harness.fail(contracts.CHECK_ROOM_LIVENESS, new_room(), maximum_attempts=2)

    assert failure.error.type == LIVEKIT_UNAVAILABLE
    assert failure.retry_state == RetryState.MAXIMUM_ATTEMPTS_REACHED
    assert failure.attempts == 2


async def test_wrong_secret_fails_fast_as_non_retryable_credentials_rejected(
    start_worker: StartWorker,
) -> None:
    wrong_secret = "not-the-secret-" + secrets.token_hex(16)
    harness = await start_worker(livekit_api_secret=wrong_secret)

    failure = await harness.fail(
        contracts.ENSURE_DISPATCH_RULE, EnsureRuleRequest(room_id=new_room(), pin=new_pin())
    )

    assert failure.error.type == contracts.LIVEKIT_CREDENTIALS_REJECTED
    assert failure.error.non_retryable
    assert failure.retry_state == RetryState.NON_RETRYABLE_FAILURE
    assert failure.attempts == 1  # fails fast: no retry, whatever the wall time
    assert wrong_secret not in failure.error.message


async def test_invalid_argument_is_non_retryable(
    harness: Harness, emulator: LiveKitEmulator
) -> None:
    emulator.faults.fail_next("ListRooms", code="invalid_argument")

    failure = await harness.fail(contracts.CHECK_ROOM_LIVENESS, new_room())

    assert failure.error.type == contracts.LIVEKIT_INVALID_ARGUMENT
    assert failure.attempts == 1


async def test_unreachable_livekit_is_a_retryable_transport_error(
    start_worker: StartWorker,
) -> None:
    # Port 9 on loopback: nothing listens, the connection is refused at once.
    harness = await start_worker(livekit_url="http://127.0.0.1:9")

    failure = await harness.fail(contracts.CHECK_ROOM_LIVENESS, new_room(), maximum_attempts=2)

    assert failure.error.type == LIVEKIT_TRANSPORT_ERROR
    assert failure.retry_state == RetryState.MAXIMUM_ATTEMPTS_REACHED


async def test_pin_held_by_another_rooms_rule_is_non_retryable(
    harness: Harness, emulator: LiveKitEmulator
) -> None:
    pin = new_pin()
    other = await ensure(harness, new_room(), pin)
    room_id = new_room()

    failure = await harness.fail(
        contracts.ENSURE_DISPATCH_RULE, EnsureRuleRequest(room_id=room_id, pin=pin)
    )

    assert failure.error.type == contracts.PIN_HELD_BY_ANOTHER_RULE
    assert failure.attempts == 1
    assert other.rule_id in failure.error.message
    assert room_id in failure.error.message
    assert pin not in failure.error.message
    assert rules_for_room(emulator, room_id) == []


async def test_pin_held_by_another_rule_is_found_when_the_conflict_names_the_new_rule(
    harness: Harness, emulator: LiveKitEmulator
) -> None:
    await add_rule_sorting_first(emulator)
    pin = new_pin()
    other = await ensure(harness, new_room(), pin)

    failure = await harness.fail(
        contracts.ENSURE_DISPATCH_RULE, EnsureRuleRequest(room_id=new_room(), pin=pin)
    )

    assert failure.error.type == contracts.PIN_HELD_BY_ANOTHER_RULE
    assert other.rule_id in failure.error.message
    assert FIRST_ID not in failure.error.message


async def test_pin_on_other_trunks_is_not_a_conflict(
    start_worker: StartWorker, emulator: LiveKitEmulator
) -> None:
    ours = await emulator.create_inbound_trunk(numbers=[new_number()], name="ours")
    pin = new_pin()
    foreign = await create_unmanaged_rule(
        (await start_worker()).livekit, new_room(), pin, trunk_ids=[]
    )
    harness = await start_worker(room_telephony_trunk_ids=[ours])
    room_id = new_room()

    # A wildcard rule with the same PIN does not collide with a trunk-specific one.
    result = await ensure(harness, room_id, pin)

    [rule] = rules_for_room(emulator, room_id)
    assert result == EnsureRuleResult(rule_id=rule.sip_dispatch_rule_id, adopted=False)
    assert rule.sip_dispatch_rule_id != foreign


async def test_conflict_between_two_other_rules_is_non_retryable_invalid_argument(
    harness: Harness, emulator: LiveKitEmulator
) -> None:
    # LiveKit lets a `set` of trunk ids put two rules on the same key; from then on every
    # create that lists both is refused, whatever its PIN.
    t1 = await emulator.create_inbound_trunk(numbers=[new_number()], name="t1")
    t2 = await emulator.create_inbound_trunk(numbers=[new_number()], name="t2")
    pin = new_pin()
    await create_unmanaged_rule(harness.livekit, new_room(), pin, trunk_ids=[t1])
    second = await create_unmanaged_rule(harness.livekit, new_room(), pin, trunk_ids=[t2])
    await harness.livekit.sip.update_dispatch_rule_fields(second, trunk_ids=ListUpdate(set=[t1]))
    room_id = new_room()

    failure = await harness.fail(
        contracts.ENSURE_DISPATCH_RULE, EnsureRuleRequest(room_id=room_id, pin=new_pin())
    )

    assert failure.error.type == contracts.LIVEKIT_INVALID_ARGUMENT
    assert failure.attempts == 1
    assert rules_for_room(emulator, room_id) == []


@pytest.mark.parametrize(
    "pin",
    [
        pytest.param("12ab5678", id="letters"),
        pytest.param("123", id="too-short"),
        pytest.param("1" * 17, id="too-long"),
        pytest.param("\uff11\uff12\uff13\uff14\uff15", id="fullwidth-digits"),
    ],
)
async def test_pin_callers_cannot_type_is_refused_before_any_create(
    harness: Harness, emulator: LiveKitEmulator, pin: str
) -> None:
    room_id = new_room()

    failure = await harness.fail(
        contracts.ENSURE_DISPATCH_RULE, EnsureRuleRequest(room_id=room_id, pin=pin)
    )

    assert failure.error.type == INVALID_PIN
    assert failure.error.non_retryable
    assert pin not in failure.error.message
    assert rules_for_room(emulator, room_id) == []


async def test_pin_held_by_an_unmanaged_rule_for_the_same_room_is_not_adopted(
    harness: Harness,
) -> None:
    room_id, pin = new_room(), new_pin()
    foreign = await create_unmanaged_rule(harness.livekit, room_id, pin)

    failure = await harness.fail(
        contracts.ENSURE_DISPATCH_RULE, EnsureRuleRequest(room_id=room_id, pin=pin)
    )

    assert failure.error.type == contracts.PIN_HELD_BY_ANOTHER_RULE
    assert foreign in failure.error.message


async def test_ensure_with_known_rule_id_adopts_it(
    harness: Harness, emulator: LiveKitEmulator
) -> None:
    room_id, pin = new_room(), new_pin()
    first = await ensure(harness, room_id, pin)
    # Any create would now fail: adoption must come from the lookup by id alone.
    emulator.faults.fail_next("CreateSIPDispatchRule", code="internal", count=100)
    try:
        again = await ensure(harness, room_id, pin, known=first.rule_id)
    finally:
        emulator.faults.clear()

    assert again == EnsureRuleResult(rule_id=first.rule_id, adopted=True)
    assert len(rules_for_room(emulator, room_id)) == 1


async def test_ensure_with_a_vanished_known_rule_id_creates_a_new_rule(
    harness: Harness, emulator: LiveKitEmulator
) -> None:
    room_id, pin = new_room(), new_pin()
    first = await ensure(harness, room_id, pin)
    await harness.call(contracts.DELETE_DISPATCH_RULE, first.rule_id, result_type=bool)

    again = await ensure(harness, room_id, pin, known=first.rule_id)

    [rule] = rules_for_room(emulator, room_id)
    assert again == EnsureRuleResult(rule_id=rule.sip_dispatch_rule_id, adopted=False)
    assert again.rule_id != first.rule_id


# --- delete_dispatch_rule -------------------------------------------------------------------


async def test_delete_twice_reports_already_gone_the_second_time(
    harness: Harness, emulator: LiveKitEmulator
) -> None:
    room_id = new_room()
    created = await ensure(harness, room_id, new_pin())

    first = await harness.call(contracts.DELETE_DISPATCH_RULE, created.rule_id, result_type=bool)
    second = await harness.call(contracts.DELETE_DISPATCH_RULE, created.rule_id, result_type=bool)

    assert (first, second) == (True, False)
    assert rules_for_room(emulator, room_id) == []


async def test_delete_whose_response_was_lost_still_completes(
    harness: Harness, emulator: LiveKitEmulator
) -> None:
    room_id = new_room()
    created = await ensure(harness, room_id, new_pin())
    emulator.faults.apply_then_fail("DeleteSIPDispatchRule")

    deleted = await harness.call(contracts.DELETE_DISPATCH_RULE, created.rule_id, result_type=bool)

    # The first attempt deleted it; the retry found it gone, which counts as done.
    assert deleted is False
    assert rules_for_room(emulator, room_id) == []


# --- check_room_liveness --------------------------------------------------------------------


async def test_liveness_of_an_open_room_reports_its_sid_and_creation_time(
    harness: Harness, emulator: LiveKitEmulator
) -> None:
    room_id = new_room()
    room = await emulator.create_room(room_id)

    liveness = await harness.call(contracts.CHECK_ROOM_LIVENESS, room_id, result_type=RoomLiveness)

    assert liveness == RoomLiveness(
        exists=True,
        sid=room.sid,
        created_at=datetime.fromtimestamp(room.creation_time_ms / 1000, UTC),
    )
    assert room.sid.startswith("RM_")


async def test_liveness_of_an_unknown_room_is_false(harness: Harness) -> None:
    liveness = await harness.call(
        contracts.CHECK_ROOM_LIVENESS, new_room(), result_type=RoomLiveness
    )

    assert liveness == RoomLiveness(exists=False, sid=None)


# --- list_trunk_numbers ---------------------------------------------------------------------


async def test_trunk_numbers_are_listed_without_repeats(
    harness: Harness, emulator: LiveKitEmulator
) -> None:
    a, b, c = new_number(), new_number(), new_number()
    await emulator.create_inbound_trunk(numbers=[a, b, a], name="one")
    await emulator.create_inbound_trunk(numbers=[c], name="two")

    numbers = await harness.call(contracts.LIST_TRUNK_NUMBERS, result_type=list[str])

    assert {a, b, c} <= set(numbers)
    assert len(numbers) == len(set(numbers))


async def test_trunk_numbers_are_restricted_to_configured_trunks(
    start_worker: StartWorker, emulator: LiveKitEmulator
) -> None:
    a, b, c = new_number(), new_number(), new_number()
    wanted = await emulator.create_inbound_trunk(numbers=[a, b], name="wanted")
    await emulator.create_inbound_trunk(numbers=[c], name="other")
    harness = await start_worker(room_telephony_trunk_ids=[wanted])

    numbers = await harness.call(contracts.LIST_TRUNK_NUMBERS, result_type=list[str])

    assert numbers == [a, b]


# --- listing rules after a cursor ------------------------------------------------------------


async def test_rules_after_a_cursor_come_in_id_order_and_resume_after_the_last_id(
    harness: Harness,
) -> None:
    created = sorted([(await ensure(harness, new_room(), new_pin())).rule_id for _ in range(5)])

    everything = [r.sip_dispatch_rule_id for r in await list_rules_after(harness.livekit.sip, "")]
    after_second = await list_rules_after(harness.livekit.sip, created[1])

    assert everything == sorted(everything) and set(created) <= set(everything)
    assert [r.sip_dispatch_rule_id for r in after_second] == [
        rule for rule in everything if rule > created[1]
    ]


async def test_existing_rule_ids_tells_which_rules_livekit_still_holds(
    harness: Harness,
) -> None:
    kept = (await ensure(harness, new_room(), new_pin())).rule_id
    gone = (await ensure(harness, new_room(), new_pin())).rule_id
    await harness.call(contracts.DELETE_DISPATCH_RULE, gone, result_type=bool)

    assert await existing_rule_ids(harness.livekit.sip, [kept, gone]) == {kept}


# --- lease_pin ------------------------------------------------------------------------------


async def lease(harness: Harness, room_id: str, length: int, draws: int = 5) -> LeasedPin:
    return await harness.call(
        contracts.LEASE_PIN,
        LeasePinRequest(owner_room_id=room_id, pin_length=length, max_draws=draws),
        result_type=LeasedPin,
    )


async def test_lease_pin_draws_a_pin_of_the_requested_length_and_starts_its_lease(
    harness: Harness,
) -> None:
    room = new_room()
    leased = await lease(harness, room, 10)

    description = await harness.client.get_workflow_handle(leased.lease_id).describe()
    assert len(leased.pin) == 10 and leased.pin.isdigit()
    assert description.status is WorkflowExecutionStatus.RUNNING
    assert description.typed_search_attributes.get(contracts.TELEPHONY_ROOM_ID) == room


async def test_lease_pin_draws_again_while_the_drawn_pin_is_leased_by_another_room(
    start_worker: StartWorker,
) -> None:
    harness = await start_worker(pin_source=scripted("83726150", "83726150", "19283746"))
    first = await lease(harness, new_room(), 8)

    second = await lease(harness, new_room(), 8)

    assert (first.pin, second.pin) == ("83726150", "19283746")


async def test_lease_pin_gives_a_room_back_the_lease_it_already_holds(
    start_worker: StartWorker,
) -> None:
    harness = await start_worker(pin_source=scripted("56473829", "56473829"))
    room = new_room()
    first = await lease(harness, room, 8)

    again = await lease(harness, room, 8, draws=1)  # a retried attempt drawing the same PIN

    assert again == first


async def test_lease_pin_fails_for_good_when_every_draw_is_taken(
    start_worker: StartWorker,
) -> None:
    harness = await start_worker(pin_source=scripted(*["74839201"] * 4))
    await lease(harness, new_room(), 8)

    failure = await harness.fail(
        contracts.LEASE_PIN,
        LeasePinRequest(owner_room_id=new_room(), pin_length=8, max_draws=3),
    )

    assert failure.error.type == contracts.PIN_SPACE_EXHAUSTED and failure.error.non_retryable
    assert "74839201" not in failure.error.message


def scripted(*pins: str) -> Callable[[int], str]:
    sequence = iter(pins)
    return lambda length: next(sequence)


# --- describe_room --------------------------------------------------------------------------


async def start_idle(harness: Harness, room_id: str, *, continue_once: bool = False) -> Any:
    return await harness.client.start_workflow(
        IdleWorkflow.run,
        continue_once,
        id=contracts.room_workflow_id(room_id),
        task_queue=harness.task_queue,
    )


async def test_a_running_room_workflow_is_open(harness: Harness) -> None:
    room = new_room()
    handle = await start_idle(harness, room)

    view = await describe_room(harness.client, room)

    await handle.signal(IdleWorkflow.finish)
    assert view.open is True


async def test_a_room_workflow_that_continued_as_new_is_open(harness: Harness) -> None:
    room = new_room()
    first = await start_idle(harness, room, continue_once=True)
    latest = harness.client.get_workflow_handle(contracts.room_workflow_id(room))
    # The check is about the chain: wait until the first run has handed over to its successor.
    for _ in range(200):
        if (await latest.describe()).run_id != first.first_execution_run_id:
            break
        await asyncio.sleep(0.05)

    view = await describe_room(harness.client, room)

    await latest.signal(IdleWorkflow.finish)
    assert view.open is True


async def test_a_completed_room_workflow_is_closed(harness: Harness) -> None:
    room = new_room()
    handle = await start_idle(harness, room)
    await handle.signal(IdleWorkflow.finish)
    await handle.result()

    assert (await describe_room(harness.client, room)).open is False


async def test_an_unknown_room_is_closed(harness: Harness) -> None:
    assert (await describe_room(harness.client, new_room())).open is False


# --- wiring ---------------------------------------------------------------------------------


def test_build_activities_registers_every_activity_name_once() -> None:
    settings = Settings(livekit_url="http://127.0.0.1:1", livekit_api_key="k")
    # Never called: only the bound methods are collected.
    livekit = object.__new__(LiveKitAPI)
    client = object.__new__(Client)

    names = [
        str(activity._Definition.must_from_callable(fn).name)
        for fn in build_activities(settings, livekit, client)
    ]

    assert sorted(names) == sorted(
        [
            contracts.ENSURE_DISPATCH_RULE,
            contracts.DELETE_DISPATCH_RULE,
            contracts.CHECK_ROOM_LIVENESS,
            contracts.LIST_TRUNK_NUMBERS,
            contracts.LEASE_PIN,
            contracts.RECONCILE_SENTINEL,
            contracts.RECONCILE_RULES,
            contracts.RECONCILE_ROOMS,
            contracts.RECONCILE_SESSIONS,
            contracts.RECONCILE_LEASES,
        ]
    )


def test_build_activities_without_temporal_client_leaves_out_those_that_call_temporal() -> None:
    settings = Settings(livekit_url="http://127.0.0.1:1", livekit_api_key="k")
    livekit = object.__new__(LiveKitAPI)

    names = {
        str(activity._Definition.must_from_callable(fn).name)
        for fn in build_activities(settings, livekit, None)
    }

    assert contracts.LEASE_PIN not in names and contracts.RECONCILE_RULES not in names
