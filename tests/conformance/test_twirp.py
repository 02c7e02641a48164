"""Twirp transport: JSON bodies besides protobuf, the JSON error shape, unknown routes."""

from __future__ import annotations

import json

import aiohttp
from livekit import api

from tests.conformance.conftest import Resources, token, unique_name
from tests.fixtures.livekit import LiveKitTarget


async def _post_json(
    target: LiveKitTarget, path: str, body: dict[str, object], tok: str
) -> tuple[int, str, dict[str, object]]:
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            target.url + path,
            data=json.dumps(body),
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {tok}"},
        ) as resp,
    ):
        return resp.status, resp.content_type, json.loads(await resp.text())


async def test_json_request_is_answered_in_json(
    livekit_target: LiveKitTarget, resources: Resources
) -> None:
    room = await resources.room()
    tok = token(livekit_target, video=api.VideoGrants(room_list=True))
    status, content_type, body = await _post_json(
        livekit_target, "/twirp/livekit.RoomService/ListRooms", {"names": [room.name]}, tok
    )
    assert (status, content_type) == (200, "application/json")
    rooms = body["rooms"]
    assert isinstance(rooms, list)
    assert [(r["name"], r["sid"]) for r in rooms] == [(room.name, room.sid)]


async def test_twirp_error_is_json_code_and_msg_with_http_status(
    livekit_target: LiveKitTarget,
) -> None:
    tok = token(livekit_target, sip=api.SIPGrants(admin=True))
    status, content_type, body = await _post_json(
        livekit_target,
        "/twirp/livekit.SIP/DeleteSIPDispatchRule",
        {"sip_dispatch_rule_id": "SDR_" + unique_name("missing")},
        tok,
    )
    assert (status, content_type) == (404, "application/json")
    assert body["code"] == "not_found"
    assert isinstance(body["msg"], str) and body["msg"]


async def test_unknown_method_is_bad_route_404(livekit_target: LiveKitTarget) -> None:
    tok = token(livekit_target, video=api.VideoGrants(room_list=True))
    status, _, body = await _post_json(
        livekit_target, "/twirp/livekit.RoomService/NoSuchMethod", {}, tok
    )
    assert (status, body["code"]) == (404, "bad_route")


async def test_room_name_created_via_protobuf_is_listed(
    lk: api.LiveKitAPI, resources: Resources
) -> None:
    room = await resources.room()
    listed = await lk.room.list_rooms(api.ListRoomsRequest(names=[room.name]))
    assert [r.sid for r in listed.rooms] == [room.sid]
