"""Twirp transport: JSON bodies besides protobuf, the JSON error shape, unknown routes."""

from __future__ import annotations

import json

import aiohttp
import pytest
from livekit import api

from tests.conformance.conftest import (
    Resources,
    direct_rule,
    post_json,
    token,
    unique_name,
    unique_pin,
)
from tests.fixtures.livekit import LiveKitTarget


async def test_json_request_is_answered_in_json(
    livekit_target: LiveKitTarget, resources: Resources
) -> None:
    room = await resources.room()
    tok = token(livekit_target, video=api.VideoGrants(room_list=True))
    status, content_type, body = await post_json(
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
    status, content_type, body = await post_json(
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
    status, _, body = await post_json(
        livekit_target, "/twirp/livekit.RoomService/NoSuchMethod", {}, tok
    )
    assert (status, body["code"]) == (404, "bad_route")


async def test_room_name_created_via_protobuf_is_listed(
    lk: api.LiveKitAPI, resources: Resources
) -> None:
    room = await resources.room()
    listed = await lk.room.list_rooms(api.ListRoomsRequest(names=[room.name]))
    assert [r.sid for r in listed.rooms] == [room.sid]


async def _raw(
    target: LiveKitTarget, method: str, path: str, content_type: str, body: bytes = b"{}"
) -> tuple[int, str, str]:
    tok = token(target, video=api.VideoGrants(room_list=True))
    headers = {"Content-Type": content_type, "Authorization": f"Bearer {tok}"}
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, target.url + path, data=body, headers=headers) as resp,
    ):
        return resp.status, resp.content_type, await resp.text()


LIST_ROOMS = "/twirp/livekit.RoomService/ListRooms"


@pytest.mark.parametrize(
    ("method", "path", "content_type", "msg"),
    [
        pytest.param(
            "POST",
            "/twirp/livekit.RoomService/NoSuchMethod",
            "application/json",
            'no handler for path "/twirp/livekit.RoomService/NoSuchMethod"',
            id="unknown-method",
        ),
        pytest.param(
            "POST",
            LIST_ROOMS,
            "text/plain",
            'unexpected Content-Type: "text/plain"',
            id="wrong-content-type",
        ),
        pytest.param(
            "GET",
            LIST_ROOMS,
            "application/json",
            'unsupported method "GET" (only POST is allowed)',
            id="get",
        ),
    ],
)
async def test_bad_route_message_and_meta(
    livekit_target: LiveKitTarget, method: str, path: str, content_type: str, msg: str
) -> None:
    status, _, text = await _raw(livekit_target, method, path, content_type)
    assert (status, json.loads(text)) == (
        404,
        {"code": "bad_route", "msg": msg, "meta": {"twirp_invalid_route": f"{method} {path}"}},
    )


async def test_unknown_service_is_a_plain_404(livekit_target: LiveKitTarget) -> None:
    status, content_type, text = await _raw(
        livekit_target, "POST", "/twirp/livekit.NoSuchService/ListRooms", "application/json"
    )
    assert (status, content_type, text) == (404, "text/plain", "404 page not found\n")


@pytest.mark.parametrize(
    ("content_type", "body", "msg"),
    [
        pytest.param(
            "application/json", b"{bad", "the json request could not be decoded", id="json"
        ),
        pytest.param(
            "application/protobuf",
            b"\xff\xff",
            "the protobuf request could not be decoded",
            id="protobuf",
        ),
    ],
)
async def test_undecodable_body_is_malformed(
    livekit_target: LiveKitTarget, content_type: str, body: bytes, msg: str
) -> None:
    status, _, text = await _raw(livekit_target, "POST", LIST_ROOMS, content_type, body)
    assert (status, json.loads(text)) == (400, {"code": "malformed", "msg": msg})


async def test_content_type_parameters_are_accepted(livekit_target: LiveKitTarget) -> None:
    status, content_type, _ = await _raw(
        livekit_target, "POST", LIST_ROOMS, "application/json; charset=utf-8"
    )
    assert (status, content_type) == (200, "application/json")


async def test_json_answer_emits_every_field_with_unset_messages_as_null(
    livekit_target: LiveKitTarget, resources: Resources
) -> None:
    rule = await resources.rule(direct_rule(unique_pin()))
    _, _, body = await post_json(
        livekit_target,
        "/twirp/livekit.SIP/ListSIPDispatchRule",
        {"dispatch_rule_ids": [rule.sip_dispatch_rule_id]},
        token(livekit_target, sip=api.SIPGrants(admin=True)),
    )
    items = body["items"]
    assert isinstance(items, list)
    [item] = items
    assert (item["trunk_ids"], item["name"], item["created_at"], item["room_config"]) == (
        [],
        "",
        None,
        None,
    )
