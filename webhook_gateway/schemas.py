"""Bodies the gateway reads and writes besides `telephony.models` (which it reuses as they are)."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from telephony.client import (
    InvalidNumbers,
    InvalidPin,
    InvalidRoomId,
    InvalidSchedule,
    PinConflict,
    PinSpaceExhausted,
    PinTaken,
    RoomNotRegistered,
    TelephonyDisabled,
    TelephonyError,
    TelephonyUnavailable,
)
from telephony.models import (
    MAX_ROOM_NUMBERS,
    MAX_SCHEDULE_WINDOWS,
    DispatchMode,
    ScheduleWindow,
)


class ErrorCode(StrEnum):
    """Every `error` the gateway answers with (the OpenAPI document lists these)."""

    # request shape
    BAD_REQUEST = "bad_request"
    HEADER_TOO_LARGE = "header_too_large"
    INVALID_JSON = "invalid_json"
    INVALID_BODY = "invalid_body"
    BODY_TOO_LARGE = "body_too_large"
    NOT_FOUND = "not_found"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    # API token and codec
    MISSING_TOKEN = "missing_token"  # noqa: S105 - an error code, not a secret
    INVALID_TOKEN = "invalid_token"  # noqa: S105 - an error code, not a secret
    ORIGIN_NOT_ALLOWED = "origin_not_allowed"
    UNDECODABLE_PAYLOAD = "undecodable_payload"
    # LiveKit webhooks
    MISSING_SIGNATURE = "missing_signature"
    BAD_SIGNATURE = "bad_signature"
    EXPIRED_SIGNATURE = "expired_signature"
    BODY_MISMATCH = "body_mismatch"
    MALFORMED_WEBHOOK = "malformed_webhook"
    # rooms (the `TelephonyClient` errors' codes)
    INVALID_ROOM_ID = InvalidRoomId.code
    INVALID_SCHEDULE = InvalidSchedule.code
    INVALID_PIN = InvalidPin.code
    INVALID_NUMBERS = InvalidNumbers.code
    NOT_REGISTERED = RoomNotRegistered.code
    TELEPHONY_DISABLED = TelephonyDisabled.code
    PIN_SPACE_EXHAUSTED = PinSpaceExhausted.code
    PIN_TAKEN = PinTaken.code
    PIN_CONFLICT = PinConflict.code
    TEMPORAL_UNAVAILABLE = TelephonyUnavailable.code
    UPSTREAM_ERROR = TelephonyError.code
    INTERNAL_ERROR = "internal_error"


class _Body(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


_REQUESTED_PIN = Field(
    default=None,
    max_length=40,
    description="a PIN the room already has (4-16 digits; spaces and dashes are ignored): "
    "adopted if free, else 409 `pin_taken`",
)


class RegisterRoomBody(_Body):
    """`PUT /api/v1/rooms/{room_id}`: an optional schedule, PIN and phone policy to register
    with (body optional). A field left out keeps what the room has."""

    schedule: list[ScheduleWindow] | None = Field(default=None, max_length=MAX_SCHEDULE_WINDOWS)
    pin: str | None = _REQUESTED_PIN
    dispatch_mode: DispatchMode | None = Field(
        default=None,
        description="when the room's rule exists: `while_active` (a meeting is live) or "
        "`always` (while registered); default ROOM_TELEPHONY_DISPATCH_MODE",
    )
    numbers: list[Annotated[str, Field(max_length=32)]] | None = Field(
        default=None,
        max_length=MAX_ROOM_NUMBERS,
        description="the dial-in numbers this room answers on, some of the configured ones "
        "(any format); its dial-in info lists only these. `[]`: every number (the default)",
    )
    hide_phone_number: bool | None = Field(
        default=None,
        description="hide callers' numbers from the meeting; default "
        "ROOM_TELEPHONY_HIDE_PHONE_NUMBER",
    )


class RotatePinBody(_Body):
    """`POST /api/v1/rooms/{room_id}/pin/rotate`: the PIN to rotate to (body optional: without
    one, a new PIN is drawn)."""

    pin: str | None = _REQUESTED_PIN


class SetScheduleBody(_Body):
    """`PUT /api/v1/rooms/{room_id}/schedule`: the room's windows (an empty list clears them)."""

    windows: list[ScheduleWindow] = Field(max_length=MAX_SCHEDULE_WINDOWS)


class ErrorBody(_Body):
    error: ErrorCode = Field(description="stable machine-readable code")
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
