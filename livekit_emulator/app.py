"""The aiohttp application: Twirp endpoints behind LiveKit-style auth, plus dev-only
`/_emulator/` routes (no auth) to drive calls, participants and faults.

The routes see the emulator only through `Backend`, so this module does not import the one that
builds the application (`emulator.py`): no import cycle."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from aiohttp import web
from livekit.protocol.models import ParticipantInfo, Room

from . import auth, twirp
from .api import Method
from .calls import CallResult
from .faults import Faults
from .twirp import TwirpError

log = logging.getLogger("livekit_emulator")


class Backend(Protocol):
    """What the routes need from the emulator (`LiveKitEmulator` is one)."""

    @property
    def faults(self) -> Faults: ...
    @property
    def keys(self) -> Mapping[str, str]: ...
    @property
    def services(self) -> frozenset[str]: ...
    @property
    def methods(self) -> Mapping[tuple[str, str], Method]: ...
    @property
    def webhook_deliveries(self) -> list[tuple[str, str, str]]: ...
    @property
    def webhook_failures(self) -> list[tuple[str, str, str]]: ...

    def state(self) -> dict[str, Any]: ...
    def rooms(self) -> list[Room]: ...
    async def create_inbound_trunk(self, numbers: Sequence[str], name: str = "") -> str: ...
    async def create_room(self, name: str, empty_timeout: float | None = None) -> Room: ...
    async def delete_room(self, name: str) -> None: ...
    async def join_participant(
        self, room: str, identity: str, name: str = ""
    ) -> ParticipantInfo: ...
    async def leave_participant(self, room: str, identity: str) -> None: ...
    async def simulate_call(
        self,
        pin: str,
        *,
        number: str | None = None,
        trunk_id: str | None = None,
        caller: str = ...,
    ) -> CallResult: ...


EMULATOR_KEY: web.AppKey[Backend] = web.AppKey("emulator")

# Fault actions reachable over HTTP, each the Faults method of the same name.
FAULT_ACTIONS = frozenset(
    {
        "fail_next",
        "apply_then_fail",
        "set_latency",
        "drop_webhooks",
        "duplicate_webhooks",
        "delay_webhooks",
        "reorder_webhooks",
    }
)


def build_app(emu: Backend) -> web.Application:
    app = web.Application()
    app[EMULATOR_KEY] = emu
    app.router.add_get("/", _health)
    app.router.add_route("*", "/twirp/{service}/{method}", _twirp)
    app.router.add_get("/_emulator/state", _state)
    app.router.add_post("/_emulator/trunks", _create_trunk)
    app.router.add_post("/_emulator/calls", _call)
    app.router.add_get("/_emulator/rooms", _list_rooms)
    app.router.add_post("/_emulator/rooms", _create_room)
    app.router.add_delete("/_emulator/rooms/{room}", _delete_room)
    app.router.add_post("/_emulator/rooms/{room}/participants", _join)
    app.router.add_delete("/_emulator/rooms/{room}/participants/{identity}", _leave)
    app.router.add_get("/_emulator/webhooks", _webhooks)
    app.router.add_get("/_emulator/faults", _get_faults)
    app.router.add_delete("/_emulator/faults", _clear_faults)
    app.router.add_post("/_emulator/faults/{action}", _add_fault)
    return app


async def _health(_request: web.Request) -> web.Response:
    # LiveKit answers its root path with "OK"; handy as a readiness probe.
    return web.Response(text="OK")


# --- Twirp --------------------------------------------------------------------------------------
async def _twirp(request: web.Request) -> web.StreamResponse:
    emu = request.app[EMULATOR_KEY]
    service, method = request.match_info["service"], request.match_info["method"]
    started = time.monotonic()
    response = await _serve_twirp(emu, request, service, method)
    # One line per call; the token and secret never appear.
    log.info(
        "%s/%s %d %.1fms", service, method, response.status, (time.monotonic() - started) * 1000
    )
    return response


async def _serve_twirp(
    emu: Backend, request: web.Request, service: str, method: str
) -> web.Response:
    latency = emu.faults.latency_for(method)
    if latency > 0:
        await asyncio.sleep(latency)
    try:
        # LiveKit's HTTP middleware runs before Twirp: a bad token is a plain-text 401.
        grants = auth.authenticate(
            request.headers.get("Authorization"), emu.keys, request.query.get("access_token")
        )
    except auth.AuthRejected as exc:
        # Written as is by Go (no newline); the content type is Go's sniffed one.
        return web.Response(status=401, text=str(exc), content_type="text/plain", charset="utf-8")
    if service not in emu.services:
        # No Twirp server is mounted there: Go's mux answers.
        return web.Response(
            status=404, text="404 page not found\n", content_type="text/plain", charset="utf-8"
        )
    try:
        if request.method != "POST":
            raise twirp.bad_route(
                request, f"unsupported method {json.dumps(request.method)} (only POST is allowed)"
            )
        handler = emu.methods.get((service, method))
        if handler is None:
            raise twirp.bad_route(request, f"no handler for path {json.dumps(request.path)}")
        encoding = twirp.encoding_of(request)
        message = twirp.decode(await request.read(), encoding, handler.request_type)
        handler.authorize(grants, message)
        fault = emu.faults.take_call_fault(method)
        if fault is not None and not fault.apply_first:
            raise TwirpError(fault.code, f"emulated fault: {fault.code}")
        result = handler.handle(message)
        if fault is not None:
            # The change is kept; only the answer is lost.
            raise TwirpError(fault.code, "emulated fault: response lost after apply")
        return twirp.encode(result, encoding)
    except TwirpError as exc:
        return exc.response()


# --- /_emulator/ ----------------------------------------------------------------------------------
def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, dumps=lambda d: json.dumps(d, indent=2))


def _error(status: int, message: str) -> web.Response:
    return _json({"error": message}, status=status)


async def _body(request: web.Request) -> dict[str, Any]:
    if not request.can_read_body:
        return {}
    data = await request.json()
    if not isinstance(data, dict):
        raise web.HTTPBadRequest(text='{"error": "body must be a JSON object"}')
    return data


async def _state(request: web.Request) -> web.Response:
    return _json(request.app[EMULATOR_KEY].state())


async def _create_trunk(request: web.Request) -> web.Response:
    body = await _body(request)
    numbers = body.get("numbers") or []
    try:
        trunk_id = await request.app[EMULATOR_KEY].create_inbound_trunk(
            numbers=list(numbers), name=str(body.get("name", ""))
        )
    except TwirpError as exc:
        return _error(exc.status, exc.msg)
    return _json({"sip_trunk_id": trunk_id}, status=201)


async def _call(request: web.Request) -> web.Response:
    body = await _body(request)
    kwargs: dict[str, Any] = {
        key: str(body[key]) for key in ("number", "trunk_id", "caller") if body.get(key)
    }
    if "number" not in kwargs and "trunk_id" not in kwargs:
        return _error(400, "a call needs `number` or `trunk_id`")
    result = await request.app[EMULATOR_KEY].simulate_call(str(body.get("pin", "")), **kwargs)
    return _json(result.as_dict())


def _room(room: Room) -> dict[str, Any]:
    return {
        "name": room.name,
        "sid": room.sid,
        "num_participants": room.num_participants,
        "creation_time_ms": room.creation_time_ms,
    }


async def _list_rooms(request: web.Request) -> web.Response:
    return _json({"rooms": [_room(r) for r in request.app[EMULATOR_KEY].rooms()]})


async def _create_room(request: web.Request) -> web.Response:
    body = await _body(request)
    timeout = body.get("empty_timeout")
    try:
        room = await request.app[EMULATOR_KEY].create_room(
            str(body.get("name", "")), empty_timeout=float(timeout) if timeout else None
        )
    except TwirpError as exc:
        return _error(exc.status, exc.msg)
    return _json(_room(room), status=201)


async def _delete_room(request: web.Request) -> web.Response:
    try:
        await request.app[EMULATOR_KEY].delete_room(request.match_info["room"])
    except TwirpError as exc:
        return _error(exc.status, exc.msg)
    return web.Response(status=204)


async def _join(request: web.Request) -> web.Response:
    body = await _body(request)
    identity = str(body.get("identity", ""))
    if not identity:
        return _error(400, "`identity` is required")
    participant = await request.app[EMULATOR_KEY].join_participant(
        request.match_info["room"], identity, name=str(body.get("name", ""))
    )
    return _json({"identity": participant.identity, "sid": participant.sid}, status=201)


async def _leave(request: web.Request) -> web.Response:
    try:
        await request.app[EMULATOR_KEY].leave_participant(
            request.match_info["room"], request.match_info["identity"]
        )
    except KeyError as exc:
        return _error(404, str(exc.args[0]))
    return web.Response(status=204)


async def _webhooks(request: web.Request) -> web.Response:
    emu = request.app[EMULATOR_KEY]
    return _json(
        {
            "deliveries": [list(d) for d in emu.webhook_deliveries],
            "failures": [list(f) for f in emu.webhook_failures],
        }
    )


async def _get_faults(request: web.Request) -> web.Response:
    return _json(request.app[EMULATOR_KEY].faults.snapshot())


async def _clear_faults(request: web.Request) -> web.Response:
    request.app[EMULATOR_KEY].faults.clear()
    return web.Response(status=204)


async def _add_fault(request: web.Request) -> web.Response:
    action = request.match_info["action"]
    if action not in FAULT_ACTIONS:
        return _error(404, f"unknown fault {action!r}; one of {sorted(FAULT_ACTIONS)}")
    faults = request.app[EMULATOR_KEY].faults
    try:
        getattr(faults, action)(**await _body(request))
    except (TypeError, ValueError) as exc:
        return _error(400, str(exc))
    return _json(faults.snapshot())
