"""The room workflow's whole state: one serializable object, carried through continue-as-new.

Pure data and pure functions of (state, now): no Temporal calls here, so the rules that decide
what the room should look like are unit-tested without a server (`tests/test_room_state.py`).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from enum import StrEnum

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from telephony.models import (
    DispatchMode,
    LeasedPin,
    LiveKitEvent,
    LiveKitEventKind,
    RoomMemo,
    RoomOverrides,
    RoomPolicy,
    RoomSession,
    RoomStatus,
    ScheduleWindow,
    TelephonyState,
)

# Bounded memories for idempotence: enough to absorb LiveKit's redeliveries, small enough to
# carry through continue-as-new.
SEEN_EVENT_IDS_KEPT = 256
CLOSED_SIDS_KEPT = 64


class RuleRef(BaseModel):
    """A dispatch rule that exists in LiveKit (as far as this workflow knows), and what it
    routes."""

    model_config = ConfigDict(extra="forbid")

    rule_id: str
    pin: str
    numbers: list[str] = Field(default_factory=list)
    hide_phone_number: bool = False


class LiveSession(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sid: str
    started_at: AwareDatetime  # LiveKit's clock (the room's creation time): orders incarnations
    opened_at: AwareDatetime  # workflow clock: liveness and max-duration deadlines
    last_liveness_check: AwareDatetime
    # The rule was believed present when this session began (`always`, a window): check once
    # that LiveKit still holds it (a LiveKit restart loses every rule).
    verify_rule: bool = False


class RoomPhase(StrEnum):
    """Where the room is in its life. NEW → REGISTERED ⇄ UNREGISTERING → (run ends);
    NEW → FAILED when the first registration fails (run ends)."""

    NEW = "new"  # started, waiting for its first registration
    REGISTERED = "registered"  # has a PIN; the rule follows the room's sessions and schedule
    UNREGISTERING = "unregistering"  # rule being removed, then the PIN released; then done
    FAILED = "failed"  # the first registration failed (no PIN could be leased)


class RoomWorkflowState(BaseModel):
    model_config = ConfigDict(extra="forbid")

    room_id: str
    phase: RoomPhase = RoomPhase.NEW
    policy: RoomPolicy | None = None
    overrides: RoomOverrides = Field(default_factory=RoomOverrides)
    pin: str | None = None
    lease_id: str | None = None  # the workflow id of `pin`'s lease
    # Old PINs whose leases are released once no rule uses them any more.
    leases_to_release: list[LeasedPin] = Field(default_factory=list)
    rule: RuleRef | None = None
    # Managed rules for this room seen in LiveKit that are not `rule`: deleted by reconcile.
    stray_rule_ids: list[str] = Field(default_factory=list)
    session: LiveSession | None = None
    latest_session_started_at: AwareDatetime | None = None
    closed_sids: list[str] = Field(default_factory=list)
    seen_event_ids: list[str] = Field(default_factory=list)
    # Ask LiveKit once whether the room is live (set on registration: its room_started may have
    # come before the room was registered, and been ignored).
    liveness_check_pending: bool = False
    schedule: list[ScheduleWindow] = Field(default_factory=list)
    sessions_ended: int = 0  # since this run started; a finished session ends the run
    last_error: str | None = None
    retry_at: AwareDatetime | None = None
    # Test seam: continue-as-new once history is this long (None: when Temporal suggests it).
    history_event_threshold: int | None = None

    # --- events -------------------------------------------------------------------------------

    def apply_event(self, event: LiveKitEvent, now: datetime) -> bool:
        """Apply a LiveKit event; idempotent and order-free. True if the session changed."""
        if not self.registered:
            return False
        if event.event_id in self.seen_event_ids:
            return False
        self.seen_event_ids = [*self.seen_event_ids, event.event_id][-SEEN_EVENT_IDS_KEPT:]
        if event.room_sid in self.closed_sids:
            return False  # that incarnation is over; late or duplicated news of it changes nothing
        if event.kind is LiveKitEventKind.FINISHED:
            self._close_sid(event.room_sid)
            if self.session is not None and self.session.sid == event.room_sid:
                self.end_session()
                return True
            return False
        # `started`, or participant/track activity proving the incarnation is live.
        if self.session is not None:
            if self.session.sid == event.room_sid:
                return False
            if event.incarnation_started_at < self.session.started_at:
                self._close_sid(event.room_sid)  # an older incarnation than the live one
                return False
            self.end_session()  # a newer incarnation replaces the live one
        elif (
            self.latest_session_started_at is not None
            and event.incarnation_started_at < self.latest_session_started_at
        ):
            self._close_sid(event.room_sid)  # older than a session already seen: stale
            return False
        self.start_session(event.room_sid, event.incarnation_started_at, now)
        return True

    def start_session(self, sid: str, started_at: datetime, now: datetime) -> None:
        self.session = LiveSession(
            sid=sid,
            started_at=started_at,
            opened_at=now,
            last_liveness_check=now,
            verify_rule=self.rule is not None,
        )
        if self.latest_session_started_at is None or started_at > self.latest_session_started_at:
            self.latest_session_started_at = started_at

    def end_session(self) -> None:
        if self.session is None:
            return
        self._close_sid(self.session.sid)
        self.session = None
        self.sessions_ended += 1

    def _close_sid(self, sid: str) -> None:
        if sid not in self.closed_sids:
            self.closed_sids = [*self.closed_sids, sid][-CLOSED_SIDS_KEPT:]

    # --- phase --------------------------------------------------------------------------------

    @property
    def registered(self) -> bool:
        return self.phase is RoomPhase.REGISTERED

    @property
    def unregistering(self) -> bool:
        return self.phase is RoomPhase.UNREGISTERING

    # --- desired state ------------------------------------------------------------------------

    def opens_at(self, window: ScheduleWindow) -> datetime:
        """When phone access opens for `window` (its start, less the lead time)."""
        lead = self.policy.schedule_lead if self.policy else timedelta(0)
        try:
            return window.starts_at - lead
        except OverflowError:  # windows are bounded at the edge; never fail a task regardless
            return datetime.min.replace(tzinfo=UTC)

    def in_scheduled_window(self, now: datetime) -> bool:
        return any(self.opens_at(w) <= now < w.ends_at for w in self.schedule)

    @property
    def dispatch_mode(self) -> DispatchMode | None:
        """The room's own mode if it has one, else the settings'."""
        if self.overrides.dispatch_mode is not None:
            return self.overrides.dispatch_mode
        return self.policy.dispatch_mode if self.policy else None

    @property
    def numbers(self) -> list[str]:
        """The called numbers the room's rule accepts ([] = any)."""
        return list(self.overrides.numbers or [])

    @property
    def hide_phone_number(self) -> bool:
        if self.overrides.hide_phone_number is not None:
            return self.overrides.hide_phone_number
        return self.policy.hide_phone_number if self.policy else False

    def wanted_rule(self, rule_id: str) -> RuleRef | None:
        """What the room's rule should route (under `rule_id`); None without a PIN."""
        if self.pin is None:
            return None
        return RuleRef(
            rule_id=rule_id,
            pin=self.pin,
            numbers=sorted(self.numbers),
            hide_phone_number=self.hide_phone_number,
        )

    def rule_up_to_date(self) -> bool:
        """The rule LiveKit holds routes what the room wants (PIN, numbers, number hiding)."""
        return self.rule is not None and self.rule == self.wanted_rule(self.rule.rule_id)

    def rule_wanted(self, now: datetime) -> bool:
        """The dispatch rule should exist: registered and (live, `always`, or in a window)."""
        if not self.registered or self.pin is None or self.policy is None:
            return False
        return (
            self.session is not None
            or self.dispatch_mode is DispatchMode.ALWAYS
            or self.in_scheduled_window(now)
        )

    def converged(self, now: datetime) -> bool:
        """LiveKit matches the desired state and no lease waits for release."""
        if self.stray_rule_ids or self.leases_to_release:
            return False
        if self.unregistering and self.pin is not None:
            return False  # the PIN's lease is released last
        if self.rule_wanted(now):
            return self.rule_up_to_date()
        return self.rule is None

    def prune_schedule(self, now: datetime) -> None:
        self.schedule = [w for w in self.schedule if w.ends_at > now]

    def next_deadline(self, now: datetime) -> datetime | None:
        """The next moment the desired state may change without a message arriving."""
        upcoming = self._deadlines(now)
        return min(upcoming)[0] if upcoming else None

    def next_deadline_reason(self, now: datetime) -> str:
        """What `next_deadline` waits for, in words (the timer's summary in the Temporal UI)."""
        upcoming = self._deadlines(now)
        return min(upcoming)[1] if upcoming else "next message"

    def _deadlines(self, now: datetime) -> list[tuple[datetime, str]]:
        deadlines: list[tuple[datetime, str]] = []
        if self.retry_at is not None:
            deadlines.append((self.retry_at, "retry after a LiveKit error"))
        if self.session is not None and self.policy is not None:
            liveness = self.session.last_liveness_check + self.policy.liveness_interval
            deadlines.append((liveness, "check room liveness"))
            limit = self.session.opened_at + self.policy.max_session_duration
            deadlines.append((limit, "maximum session duration"))
        for window in self.schedule:
            for moment in (self.opens_at(window), window.ends_at):
                if moment > now:
                    deadlines.append((moment, "next schedule boundary"))
        return deadlines

    def session_expired(self, now: datetime) -> bool:
        return (
            self.session is not None
            and self.policy is not None
            and now >= self.session.opened_at + self.policy.max_session_duration
        )

    def liveness_check_due(self, now: datetime) -> bool:
        if self.liveness_check_pending:
            return True
        return (
            self.session is not None
            and self.policy is not None
            and now >= self.session.last_liveness_check + self.policy.liveness_interval
        )

    # --- reporting ----------------------------------------------------------------------------

    @property
    def telephony_state(self) -> TelephonyState:
        if not self.registered:  # every other phase has no phone access
            return TelephonyState.CLOSED
        return TelephonyState.OPEN if self.rule is not None else TelephonyState.IDLE

    def details(self) -> str:
        """The room at a glance, for the Temporal UI's "current details" (Markdown). Never the
        PIN: the UI shows details to anyone who can open it, codec or not."""
        lines = [f"**{self.telephony_state.value}** ({self.phase.value})"]
        if self.dispatch_mode is not None:
            lines.append(f"dispatch mode: {self.dispatch_mode.value}")
        lines.append(f"numbers: {', '.join(self.numbers) if self.numbers else 'every number'}")
        if self.hide_phone_number:
            lines.append("callers' numbers hidden from the meeting")
        if self.pin is not None:
            lines.append(f"PIN: leased ({len(self.pin)} digits), lease `{self.lease_id}`")
        if self.session is not None:
            since = self.session.started_at.isoformat(timespec="seconds")
            lines.append(f"live session: `{self.session.sid}` since {since}")
        else:
            lines.append("live session: none")
        rule = f"`{self.rule.rule_id}`" if self.rule else "none"
        lines.append(f"dispatch rule: {rule}")
        for window in self.schedule[:3]:
            start = window.starts_at.isoformat(timespec="minutes")
            end = window.ends_at.isoformat(timespec="minutes")
            lines.append(f"window: {start} → {end}")
        if len(self.schedule) > 3:
            lines.append(f"… and {len(self.schedule) - 3} more windows")
        if self.last_error is not None:
            error = self.last_error.replace(self.pin, "<PIN>") if self.pin else self.last_error
            lines.append(f"last error: {error}")
        return "\n".join(f"- {line}" for line in lines)

    def memo(self) -> RoomMemo:
        leases = [self.lease_id] if self.lease_id else []
        return RoomMemo(
            rule_id=self.rule.rule_id if self.rule else None,
            session_sid=self.session.sid if self.session else None,
            lease_ids=[*leases, *(old.lease_id for old in self.leases_to_release)],
        )

    def status(self) -> RoomStatus:
        return RoomStatus(
            room_id=self.room_id,
            registered=self.registered,
            state=self.telephony_state,
            pin=self.pin,
            rule_id=self.rule.rule_id if self.rule else None,
            session=(
                RoomSession(sid=self.session.sid, started_at=self.session.started_at)
                if self.session
                else None
            ),
            schedule=self.schedule,
            dispatch_mode=self.dispatch_mode,
            last_error=self.last_error,
            numbers=self.numbers,
            hide_phone_number=self.hide_phone_number,
        )


class RoomWorkflowInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    room_id: str
    state: RoomWorkflowState | None = None
