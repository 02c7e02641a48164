"""Authentication: what the HTTP middleware refuses (plain-text 401) versus what a handler
refuses for a missing grant (Twirp `unauthenticated`)."""

from __future__ import annotations

import datetime
import json

import aiohttp
import jwt
import pytest
from livekit import api
from livekit.protocol.sip import ListSIPDispatchRuleRequest

from tests.conformance.conftest import token, unique_name
from tests.fixtures.livekit import LiveKitTarget

LIST_ROOMS = "/twirp/livekit.RoomService/ListRooms"


async def _list_rooms_with(target: LiveKitTarget, tok: str) -> None:
    async with api.LiveKitAPI(target.url, token=tok) as client:
        await client.room.list_rooms(api.ListRoomsRequest())


async def _raw_post(
    target: LiveKitTarget, path: str, headers: dict[str, str], body: str = "{}"
) -> tuple[int, str, str]:
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            target.url + path, data=body, headers={"Content-Type": "application/json", **headers}
        ) as resp,
    ):
        return resp.status, resp.content_type, await resp.text()


async def test_wrong_secret_is_http_401_code_unknown(livekit_target: LiveKitTarget) -> None:
    async with api.LiveKitAPI(
        livekit_target.url, livekit_target.api_key, "not-the-secret-0123456789abcdef0123"
    ) as client:
        with pytest.raises(api.TwirpError) as err:
            await client.room.list_rooms(api.ListRoomsRequest())
    assert (err.value.status, err.value.code) == (401, "unknown")


async def test_unknown_api_key_is_http_401_code_unknown(livekit_target: LiveKitTarget) -> None:
    tok = token(
        livekit_target, video=api.VideoGrants(room_list=True), key=unique_name("no-such-key")
    )
    with pytest.raises(api.TwirpError) as err:
        await _list_rooms_with(livekit_target, tok)
    assert (err.value.status, err.value.code) == (401, "unknown")


async def test_expired_token_is_http_401_code_unknown(livekit_target: LiveKitTarget) -> None:
    # Well past the one-minute leeway LiveKit allows on exp.
    tok = token(
        livekit_target,
        video=api.VideoGrants(room_list=True),
        ttl=datetime.timedelta(hours=-1),
    )
    with pytest.raises(api.TwirpError) as err:
        await _list_rooms_with(livekit_target, tok)
    assert (err.value.status, err.value.code) == (401, "unknown")


async def test_bad_token_answer_is_plain_text_not_twirp_json(
    livekit_target: LiveKitTarget,
) -> None:
    status, content_type, body = await _raw_post(
        livekit_target, LIST_ROOMS, {"Authorization": "Bearer not-a-jwt"}
    )
    assert status == 401
    assert content_type == "text/plain"
    with pytest.raises(json.JSONDecodeError):
        json.loads(body)


async def test_header_without_bearer_prefix_is_plain_http_401(
    livekit_target: LiveKitTarget,
) -> None:
    valid = token(livekit_target, video=api.VideoGrants(room_list=True))
    status, content_type, _ = await _raw_post(livekit_target, LIST_ROOMS, {"Authorization": valid})
    assert (status, content_type) == (401, "text/plain")


async def test_missing_authorization_header_is_twirp_unauthenticated(
    livekit_target: LiveKitTarget,
) -> None:
    status, content_type, body = await _raw_post(livekit_target, LIST_ROOMS, {})
    assert (status, content_type) == (401, "application/json")
    error = json.loads(body)
    assert (error["code"], error["msg"]) == ("unauthenticated", "permissions denied")


async def test_token_without_sip_admin_is_unauthenticated(livekit_target: LiveKitTarget) -> None:
    tok = token(livekit_target, video=api.VideoGrants(room_list=True, room_create=True))
    async with api.LiveKitAPI(livekit_target.url, token=tok) as client:
        with pytest.raises(api.TwirpError) as err:
            await client.sip.list_dispatch_rule(ListSIPDispatchRuleRequest())
    assert (err.value.status, err.value.code, err.value.message) == (
        401,
        "unauthenticated",
        "permissions denied",
    )


async def test_token_without_room_list_cannot_list_rooms(livekit_target: LiveKitTarget) -> None:
    tok = token(livekit_target, sip=api.SIPGrants(admin=True))
    with pytest.raises(api.TwirpError) as err:
        await _list_rooms_with(livekit_target, tok)
    assert (err.value.status, err.value.code) == (401, "unauthenticated")


async def test_token_without_room_create_cannot_create_room(
    livekit_target: LiveKitTarget,
) -> None:
    tok = token(livekit_target, video=api.VideoGrants(room_list=True))
    async with api.LiveKitAPI(livekit_target.url, token=tok) as client:
        with pytest.raises(api.TwirpError) as err:
            await client.room.create_room(api.CreateRoomRequest(name=unique_name()))
    assert (err.value.status, err.value.code) == (401, "unauthenticated")


async def test_token_without_room_create_cannot_delete_room(
    livekit_target: LiveKitTarget,
) -> None:
    tok = token(livekit_target, video=api.VideoGrants(room_list=True))
    async with api.LiveKitAPI(livekit_target.url, token=tok) as client:
        with pytest.raises(api.TwirpError) as err:
            await client.room.delete_room(api.DeleteRoomRequest(room=unique_name()))
    assert (err.value.status, err.value.code) == (401, "unauthenticated")


async def test_room_admin_for_another_room_cannot_list_participants(
    livekit_target: LiveKitTarget,
) -> None:
    tok = token(livekit_target, video=api.VideoGrants(room_admin=True, room=unique_name()))
    async with api.LiveKitAPI(livekit_target.url, token=tok) as client:
        with pytest.raises(api.TwirpError) as err:
            await client.room.list_participants(api.ListParticipantsRequest(room=unique_name()))
    assert (err.value.status, err.value.code) == (401, "unauthenticated")


async def test_valid_token_with_grant_is_accepted(livekit_target: LiveKitTarget) -> None:
    tok = token(livekit_target, video=api.VideoGrants(room_list=True))
    async with api.LiveKitAPI(livekit_target.url, token=tok) as client:
        response = await client.room.list_rooms(api.ListRoomsRequest(names=[unique_name()]))
    assert list(response.rooms) == []


MISSING_BEARER = "invalid authorization header. Must start with Bearer "


@pytest.mark.parametrize(
    "header",
    [
        pytest.param("Token abc", id="other-scheme"),
        pytest.param("bearer abc", id="lowercase-bearer"),
        pytest.param("Bearer", id="bearer-alone"),
        pytest.param("Bearer ", id="bearer-and-empty-token"),
    ],
)
async def test_header_without_bearer_prefix_has_the_exact_plain_text(
    livekit_target: LiveKitTarget, header: str
) -> None:
    status, content_type, body = await _raw_post(
        livekit_target, LIST_ROOMS, {"Authorization": header}
    )
    assert (status, content_type, body) == (401, "text/plain", MISSING_BEARER)


async def test_not_a_jwt_has_the_exact_plain_text(livekit_target: LiveKitTarget) -> None:
    _, _, body = await _raw_post(livekit_target, LIST_ROOMS, {"Authorization": "Bearer nope"})
    assert body == "invalid authorization token"


async def test_bearer_with_two_spaces_is_not_a_jwt(livekit_target: LiveKitTarget) -> None:
    valid = token(livekit_target, video=api.VideoGrants(room_list=True))
    _, _, body = await _raw_post(livekit_target, LIST_ROOMS, {"Authorization": "Bearer  " + valid})
    assert body == "invalid authorization token"


async def test_unknown_api_key_has_the_exact_plain_text(livekit_target: LiveKitTarget) -> None:
    key = unique_name("no-such-key")
    tok = token(livekit_target, video=api.VideoGrants(room_list=True), key=key)
    _, _, body = await _raw_post(livekit_target, LIST_ROOMS, {"Authorization": f"Bearer {tok}"})
    assert body == f"invalid API key: {key}"


async def test_wrong_secret_echoes_the_token_in_the_plain_text(
    livekit_target: LiveKitTarget,
) -> None:
    tok = token(livekit_target, video=api.VideoGrants(room_list=True), secret="x" * 40)
    _, _, body = await _raw_post(livekit_target, LIST_ROOMS, {"Authorization": f"Bearer {tok}"})
    assert body == (
        f"invalid token: {tok}, error: token signature is invalid: signature is invalid"
    )


async def test_expired_token_has_the_exact_plain_text(livekit_target: LiveKitTarget) -> None:
    tok = token(
        livekit_target, video=api.VideoGrants(room_list=True), ttl=datetime.timedelta(hours=-1)
    )
    _, _, body = await _raw_post(livekit_target, LIST_ROOMS, {"Authorization": f"Bearer {tok}"})
    assert body == f"invalid token: {tok}, error: token has invalid claims: token is expired"


async def test_token_expired_within_the_leeway_is_accepted(livekit_target: LiveKitTarget) -> None:
    tok = token(
        livekit_target,
        video=api.VideoGrants(room_list=True),
        ttl=datetime.timedelta(seconds=-30),
    )
    status, _, _ = await _raw_post(livekit_target, LIST_ROOMS, {"Authorization": f"Bearer {tok}"})
    assert status == 200


async def test_token_without_exp_is_accepted(livekit_target: LiveKitTarget) -> None:
    claims = {"iss": livekit_target.api_key, "video": {"roomList": True}}
    tok = jwt.encode(claims, livekit_target.api_secret, algorithm="HS256")
    status, _, _ = await _raw_post(livekit_target, LIST_ROOMS, {"Authorization": f"Bearer {tok}"})
    assert status == 200


async def test_access_token_query_parameter_is_accepted(livekit_target: LiveKitTarget) -> None:
    tok = token(livekit_target, video=api.VideoGrants(room_list=True))
    status, _, _ = await _raw_post(livekit_target, f"{LIST_ROOMS}?access_token={tok}", {})
    assert status == 200
