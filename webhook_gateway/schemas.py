"""Bodies the gateway reads and writes besides `telephony.models` (which it reuses as they are)."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from telephony.models import MAX_SCHEDULE_WINDOWS, ScheduleWindow


class _Body(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class RegisterRoomBody(_Body):
    """`PUT /api/v1/rooms/{room_id}`: an optional schedule to register with (body optional)."""

    schedule: list[ScheduleWindow] | None = Field(default=None, max_length=MAX_SCHEDULE_WINDOWS)


class SetScheduleBody(_Body):
    """`PUT /api/v1/rooms/{room_id}/schedule`: the room's windows (an empty list clears them)."""

    windows: list[ScheduleWindow] = Field(max_length=MAX_SCHEDULE_WINDOWS)


class ErrorBody(_Body):
    error: str = Field(description="stable machine-readable code")
    message: str = Field(description="for people; may change")


class WebhookStatus(StrEnum):
    PROCESSED = "processed"
    IGNORED = "ignored"


class WebhookAnswer(_Body):
    status: WebhookStatus
    reason: str | None = Field(
        default=None, description="why an event was ignored (null when processed)"
    )


class HealthAnswer(_Body):
    status: str = "ok"


class ReadinessAnswer(_Body):
    status: str = Field(description="`ready` or `unavailable`")
    temporal: str = Field(description="`reachable` or why it is not")
