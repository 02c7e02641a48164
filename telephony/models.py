"""Pydantic models shared by every process: workflow payloads, client answers, HTTP bodies."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

from telephony.contracts import SENTINEL_ROOM_ID
from telephony.pins import PinLength

# Room ids travel in workflow ids, URL paths and rule attributes: a conservative subset of what
# LiveKit accepts (Meet uses UUIDs).
ROOM_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:@=+-]{0,127}$"
_ROOM_ID = re.compile(ROOM_ID_PATTERN)
MAX_SCHEDULE_WINDOWS = 50


def is_valid_room_id(room_id: str) -> bool:
    return bool(_ROOM_ID.match(room_id)) and room_id != SENTINEL_ROOM_ID


# Upper bounds of the durations a room acts on (settings refuse more): large enough for any real
# use, small enough that workflow date arithmetic never overflows.
MAX_SCHEDULE_LEAD = timedelta(days=7)
MAX_LIVENESS_INTERVAL = timedelta(days=1)
MAX_SESSION_DURATION = timedelta(days=31)


class Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class DispatchMode(StrEnum):
    """When a room's dispatch rule exists (besides scheduled windows)."""

    WHILE_ACTIVE = "while_active"
    ALWAYS = "always"


class TelephonyState(StrEnum):
    """Search attribute `TelephonyState` and the `state` of dial-in info."""

    IDLE = "idle"  # registered, no dispatch rule: callers are refused
    OPEN = "open"  # the dispatch rule exists: callers with the PIN get in
    CLOSED = "closed"  # unregistered: the room has no phone access any more


class ScheduleWindow(Model):
    """A meeting slot: phone access opens `ROOM_TELEPHONY_SCHEDULE_LEAD` before `starts_at`."""

    starts_at: AwareDatetime
    ends_at: AwareDatetime

    @model_validator(mode="after")
    def _ordered(self) -> ScheduleWindow:
        if self.ends_at <= self.starts_at:
            raise ValueError("ends_at must be after starts_at")
        return self


class Schedule(Model):
    windows: list[ScheduleWindow] = Field(default_factory=list, max_length=MAX_SCHEDULE_WINDOWS)


# How far from now a window may lie: anything else is a mistake (or an attack), refused at the
# edge and again by the workflow's validators, so that no date arithmetic can overflow there.
SCHEDULE_PAST_LIMIT = timedelta(days=1)
SCHEDULE_FUTURE_LIMIT = timedelta(days=731)


def schedule_problem(windows: list[ScheduleWindow], now: datetime) -> str | None:
    """Why these windows cannot be a room's schedule at `now`, or None."""
    earliest, latest = now - SCHEDULE_PAST_LIMIT, now + SCHEDULE_FUTURE_LIMIT
    for index, window in enumerate(windows):
        if window.starts_at < earliest or window.ends_at > latest:
            return (
                f"window {index}: windows must lie between now - 1 day and now + 2 years "
                f"({earliest.isoformat(timespec='seconds')} to "
                f"{latest.isoformat(timespec='seconds')})"
            )
    return None


class RoomPolicy(Model):
    """The settings a room workflow acts on, passed in by the registering client
    (`Settings.room_policy()`).

    Workflows cannot read the environment, so the settings travel with `register` and the
    latest registration's policy wins.
    """

    enabled: bool
    pin_length: PinLength
    pin_max_retries: int = Field(ge=1, le=100)
    dispatch_mode: DispatchMode
    schedule_lead: timedelta = Field(ge=timedelta(0), le=MAX_SCHEDULE_LEAD)
    liveness_interval: timedelta = Field(gt=timedelta(0), le=MAX_LIVENESS_INTERVAL)
    max_session_duration: timedelta = Field(gt=timedelta(0), le=MAX_SESSION_DURATION)
    hide_phone_number: bool = False


# Numbers travel as E.164 (`+` and up to 15 digits); the client checks they are configured ones.
E164_PATTERN = r"^\+[1-9][0-9]{1,14}$"
MAX_ROOM_NUMBERS = 20


class RoomOverrides(Model):
    """A room's own phone policy, over the settings' defaults. A field left out (None) keeps
    what the room has (for a new room: the default)."""

    dispatch_mode: DispatchMode | None = None
    # Calls to these numbers only (LiveKit's rule `numbers`), and only these in its dial-in
    # info; [] = every number (no restriction).
    numbers: list[Annotated[str, Field(pattern=E164_PATTERN)]] | None = Field(
        default=None, max_length=MAX_ROOM_NUMBERS
    )
    hide_phone_number: bool | None = None

    def over(self, current: RoomOverrides) -> RoomOverrides:
        """These overrides applied on top of `current` (the fields given replace)."""
        return RoomOverrides(
            dispatch_mode=self.dispatch_mode or current.dispatch_mode,
            numbers=self.numbers if self.numbers is not None else current.numbers,
            hide_phone_number=(
                self.hide_phone_number
                if self.hide_phone_number is not None
                else current.hide_phone_number
            ),
        )


class LiveKitEventKind(StrEnum):
    STARTED = "started"
    FINISHED = "finished"
    ACTIVITY = "activity"  # participant/track events: proof that a session is live


def incarnation_time(creation_time_ms: int, creation_time: int) -> datetime | None:
    """When LiveKit created a room incarnation, from its `Room` fields (milliseconds when given,
    else seconds); None when neither is usable."""
    try:
        if creation_time_ms > 0:
            return datetime.fromtimestamp(creation_time_ms / 1000, UTC)
        if creation_time > 0:
            return datetime.fromtimestamp(creation_time, UTC)
    except (OverflowError, OSError, ValueError):
        pass
    return None


class LiveKitEvent(Model):
    """What the webhook gateway signals to a room workflow."""

    kind: LiveKitEventKind
    room_sid: str = Field(min_length=1, max_length=128)
    event_id: str = Field(min_length=1, max_length=128)
    created_at: AwareDatetime
    # When LiveKit created this incarnation of the room (`room.creation_time_ms`): the same on
    # every event of one incarnation, so it orders incarnations even within one second
    # (`created_at` has second precision). None when the sender did not know it.
    room_created_at: AwareDatetime | None = None

    @property
    def incarnation_started_at(self) -> datetime:
        return self.room_created_at or self.created_at


class RegisterRoom(Model):
    room_id: str
    policy: RoomPolicy
    overrides: RoomOverrides = Field(default_factory=RoomOverrides)
    schedule: list[ScheduleWindow] | None = Field(default=None, max_length=MAX_SCHEDULE_WINDOWS)
    # A PIN the room already has elsewhere (e.g. Meet's `pin_code`): adopted if free.
    pin: str | None = None
    # Test seam: continue-as-new once the run's history is this long (default: when Temporal
    # suggests it). Not exposed by the client or the HTTP API.
    history_event_threshold: int | None = Field(default=None, ge=10)


class RoomSession(Model):
    sid: str
    started_at: AwareDatetime


class RoomStatus(Model):
    """The room workflow's answer to `status` and to its updates."""

    room_id: str
    registered: bool
    state: TelephonyState
    pin: str | None
    rule_id: str | None
    session: RoomSession | None
    schedule: list[ScheduleWindow]
    dispatch_mode: DispatchMode | None
    last_error: str | None = None
    numbers: list[str] = Field(default_factory=list)  # the room's own numbers; [] = every one
    hide_phone_number: bool = False


class RoomListing(Model):
    """One registered room as Temporal visibility lists it (no PIN: visibility never holds one)."""

    room_id: str
    state: TelephonyState | None
    workflow_id: str
    started_at: AwareDatetime | None


class DialInNumber(Model):
    e164: str
    international: str
    national: str
    region: str | None
    tel_uri: str


class DialInInfo(Model):
    """What an invitation needs. Built at read time from the PIN and the current configuration."""

    room_id: str
    pin: str
    pin_display: str
    state: TelephonyState
    numbers: list[DialInNumber]
    schedule: list[ScheduleWindow]


class TelephonyConfig(Model):
    """Public telephony configuration, as the original exposes it to its frontend."""

    enabled: bool
    default_country: str
    # What Meet's frontend reads (`telephony.international_phone_number`): the first number,
    # in international format; None when there is none.
    international_phone_number: str | None
    numbers: list[DialInNumber]
    dispatch_mode: DispatchMode


class ManagedRule(Model):
    """A dispatch rule this service created, as listed from LiveKit."""

    rule_id: str
    room_id: str
    room_name: str
    pin: str


class EnsureRuleRequest(Model):
    """Make LiveKit hold a rule routing `pin` to `room_id`, for calls to `numbers` ([] = any),
    hiding callers' numbers or not (None: the worker's ROOM_TELEPHONY_HIDE_PHONE_NUMBER).

    With `known_rule_id` (the room's rule with this PIN), that rule is kept if it matches, or
    replaced in place if only its numbers or number hiding differ: no moment without a rule."""

    room_id: str
    pin: str
    numbers: list[str] = Field(default_factory=list)
    hide_phone_number: bool | None = None
    known_rule_id: str | None = None


class EnsureRuleResult(Model):
    rule_id: str
    adopted: bool  # True when an existing rule of ours was found instead of creating one


class RoomLiveness(Model):
    exists: bool
    sid: str | None = None
    created_at: AwareDatetime | None = None  # LiveKit's `creation_time_ms` of that incarnation


class PinLeaseRequest(Model):
    """The input of a PIN lease workflow: only its owner (the PIN is in nothing but its id)."""

    owner_workflow_id: str


class LeasePinRequest(Model):
    """Lease a PIN for `owner_room_id`: draw one of `pin_length` digits (up to `max_draws`
    times), or take `requested_pin` if it is free or already this room's."""

    owner_room_id: str
    pin_length: PinLength
    max_draws: int = Field(ge=1)
    requested_pin: str | None = None


class RotatePin(Model):
    """Rotate to `pin` if given (and free), else to a newly drawn PIN."""

    pin: str | None = None


class LeasedPin(Model):
    pin: str
    lease_id: str  # the lease workflow's id


class RoomMemo(Model):
    """What a room workflow publishes in its memo, read by reconciliation without waking it
    (describe and visibility return it). Never the PIN."""

    rule_id: str | None = None
    session_sid: str | None = None
    lease_ids: list[str] = Field(default_factory=list)


class ObservedRules(Model):
    """Reconciliation's view of LiveKit: the managed rule ids it found for one room."""

    rule_ids: list[str]


class ReconcileStage(StrEnum):
    """The passes of one reconciliation, in order (docs/ARCHITECTURE.md, "Reconciliation")."""

    SENTINEL = "sentinel"  # the sentinel rule and its PIN's lease: ensured (one page)
    RULES = "rules"  # LiveKit's managed rules: orphans deleted, rooms told of a difference
    ROOMS = "rooms"  # rooms that believe they hold a rule: told when LiveKit has lost it
    SESSIONS = "sessions"  # LiveKit's open rooms: registered rooms told they are live
    LEASES = "leases"  # running PIN leases: those no room holds any more released


REPORT_SAMPLE_SIZE = 20


class ReconcileReport(Model):
    """What a reconciliation pass found and did: counts, and a bounded sample of ids (so the
    report stays small whatever the number of rooms)."""

    managed_rules: int = 0
    orphans_deleted: int = 0
    rooms_notified: int = 0
    sessions_repaired: int = 0
    leases_checked: int = 0
    leases_released: int = 0
    pages: int = 0
    runs: int = 1
    sentinel_rule_id: str | None = None  # the sentinel rule LiveKit holds (None: disabled)
    orphan_sample: list[str] = Field(default_factory=list)  # deleted rule ids
    notified_sample: list[str] = Field(default_factory=list)  # rooms told of their rules
    repaired_sample: list[str] = Field(default_factory=list)  # rooms told they are live
    released_sample: list[str] = Field(default_factory=list)  # released lease ids

    @field_validator("orphan_sample", "notified_sample", "repaired_sample", "released_sample")
    @classmethod
    def _bounded(cls, ids: list[str]) -> list[str]:
        return ids[:REPORT_SAMPLE_SIZE]

    def merged(self, page: ReconcileReport) -> ReconcileReport:
        return ReconcileReport(
            managed_rules=self.managed_rules + page.managed_rules,
            orphans_deleted=self.orphans_deleted + page.orphans_deleted,
            rooms_notified=self.rooms_notified + page.rooms_notified,
            sessions_repaired=self.sessions_repaired + page.sessions_repaired,
            leases_checked=self.leases_checked + page.leases_checked,
            leases_released=self.leases_released + page.leases_released,
            pages=self.pages + page.pages,
            runs=self.runs,
            sentinel_rule_id=page.sentinel_rule_id or self.sentinel_rule_id,
            orphan_sample=self.orphan_sample + page.orphan_sample,
            notified_sample=self.notified_sample + page.notified_sample,
            repaired_sample=self.repaired_sample + page.repaired_sample,
            released_sample=self.released_sample + page.released_sample,
        )


class ReconcileInput(Model):
    """`ReconcileWorkflow`'s input, and what it carries through continue-as-new."""

    page_size: int = Field(default=1000, ge=1, le=10_000)
    pages_per_run: int = Field(default=100, ge=1)
    stage: ReconcileStage = ReconcileStage.SENTINEL
    cursor: str = ""  # where the stage resumes: a rule id, a visibility page token, a room name
    report: ReconcileReport = Field(default_factory=ReconcileReport)


class ReconcilePageRequest(Model):
    cursor: str
    page_size: int = Field(ge=1)


class ReconcilePage(Model):
    """One page of a stage: what it did, and where the next page starts (None: stage done)."""

    report: ReconcileReport
    next_cursor: str | None
