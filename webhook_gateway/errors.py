"""Error answers: `{"error": code, "message": ...}` with a status, never a stack trace."""

from __future__ import annotations

from collections.abc import Mapping

from aiohttp import web

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

__all__ = ["ApiError", "ErrorCode", "error_response", "from_telephony_error", "unavailable"]
from webhook_gateway.schemas import ErrorBody, ErrorCode

# LiveKit and backends retry after this many seconds when Temporal is unreachable.
RETRY_AFTER_SECONDS = 5

_STATUS_BY_ERROR: dict[type[TelephonyError], int] = {
    InvalidRoomId: 400,
    InvalidSchedule: 400,
    InvalidPin: 400,
    InvalidNumbers: 400,
    RoomNotRegistered: 404,
    TelephonyDisabled: 409,
    PinSpaceExhausted: 409,
    PinTaken: 409,
    PinConflict: 409,
    TelephonyUnavailable: 503,
}
# Temporal answered, but with something the client could not classify (a workflow bug, a refused
# call): not the caller's fault and not known to be transient.
UPSTREAM_ERROR_STATUS = 502


class ApiError(Exception):
    """Raised by handlers; the error middleware turns it into the JSON error answer."""

    def __init__(
        self,
        status: int,
        code: ErrorCode,
        message: str,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})

    def response(self) -> web.Response:
        return error_response(self.status, self.code, self.message, self.headers)


def error_response(
    status: int, code: ErrorCode, message: str, headers: Mapping[str, str] | None = None
) -> web.Response:
    body = ErrorBody(error=code, message=message).model_dump_json()
    return web.Response(status=status, text=body, content_type="application/json", headers=headers)


def unavailable(message: str, code: ErrorCode = ErrorCode.TEMPORAL_UNAVAILABLE) -> ApiError:
    return ApiError(503, code, message, {"Retry-After": str(RETRY_AFTER_SECONDS)})


def from_telephony_error(exc: TelephonyError) -> ApiError:
    """The HTTP form of a `TelephonyClient` error."""
    status = next(
        (code for kind, code in _STATUS_BY_ERROR.items() if isinstance(exc, kind)),
        UPSTREAM_ERROR_STATUS,
    )
    if status == 503:
        return unavailable(str(exc), ErrorCode(exc.code))
    return ApiError(status, ErrorCode(exc.code), str(exc))
