"""The backend HTTP API, `/api/v1`: the `TelephonyClient` over HTTP, bearer-token protected.

`GET /api/v1/config` is public (the original serves the same data to its frontend); every other
route needs `Authorization: Bearer <TELEPHONY_API_TOKEN>`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from telephony.client import TelephonyClient, TelephonyError
from webhook_gateway.authorization import bearer_problem
from webhook_gateway.bodies import read_body
from webhook_gateway.errors import ApiError, ErrorCode, from_telephony_error, unavailable
from webhook_gateway.schemas import RegisterRoomBody, RotatePinBody, SetScheduleBody

PREFIX = "/api/v1"

B = TypeVar("B", bound=BaseModel)
T = TypeVar("T")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Api:
    def __init__(
        self, client: TelephonyClient, api_token: str | None, deadline_seconds: float
    ) -> None:
        """`api_token=None` disables the token check (the insecure dev mode); past
        `deadline_seconds` of waiting on Temporal the answer is 503."""
        self._client = client
        self._deadline = deadline_seconds
        self._token = api_token.encode() if api_token is not None else None

    def add_routes(self, app: web.Application) -> None:
        rooms = f"{PREFIX}/rooms/{{room_id}}"
        app.router.add_put(rooms, self._protected(self.register_room))
        app.router.add_get(rooms, self._protected(self.get_room))
        app.router.add_delete(rooms, self._protected(self.unregister_room))
        app.router.add_post(f"{rooms}/pin/rotate", self._protected(self.rotate_pin))
        app.router.add_put(f"{rooms}/schedule", self._protected(self.set_schedule))
        app.router.add_get(f"{PREFIX}/config", self.config)

    # --- routes -------------------------------------------------------------------------------

    async def register_room(self, request: web.Request) -> web.Response:
        body = await _optional_body(request, RegisterRoomBody) or RegisterRoomBody()
        info = await self._call(
            self._client.register_room(
                _room_id(request),
                body.schedule,
                pin=body.pin,
                dispatch_mode=body.dispatch_mode,
                numbers=body.numbers,
                hide_phone_number=body.hide_phone_number,
            )
        )
        return _json(info)

    async def get_room(self, request: web.Request) -> web.Response:
        return _json(await self._call(self._client.get_room(_room_id(request))))

    async def rotate_pin(self, request: web.Request) -> web.Response:
        body = await _optional_body(request, RotatePinBody) or RotatePinBody()
        return _json(await self._call(self._client.rotate_pin(_room_id(request), pin=body.pin)))

    async def set_schedule(self, request: web.Request) -> web.Response:
        body = await _optional_body(request, SetScheduleBody)
        if body is None:
            raise ApiError(
                400, ErrorCode.INVALID_SCHEDULE, 'a JSON body {"windows": [...]} is required'
            )
        info = await self._call(self._client.set_schedule(_room_id(request), body.windows))
        return _json(info)

    async def unregister_room(self, request: web.Request) -> web.Response:
        await self._call(self._client.unregister_room(_room_id(request)))
        return web.Response(status=204)

    async def config(self, request: web.Request) -> web.Response:
        return _json(await self._call(self._client.telephony_config()))

    # --- plumbing -----------------------------------------------------------------------------

    def _protected(self, handler: Handler) -> Handler:
        async def checked(request: web.Request) -> web.StreamResponse:
            self._authenticate(request)
            return await handler(request)

        checked.__name__ = handler.__name__
        return checked

    def _authenticate(self, request: web.Request) -> None:
        if self._token is None:
            return
        problem = bearer_problem(request.headers.get("Authorization"), self._token)
        if problem is not None:
            raise _unauthorized(*problem)

    async def _call(self, call: Awaitable[T]) -> T:
        try:
            return await asyncio.wait_for(call, self._deadline)
        except TimeoutError:
            raise unavailable("Temporal did not answer in time") from None
        except TelephonyError as exc:
            raise from_telephony_error(exc) from None


# A body field that fails validation answers with its own code.
_BODY_FIELD_CODES = {
    "schedule": ErrorCode.INVALID_SCHEDULE,
    "windows": ErrorCode.INVALID_SCHEDULE,
    "pin": ErrorCode.INVALID_PIN,
}


def _unauthorized(code: ErrorCode, message: str) -> ApiError:
    return ApiError(401, code, message, {"WWW-Authenticate": 'Bearer realm="meet-telephony"'})


def _room_id(request: web.Request) -> str:
    return request.match_info["room_id"]


def _json(model: BaseModel) -> web.Response:
    return web.json_response(text=model.model_dump_json())


async def _optional_body(request: web.Request, model: type[B]) -> B | None:
    """The JSON body as `model`, or None if there is no body; 400 if it is not valid."""
    raw = await read_body(request)
    if not raw.strip():
        return None
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_input=False)
        if any(error["type"] == "json_invalid" for error in errors):
            raise ApiError(400, ErrorCode.INVALID_JSON, "the body is not valid JSON") from None
        first = errors[0]
        where = ".".join(str(part) for part in first["loc"]) or "body"
        code = _BODY_FIELD_CODES.get(str(first["loc"][0]) if first["loc"] else "")
        code = code or ErrorCode.INVALID_BODY
        raise ApiError(400, code, f"{where}: {first['msg']}") from None
