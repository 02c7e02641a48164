"""Facts about the real LiveKit server (v1.13.5 + Redis) that our code and the emulator rely on.

Skipped unless the server was built (`scripts/livekit-real.sh install`);
see scripts/LIVEKIT_FINDINGS.md.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import aiohttp
import pytest
from aiohttp import web
from livekit import api
from livekit.protocol.models import Pagination
from livekit.protocol.room import CreateRoomRequest, DeleteRoomRequest, ListRoomsRequest
from livekit.protocol.sip import (
    CreateSIPDispatchRuleRequest,
    DeleteSIPDispatchRuleRequest,
    ListSIPDispatchRuleRequest,
    SIPDispatchRule,
    SIPDispatchRuleDirect,
    SIPDispatchRuleInfo,
)

from tests.fixtures import livekit_real

if TYPE_CHECKING:
    from tests.fixtures.livekit_real import RealLiveKit

livekit_real.skip_module_unless_available()

pytestmark = pytest.mark.livekit_real


def _pin() -> str:
    return "".join(secrets.choice("0123456789") for _ in range(9))


def _direct(
    room: str, pin: str, trunk_ids: list[str] | None = None
) -> CreateSIPDispatchRuleRequest:
    return CreateSIPDispatchRuleRequest(
        dispatch_rule=SIPDispatchRuleInfo(
            name=f"test {room}",
            rule=SIPDispatchRule(
                dispatch_rule_direct=SIPDispatchRuleDirect(room_name=room, pin=pin)
            ),
            attributes={"telephony.room_id": room},
            trunk_ids=trunk_ids or [],
        )
    )


@pytest.fixture
async def lk(real_livekit: RealLiveKit) -> AsyncIterator[api.LiveKitAPI]:
    async with real_livekit.api() as client:
        yield client


async def test_create_conflict_message_names_the_holder_only_if_it_sorts_first(
    lk: api.LiveKitAPI,
) -> None:
    """Create validates [e0, new, e1, e2, …] (existing candidates by id, the new rule interleaved
    second) and names the rule seen first of a colliding pair: the holder only when it is e0, else
    `"<new>"` and the *new* rule's name. The conflict is `invalid_argument` (400), not a 409."""
    pin = _pin()
    holder = await lk.sip.create_dispatch_rule(_direct("real-a", pin))
    try:
        candidates = await lk.sip.list_dispatch_rule(ListSIPDispatchRuleRequest())  # wildcard: all
        first_id = candidates.items[0].sip_dispatch_rule_id
        with pytest.raises(api.ServerError) as caught:
            await lk.sip.create_dispatch_rule(_direct("real-b", pin))
        assert (caught.value.code, caught.value.status) == ("invalid_argument", 400)
        named = (
            f'"{holder.sip_dispatch_rule_id}" "test real-a"'
            if first_id == holder.sip_dispatch_rule_id
            else '"<new>" "test real-b"'
        )
        assert caught.value.message == (
            "Dispatch rule for the same trunk, inbound number, number, and PIN combination "
            f"already exists in dispatch rule {named}"
        )
        # A retried create (same request, first response lost) is refused the same way.
        with pytest.raises(api.ServerError) as retried:
            await lk.sip.create_dispatch_rule(_direct("real-a", pin))
        assert retried.value.code == "invalid_argument"
    finally:
        await lk.sip.delete_dispatch_rule(
            DeleteSIPDispatchRuleRequest(sip_dispatch_rule_id=holder.sip_dispatch_rule_id)
        )


async def test_wildcard_and_specific_rules_with_the_same_pin_coexist(lk: api.LiveKitAPI) -> None:
    pin = _pin()
    wildcard = await lk.sip.create_dispatch_rule(_direct("real-w", pin))
    specific = await lk.sip.create_dispatch_rule(_direct("real-s", pin, ["ST_notchecked"]))
    try:
        # Trunk ids are not checked for existence; listing by trunk includes wildcard rules.
        listed = await lk.sip.list_dispatch_rule(
            ListSIPDispatchRuleRequest(trunk_ids=["ST_notchecked"])
        )
        ids = {r.sip_dispatch_rule_id for r in listed.items}
        assert {wildcard.sip_dispatch_rule_id, specific.sip_dispatch_rule_id} <= ids
    finally:
        for rule in (wildcard, specific):
            await lk.sip.delete_dispatch_rule(
                DeleteSIPDispatchRuleRequest(sip_dispatch_rule_id=rule.sip_dispatch_rule_id)
            )


async def test_list_ignores_page_limit_but_honours_after_id(lk: api.LiveKitAPI) -> None:
    rules = [await lk.sip.create_dispatch_rule(_direct(f"real-p{i}", _pin())) for i in range(4)]
    try:
        everything = await lk.sip.list_dispatch_rule(ListSIPDispatchRuleRequest())
        ids = [r.sip_dispatch_rule_id for r in everything.items]
        assert ids == sorted(ids)
        limited = await lk.sip.list_dispatch_rule(
            ListSIPDispatchRuleRequest(page=Pagination(limit=2))
        )
        assert [
            r.sip_dispatch_rule_id for r in limited.items
        ] == ids  # limit is not a response size
        after = await lk.sip.list_dispatch_rule(
            ListSIPDispatchRuleRequest(page=Pagination(after_id=ids[1], limit=1))
        )
        assert [r.sip_dispatch_rule_id for r in after.items] == ids[2:]
    finally:
        for rule in rules:
            await lk.sip.delete_dispatch_rule(
                DeleteSIPDispatchRuleRequest(sip_dispatch_rule_id=rule.sip_dispatch_rule_id)
            )


async def test_delete_unknown_and_empty_rule_ids(lk: api.LiveKitAPI) -> None:
    with pytest.raises(api.ServerError) as unknown:
        await lk.sip.delete_dispatch_rule(
            DeleteSIPDispatchRuleRequest(sip_dispatch_rule_id="SDR_none")
        )
    assert (unknown.value.code, unknown.value.status) == ("not_found", 404)
    with pytest.raises(api.ServerError) as empty:
        await lk.sip.delete_dispatch_rule(DeleteSIPDispatchRuleRequest(sip_dispatch_rule_id=""))
    assert (empty.value.code, empty.value.status) == ("invalid_argument", 400)


async def test_bad_credentials_are_plain_text_401s(real_livekit: RealLiveKit) -> None:
    async with api.LiveKitAPI(real_livekit.url, real_livekit.api_key, "x" * 40) as wrong:
        with pytest.raises(api.ServerError) as caught:
            await wrong.sip.list_dispatch_rule(ListSIPDispatchRuleRequest())
    assert (caught.value.code, caught.value.status, caught.value.message) == ("unknown", 401, "")
    no_grant = (
        api.AccessToken(real_livekit.api_key, real_livekit.api_secret)
        .with_grants(api.VideoGrants(room_list=True))
        .to_jwt()
    )
    async with api.LiveKitAPI.with_token(no_grant, real_livekit.url) as client:
        with pytest.raises(api.ServerError) as missing:
            await client.sip.list_dispatch_rule(ListSIPDispatchRuleRequest())
    assert (missing.value.code, missing.value.status, missing.value.message) == (
        "unauthenticated",
        401,
        "permissions denied",
    )


async def test_room_webhooks_are_signed_bare_jwts(
    real_livekit: RealLiveKit, lk: api.LiveKitAPI
) -> None:
    received: list[tuple[str, dict[str, str]]] = []

    async def handle(request: web.Request) -> web.Response:
        received.append((await request.text(), dict(request.headers)))
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/{tail:.*}", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", real_livekit.webhook_port).start()
    try:
        name = f"real-room-{secrets.token_hex(4)}"
        first = await lk.room.create_room(CreateRoomRequest(name=name))
        assert [
            r.sid for r in (await lk.room.list_rooms(ListRoomsRequest(names=[name]))).rooms
        ] == [first.sid]
        await lk.room.delete_room(DeleteRoomRequest(room=name))
        assert not (await lk.room.list_rooms(ListRoomsRequest(names=[name]))).rooms
        second = await lk.room.create_room(CreateRoomRequest(name=name))
        assert second.sid != first.sid
        await lk.room.delete_room(DeleteRoomRequest(room=name))

        receiver = api.WebhookReceiver(
            api.TokenVerifier(real_livekit.api_key, real_livekit.api_secret)
        )
        mine: list[tuple[str, str]] = []
        for _ in range(100):
            mine = []
            for body, headers in received:
                event = receiver.receive(body, headers["Authorization"])
                assert headers["Content-Type"] == "application/webhook+json"
                assert not headers["Authorization"].startswith("Bearer ")
                assert '"createdAt":"' in body  # camelCase, int64 as a JSON string
                if event.room.name == name:
                    mine.append((event.event, event.room.sid))
            if len(mine) >= 4:
                break
            await asyncio.sleep(0.1)
        assert sorted(mine) == sorted(
            [
                ("room_started", first.sid),
                ("room_finished", first.sid),
                ("room_started", second.sid),
                ("room_finished", second.sid),
            ]
        )
    finally:
        await runner.cleanup()


async def test_server_answers_on_loopback_with_redis(real_livekit: RealLiveKit) -> None:
    async with aiohttp.ClientSession() as session, session.get(real_livekit.url) as resp:
        assert resp.status == 200
    assert real_livekit.redis_address.startswith("127.0.0.1:")
