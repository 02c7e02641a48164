"""`RoomTelephonyWorkflow`: one per room, for the room's whole life.

Handlers change the *desired* state (registration, PIN, schedule, sessions); the run loop alone
talks to LiveKit, reconciling the dispatch rule until actual = desired, and sleeps until the next
message or deadline (liveness check, max session duration, schedule boundary, retry).
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from telephony import contracts
    from telephony.models import (
        EnsureRuleRequest,
        EnsureRuleResult,
        LeasedPin,
        LeasePinRequest,
        LiveKitEvent,
        LiveKitEventKind,
        ObservedRules,
        RegisterRoom,
        RoomLiveness,
        RoomMemo,
        RoomStatus,
        RotatePin,
        Schedule,
        ScheduleWindow,
        is_valid_room_id,
        schedule_problem,
    )
    from telephony.pins import PIN_RULE, is_valid_pin
    from workflows.pin_lease import PinLeaseWorkflow
    from workflows.state import RoomPhase, RoomWorkflowInput, RoomWorkflowState

# LiveKit calls retry with backoff until they succeed; only non-retryable errors come back.
LIVEKIT_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=1),
)
LIVEKIT_CALL_TIMEOUT = timedelta(seconds=30)
# After a non-retryable failure (bad credentials, PIN conflict) reconciliation is tried again later.
ERROR_RETRY_DELAY = timedelta(minutes=1)
# A workflow started without a registration (rejected or failed) does not linger.
REGISTRATION_GRACE = timedelta(minutes=1)
# How long an update waits for LiveKit to reflect it before answering with the current state.
CONVERGENCE_WAIT = timedelta(seconds=30)
# Leasing a PIN is a local activity (a draw and a Temporal start in the worker, within the
# update's workflow task): registration costs no extra task round trips.
LEASE_TIMEOUT = timedelta(seconds=30)
LEASE_RETRY = RetryPolicy(maximum_interval=timedelta(seconds=5))
_PIN_CONFLICT_MESSAGE = (
    "the room already has another PIN: change it with pin/rotate and the requested PIN"
)
# The registration's liveness check, beside the lease: past this, the run loop asks instead.
LIVENESS_PROBE_TIMEOUT = timedelta(seconds=2)


@workflow.defn(name=contracts.ROOM_WORKFLOW)
class RoomTelephonyWorkflow:
    @workflow.init
    def __init__(self, input: RoomWorkflowInput) -> None:
        self.state = input.state or RoomWorkflowState(room_id=input.room_id)
        # Serializes PIN allocation between concurrent register/rotate handlers.
        self.pin_lock = asyncio.Lock()
        self.changed = False
        # What the search attributes already say (the client sets them at start): each upsert
        # is a history event and a visibility write, so none is repeated.
        self.published_state = workflow.info().typed_search_attributes.get(
            contracts.TELEPHONY_STATE
        )
        self.published_memo: RoomMemo | None = None
        self.registering = False  # the first registration's update is being handled
        self.liveness_probe: asyncio.Task[None] | None = None

    @workflow.run
    async def run(self, input: RoomWorkflowInput) -> RoomStatus:
        if self.state.phase is RoomPhase.NEW:
            if self.registering:
                # Started by update-with-start: its update is already running (no timer).
                await workflow.wait_condition(lambda: self.state.phase is not RoomPhase.NEW)
            else:
                with contextlib.suppress(TimeoutError):
                    await workflow.wait_condition(
                        lambda: self.state.phase is not RoomPhase.NEW,
                        timeout=REGISTRATION_GRACE,
                        timeout_summary="registration grace",
                    )
            if self.state.phase in (RoomPhase.NEW, RoomPhase.FAILED):
                await workflow.wait_condition(workflow.all_handlers_finished)
                return self.state.status()

        while True:
            # Cleared before reconciling: a message handled meanwhile sets it again, so the loop
            # goes round once more instead of sleeping on a change it has not applied.
            self.changed = False
            await self._reconcile()
            if self._done():
                await workflow.wait_condition(workflow.all_handlers_finished)
                if self._done():
                    return self.state.status()
                continue
            # Not while a handler runs: an update waiting for convergence needs this loop, so
            # waiting for it here would stall both until its wait times out.
            if self._continue_as_new_due() and workflow.all_handlers_finished():
                self.state.sessions_ended = 0
                workflow.continue_as_new(
                    RoomWorkflowInput(room_id=self.state.room_id, state=self.state)
                )
            await self._sleep_until_next_change()

    # --- messages -----------------------------------------------------------------------------

    @workflow.update(name=contracts.REGISTER_UPDATE)
    async def register(self, request: RegisterRoom) -> RoomStatus:
        state = self.state
        state.policy = request.policy
        overrides = request.overrides.over(state.overrides)
        policy_changed = state.phase is RoomPhase.REGISTERED and overrides != state.overrides
        state.overrides = overrides
        if request.history_event_threshold is not None:
            state.history_event_threshold = request.history_event_threshold
        if request.schedule is not None:
            state.schedule = list(request.schedule)
        phase_before = state.phase
        if phase_before is RoomPhase.NEW:
            self.registering = True
            # Its room_started may have come before the registration (and been ignored): ask
            # LiveKit now, beside the PIN lease, within this same workflow task.
            state.liveness_check_pending = True
            self.liveness_probe = asyncio.create_task(self._probe_liveness())
        if phase_before is RoomPhase.UNREGISTERING:
            # Registered again before the previous unregistration finished: the room lives on
            # (set before any await, so the run loop does not end the run meanwhile).
            state.phase = RoomPhase.REGISTERED
        async with self.pin_lock:
            if state.pin is not None and request.pin not in (None, state.pin):
                # Checked again under the lock: a concurrent registration may have leased one.
                raise ApplicationError(_PIN_CONFLICT_MESSAGE, type=contracts.PIN_CONFLICT)
            if state.pin is None:
                try:
                    leased = await self._lease_pin(request.pin)
                except ApplicationError:
                    # No PIN: a first registration fails the run, a re-registration leaves
                    # the room to finish unregistering.
                    state.phase = (
                        RoomPhase.FAILED if phase_before is RoomPhase.NEW else phase_before
                    )
                    raise
                state.pin, state.lease_id = leased.pin, leased.lease_id
            state.phase = RoomPhase.REGISTERED
            # In this workflow task, not after LiveKit answers: reconciliation releases a lease
            # its owner's memo does not list once the grace period is over.
            self._publish_state()
        self._wake()
        if policy_changed:
            await self._wait_converged()  # the answer shows the rule LiveKit now holds
        return state.status()

    @register.validator
    def _validate_register(self, request: RegisterRoom) -> None:
        if not request.policy.enabled:
            raise ApplicationError(
                "telephony is disabled (ROOM_TELEPHONY_ENABLED is false)",
                type=contracts.TELEPHONY_DISABLED,
            )
        if request.room_id != self.state.room_id or not is_valid_room_id(request.room_id):
            raise ApplicationError(
                f"{request.room_id!r} is not a valid room id for this workflow",
                type=contracts.INVALID_ROOM_ID,
            )
        if request.schedule is not None:
            self._check_schedule(request.schedule)
        if request.pin is not None:
            self._check_requested_pin(request.pin)
            if self.state.pin is not None and request.pin != self.state.pin:
                raise ApplicationError(_PIN_CONFLICT_MESSAGE, type=contracts.PIN_CONFLICT)

    def _check_requested_pin(self, pin: str) -> None:
        # Any 4-16 digits, whatever the configured length: operators change it over time.
        if not is_valid_pin(pin):
            raise ApplicationError(
                f"a requested PIN must be {PIN_RULE}", type=contracts.INVALID_PIN
            )

    @workflow.update(name=contracts.ROTATE_PIN_UPDATE)
    async def rotate_pin(self, request: RotatePin | None = None) -> RoomStatus:
        state = self.state
        requested = request.pin if request is not None else None
        async with self.pin_lock:
            if requested is not None and requested == state.pin:
                return state.status()  # already this room's PIN: nothing to rotate
            leased = await self._lease_pin(requested)
            if state.pin is not None and state.lease_id is not None:
                state.leases_to_release.append(LeasedPin(pin=state.pin, lease_id=state.lease_id))
            state.pin, state.lease_id = leased.pin, leased.lease_id
            self._publish_state()  # the new lease is listed at once (see register)
        self._wake()
        await self._wait_converged()
        return self.state.status()

    @rotate_pin.validator
    def _validate_rotate_pin(self, request: RotatePin | None = None) -> None:
        self._require_registered()
        if request is not None and request.pin is not None:
            self._check_requested_pin(request.pin)

    @workflow.update(name=contracts.SET_SCHEDULE_UPDATE)
    async def set_schedule(self, schedule: Schedule) -> RoomStatus:
        self.state.schedule = list(schedule.windows)
        self._wake()
        await self._wait_converged()
        return self.state.status()

    @set_schedule.validator
    def _validate_set_schedule(self, schedule: Schedule) -> None:
        self._require_registered()
        self._check_schedule(schedule.windows)

    def _check_schedule(self, windows: list[ScheduleWindow]) -> None:
        # Also checked by the client; here so that no caller can make a workflow task fail.
        problem = schedule_problem(windows, workflow.now())
        if problem is not None:
            raise ApplicationError(problem, type=contracts.INVALID_SCHEDULE)

    @workflow.update(name=contracts.UNREGISTER_UPDATE)
    async def unregister(self) -> RoomStatus:
        self.state.phase = RoomPhase.UNREGISTERING
        self._wake()
        await self._wait_converged()
        return self.state.status()

    @unregister.validator
    def _validate_unregister(self) -> None:
        self._require_registered()

    @workflow.signal(name=contracts.LIVEKIT_EVENT_SIGNAL)
    def livekit_event(self, event: LiveKitEvent) -> None:
        if self.state.apply_event(event, workflow.now()):
            self._wake()

    @workflow.signal(name=contracts.OBSERVED_RULES_SIGNAL)
    def observed_rules(self, observed: ObservedRules) -> None:
        """Reconciliation saw these managed rules for this room in LiveKit."""
        if self.state.rule is not None and self.state.rule.rule_id not in observed.rule_ids:
            # Our rule vanished; re-create it (a conflict with one created since is adopted).
            self.state.rule = None
        current = self.state.rule.rule_id if self.state.rule else None
        for rule_id in observed.rule_ids:
            if rule_id != current and rule_id not in self.state.stray_rule_ids:
                self.state.stray_rule_ids.append(rule_id)
        self._wake()

    @workflow.query(name=contracts.STATUS_QUERY)
    def status(self) -> RoomStatus:
        return self.state.status()

    def _require_registered(self) -> None:
        if not self.state.registered:
            raise ApplicationError(
                f"room {self.state.room_id} is not registered", type=contracts.ROOM_NOT_REGISTERED
            )

    # --- PIN leases ---------------------------------------------------------------------------

    async def _lease_pin(self, requested: str | None = None) -> LeasedPin:
        """A PIN whose lease has started (the lease's workflow id is the uniqueness check):
        `requested` if given and free, else a drawn one.

        Raises `ApplicationError` (e.g. `PinSpaceExhausted`, `PinTaken`), which fails the
        update only.
        """
        policy = self.state.policy
        assert policy is not None
        try:
            leased: LeasedPin = await workflow.execute_local_activity(
                contracts.LEASE_PIN,
                LeasePinRequest(
                    owner_room_id=self.state.room_id,
                    pin_length=policy.pin_length,
                    max_draws=policy.pin_max_retries,
                    requested_pin=requested,
                ),
                result_type=LeasedPin,
                summary="lease a PIN",
                start_to_close_timeout=LEASE_TIMEOUT,
                retry_policy=LEASE_RETRY,
                schedule_to_close_timeout=LEASE_TIMEOUT * 2,
            )
        except ActivityError as err:
            if isinstance(err.cause, ApplicationError):
                raise err.cause from None
            raise ApplicationError(f"no PIN could be leased: {err.cause}") from None
        return leased

    async def _release_leases(self, leases: list[LeasedPin]) -> None:
        owner = workflow.info().workflow_id
        for leased in leases:
            try:
                lease = workflow.get_external_workflow_handle(leased.lease_id)
                await lease.signal(PinLeaseWorkflow.release, owner)
            except Exception as exc:
                workflow.logger.info("lease already closed (%s)", type(exc).__name__)

    # --- reconciliation -----------------------------------------------------------------------

    async def _reconcile(self) -> None:
        """Drive LiveKit to the desired state; record (never raise) non-retryable failures."""
        state = self.state
        now = workflow.now()
        state.prune_schedule(now)
        try:
            await self._check_session(now)
            if state.rule_wanted(workflow.now()):
                await self._ensure_rule()
            elif state.rule is not None:
                await self._delete_rule(state.rule.rule_id)
                state.rule = None
            for rule_id in list(state.stray_rule_ids):
                # Reported as stray while our create was in flight: it is our rule after all.
                if state.rule is None or rule_id != state.rule.rule_id:
                    await self._delete_rule(rule_id)
                state.stray_rule_ids.remove(rule_id)
            # A PIN is free again only once no rule of ours routes it.
            releasable = [old for old in state.leases_to_release if not self._rule_uses(old.pin)]
            current: LeasedPin | None = None
            if state.unregistering and state.rule is None and state.pin and state.lease_id:
                current = LeasedPin(pin=state.pin, lease_id=state.lease_id)
            if releasable or current:
                await self._release_leases([*releasable, *([current] if current else [])])
                state.leases_to_release = [
                    old for old in state.leases_to_release if old not in releasable
                ]
                if current is not None:
                    state.pin = state.lease_id = None
            state.last_error = None
            state.retry_at = None
        except ActivityError as err:
            cause = err.cause
            kind = cause.type if isinstance(cause, ApplicationError) else type(cause).__name__
            message = cause.message if isinstance(cause, ApplicationError) else str(cause)
            state.last_error = f"{kind}: {message}"
            state.retry_at = workflow.now() + ERROR_RETRY_DELAY
            workflow.logger.warning("reconciliation failed, retrying later: %s", state.last_error)
        self._publish_state()

    def _rule_uses(self, pin: str) -> bool:
        return self.state.rule is not None and self.state.rule.pin == pin

    async def _check_session(self, now: datetime) -> None:
        state = self.state
        if state.session_expired(now):
            workflow.logger.info("session reached the maximum duration; closing it")
            state.end_session()
        probing = self.liveness_probe is not None and not self.liveness_probe.done()
        if probing or not state.liveness_check_due(now):
            return
        asked_at = workflow.now()
        liveness = await workflow.execute_activity(
            contracts.CHECK_ROOM_LIVENESS,
            state.room_id,
            result_type=RoomLiveness,
            summary="check room liveness",
            start_to_close_timeout=LIVEKIT_CALL_TIMEOUT,
            retry_policy=LIVEKIT_RETRY,
        )
        self._apply_liveness(liveness, asked_at)

    async def _probe_liveness(self) -> None:
        """The registration's look at LiveKit: a local activity running beside the PIN lease,
        so it costs no task round trip. Failed (or slow: LiveKit must not delay registration),
        it leaves the check to the run loop, as a regular activity with retries."""
        asked_at = workflow.now()
        try:
            liveness = await workflow.execute_local_activity(
                contracts.CHECK_ROOM_LIVENESS,
                self.state.room_id,
                result_type=RoomLiveness,
                summary="check room liveness (registration)",
                start_to_close_timeout=LIVENESS_PROBE_TIMEOUT,
                retry_policy=RetryPolicy(maximum_attempts=1),
            )
        except ActivityError as err:
            workflow.logger.info("registration's liveness check failed (%s)", err.cause)
        else:
            await workflow.wait_condition(lambda: self.state.phase is not RoomPhase.NEW)
            if self.state.registered and self.state.liveness_check_pending:
                self._apply_liveness(liveness, asked_at)
        self._wake()

    def _apply_liveness(self, liveness: RoomLiveness, asked_at: datetime) -> None:
        """What LiveKit said about the room (asked at `asked_at`) applied to the session."""
        state = self.state
        state.liveness_check_pending = False
        session = state.session  # an event may have changed it while the check ran
        if session is not None and session.opened_at >= asked_at:
            return  # it began after LiveKit was asked: the answer says nothing about it
        if session is not None and liveness.exists and liveness.sid == session.sid:
            state.session = session.model_copy(update={"last_liveness_check": workflow.now()})
            return
        if session is not None:
            workflow.logger.info("room is no longer live in LiveKit; closing the session")
            state.end_session()
        if liveness.exists and liveness.sid:
            # A live incarnation this room has not been told about (its room_started may be
            # late, lost, or older than the registration): the same rules as for an event.
            started_at = liveness.created_at or workflow.now()
            state.apply_event(
                LiveKitEvent(
                    kind=LiveKitEventKind.ACTIVITY,
                    room_sid=liveness.sid,
                    event_id=f"liveness-{liveness.sid}",
                    created_at=started_at,
                    room_created_at=started_at,
                ),
                workflow.now(),
            )

    async def _ensure_rule(self) -> None:
        state = self.state
        current = state.rule
        # What this call creates the rule for: a rotation or new policy may come meanwhile.
        wanted = state.wanted_rule("")
        assert wanted is not None
        session = state.session
        verify = session is not None and session.verify_rule
        up_to_date = state.rule_up_to_date()
        if up_to_date and not verify:
            return
        # The room's rule with this PIN is looked up by id first: adopted if LiveKit still
        # holds it, replaced in place if only its numbers or number hiding changed.
        known = current.rule_id if current is not None and current.pin == wanted.pin else None
        summary = (
            "create dispatch rule"
            if known is None
            else ("verify dispatch rule" if up_to_date else "update dispatch rule")
        )
        result = await workflow.execute_activity(
            contracts.ENSURE_DISPATCH_RULE,
            EnsureRuleRequest(
                room_id=state.room_id,
                pin=wanted.pin,
                numbers=wanted.numbers,
                hide_phone_number=wanted.hide_phone_number,
                known_rule_id=known,
            ),
            result_type=EnsureRuleResult,
            summary=summary,
            start_to_close_timeout=LIVEKIT_CALL_TIMEOUT,
            retry_policy=LIVEKIT_RETRY,
        )
        state.rule = wanted.model_copy(update={"rule_id": result.rule_id})
        self._publish_state()  # before the old rule's delete, which may wait out an outage
        if session is not None and state.session is session and verify:
            state.session = session.model_copy(update={"verify_rule": False})
        if current is not None and current.rule_id != result.rule_id:
            # PIN rotated: the new rule routes callers now; the old PIN stops routing.
            await self._delete_rule(current.rule_id)

    async def _delete_rule(self, rule_id: str) -> None:
        await workflow.execute_activity(
            contracts.DELETE_DISPATCH_RULE,
            rule_id,
            result_type=bool,
            summary="delete dispatch rule",
            start_to_close_timeout=LIVEKIT_CALL_TIMEOUT,
            retry_policy=LIVEKIT_RETRY,
        )

    # --- loop helpers -------------------------------------------------------------------------

    def _wake(self) -> None:
        self.changed = True

    async def _sleep_until_next_change(self) -> None:
        now = workflow.now()
        deadline = self.state.next_deadline(now)
        timeout = max(deadline - now, timedelta(seconds=1)) if deadline else None
        with contextlib.suppress(TimeoutError):
            await workflow.wait_condition(
                lambda: (
                    self.changed
                    or (self._continue_as_new_due() and workflow.all_handlers_finished())
                ),
                timeout=timeout,
                timeout_summary=self.state.next_deadline_reason(now),
            )

    async def _wait_converged(self) -> None:
        """Let an update answer with LiveKit's new state, unless LiveKit is slow to get there.

        `converged` compares the desired state (which the update has just changed) with what
        LiveKit holds, so it turns true only once the run loop has acted on the change. It must
        not wait for the loop itself: the loop waits for handlers before it returns.
        """
        with contextlib.suppress(TimeoutError):
            await workflow.wait_condition(
                lambda: self.state.converged(workflow.now()),
                timeout=CONVERGENCE_WAIT,
                timeout_summary="wait for LiveKit to converge",
            )

    def _done(self) -> bool:
        return self.state.unregistering and self.state.converged(workflow.now())

    def _continue_as_new_due(self) -> bool:
        """When history is long (even mid-outage: the state carries what is left to do), or
        after a finished session once LiveKit reflects it."""
        info = workflow.info()
        threshold = self.state.history_event_threshold
        if threshold is not None and info.get_current_history_length() >= threshold:
            return True
        if info.is_continue_as_new_suggested():
            return True
        return self.state.sessions_ended > 0 and self.state.converged(workflow.now())

    def _publish_state(self) -> None:
        """Search attributes for people (the UI, `rooms list`) and the memo for reconciliation,
        each written only when it changed (every write is a history event)."""
        value = self.state.telephony_state.value
        if value != self.published_state:
            workflow.upsert_search_attributes(
                [
                    contracts.TELEPHONY_ROOM_ID.value_set(self.state.room_id),
                    contracts.TELEPHONY_STATE.value_set(value),
                ]
            )
            self.published_state = value
        # The UI's "current details" (a query, not a history event): never the PIN.
        workflow.set_current_details(self.state.details())
        memo = self.state.memo()
        if memo != self.published_memo:
            workflow.upsert_memo({contracts.ROOM_MEMO_KEY: memo})
            self.published_memo = memo
