"""Pydantic models shared by every process: workflow payloads, client answers, HTTP bodies."""

from __future__ import annotations

import re
from datetime import timedelta
from enum import StrEnum

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from telephony.pins import PinLength

# Room ids travel in workflow ids, URL paths and rule attributes: a conservative subset of what
# LiveKit accepts (Meet uses UUIDs).
ROOM_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:@=+-]{0,127}$"
_ROOM_ID = re.compile(ROOM_ID_PATTERN)
MAX_SCHEDULE_WINDOWS = 50


def is_valid_room_id(room_id: str) -> bool:
    return bool(_ROOM_ID.match(room_id))


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


class RoomPolicy(Model):
    """The settings a room workflow acts on, passed in by the registering client
    (`Settings.room_policy()`).

    Workflows cannot read the environment, so the settings travel with `register` and the
    latest registration's policy wins.
    """

    enabled: bool
    pin_length: PinLength
    pin_max_retries: int = Field(ge=1)
    dispatch_mode: DispatchMode
    schedule_lead: timedelta
    liveness_interval: timedelta
    max_session_duration: timedelta


class LiveKitEventKind(StrEnum):
    STARTED = "started"
    FINISHED = "finished"
    ACTIVITY = "activity"  # participant/track events: proof that a session is live


class LiveKitEvent(Model):
    """What the webhook gateway signals to a room workflow."""

    kind: LiveKitEventKind
    room_sid: str = Field(min_length=1, max_length=128)
    event_id: str = Field(min_length=1, max_length=128)
    created_at: AwareDatetime


class RegisterRoom(Model):
    room_id: str
    policy: RoomPolicy
    schedule: list[ScheduleWindow] | None = Field(default=None, max_length=MAX_SCHEDULE_WINDOWS)
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
    numbers: list[DialInNumber]
    dispatch_mode: DispatchMode


class ManagedRule(Model):
    """A dispatch rule this service created, as listed from LiveKit."""

    rule_id: str
    room_id: str
    room_name: str
    pin: str


class EnsureRuleRequest(Model):
    room_id: str
    pin: str
    known_rule_id: str | None = None


class EnsureRuleResult(Model):
    rule_id: str
    adopted: bool  # True when an existing rule of ours was found instead of creating one


class RoomLiveness(Model):
    exists: bool
    sid: str | None = None


class PinLeaseRequest(Model):
    pin: str
    owner_workflow_id: str
    check_interval: timedelta = timedelta(minutes=10)


class ObservedRules(Model):
    """Reconciliation's view of LiveKit: the managed rule ids it found for one room."""

    rule_ids: list[str]


class ReconcileReport(Model):
    """What one reconciliation pass found and did."""

    managed_rules: int
    orphans_deleted: list[str]
    rooms_notified: list[str]
