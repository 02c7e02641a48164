"""Conformance helpers: a client for the target, unique PINs/numbers/names (the suite may run
against a shared real server), and clean-up of everything a test creates."""

from __future__ import annotations

import datetime
import json
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import aiohttp
import pytest
from livekit import api
from livekit.protocol.sip import (
    CreateSIPDispatchRuleRequest,
    CreateSIPInboundTrunkRequest,
    DeleteSIPDispatchRuleRequest,
    DeleteSIPTrunkRequest,
    SIPDispatchRule,
    SIPDispatchRuleDirect,
    SIPDispatchRuleInfo,
    SIPInboundTrunkInfo,
)

from tests.fixtures.livekit import LiveKitTarget


def unique_pin() -> str:
    return "".join(secrets.choice("0123456789") for _ in range(12))


def unique_number() -> str:
    return "+1555" + "".join(secrets.choice("0123456789") for _ in range(8))


def unique_name(prefix: str = "conformance") -> str:
    return f"{prefix}-{secrets.token_hex(6)}"


def direct_rule(
    pin: str, room: str | None = None, trunk_ids: list[str] | None = None, name: str = ""
) -> SIPDispatchRuleInfo:
    return SIPDispatchRuleInfo(
        name=name,
        trunk_ids=trunk_ids or [],
        rule=SIPDispatchRule(
            dispatch_rule_direct=SIPDispatchRuleDirect(room_name=room or unique_name(), pin=pin)
        ),
    )


def token(
    target: LiveKitTarget,
    *,
    video: api.VideoGrants | None = None,
    sip: api.SIPGrants | None = None,
    ttl: datetime.timedelta = datetime.timedelta(minutes=5),
    secret: str | None = None,
    key: str | None = None,
) -> str:
    """A token with exactly the given grants (the client would add the ones each call needs)."""
    tok = api.AccessToken(key or target.api_key, secret or target.api_secret).with_ttl(ttl)
    if video is not None:
        tok.with_grants(video)
    if sip is not None:
        tok.with_sip_grants(sip)
    return tok.to_jwt()


async def post_json(
    target: LiveKitTarget, path: str, body: dict[str, object], tok: str
) -> tuple[int, str, dict[str, object]]:
    """A raw Twirp JSON call (for requests `livekit-api` cannot build); (status, type, body)."""
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            target.url + path,
            data=json.dumps(body),
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {tok}"},
        ) as resp,
    ):
        return resp.status, resp.content_type, json.loads(await resp.text())


def id_just_below(rule_id: str) -> str:
    """A string sorting right before `rule_id`: no id of the same length lies in between."""
    return rule_id[:-1] + chr(ord(rule_id[-1]) - 1) + "~"


@dataclass
class Resources:
    """Creates trunks, rules and rooms through the API, remembering them for clean-up."""

    lk: api.LiveKitAPI
    rule_ids: list[str] = field(default_factory=list)
    trunk_ids: list[str] = field(default_factory=list)
    room_names: list[str] = field(default_factory=list)

    async def trunk(self, numbers: list[str] | None = None) -> SIPInboundTrunkInfo:
        info = await self.lk.sip.create_inbound_trunk(
            CreateSIPInboundTrunkRequest(
                trunk=SIPInboundTrunkInfo(
                    name=unique_name("trunk"), numbers=numbers or [unique_number()]
                )
            )
        )
        self.trunk_ids.append(info.sip_trunk_id)
        return info

    async def rule(self, info: SIPDispatchRuleInfo) -> SIPDispatchRuleInfo:
        return await self.create_rule(CreateSIPDispatchRuleRequest(dispatch_rule=info))

    async def flat_rule(self, info: SIPDispatchRuleInfo) -> SIPDispatchRuleInfo:
        """Created with the deprecated flat request fields (trunk_ids, rule, name)."""
        return await self.create_rule(
            CreateSIPDispatchRuleRequest(trunk_ids=info.trunk_ids, rule=info.rule, name=info.name)
        )

    async def create_rule(self, request: CreateSIPDispatchRuleRequest) -> SIPDispatchRuleInfo:
        created = await self.lk.sip.create_dispatch_rule(request)
        self.rule_ids.append(created.sip_dispatch_rule_id)
        return created

    async def room(self, name: str | None = None) -> api.Room:
        name = name or unique_name("room")
        self.room_names.append(name)
        return await self.lk.room.create_room(api.CreateRoomRequest(name=name))

    async def cleanup(self) -> None:
        for rule_id in self.rule_ids:
            await _ignore_not_found(
                self.lk.sip.delete_dispatch_rule(
                    DeleteSIPDispatchRuleRequest(sip_dispatch_rule_id=rule_id)
                )
            )
        for trunk_id in self.trunk_ids:
            await _ignore_not_found(
                self.lk.sip.delete_trunk(DeleteSIPTrunkRequest(sip_trunk_id=trunk_id))
            )
        for room in self.room_names:
            await _ignore_not_found(self.lk.room.delete_room(api.DeleteRoomRequest(room=room)))


async def rule_sorting_before(
    res: Resources,
    make_rule: Callable[[], Awaitable[SIPDispatchRuleInfo]],
    trunk_ids: list[str] | None = None,
    attempts: int = 60,
) -> SIPDispatchRuleInfo:
    """`make_rule()`'s rule, and a filler rule (fresh PIN, on `trunk_ids`) whose id sorts
    before it. Ids are random: fillers are created until one sorts first, and a rule whose id
    sorts so low that none does is deleted and made again. Returns the rule."""
    for _ in range(5):
        rule = await make_rule()
        for _ in range(attempts):
            filler = await res.rule(direct_rule(unique_pin(), trunk_ids=trunk_ids, name="filler"))
            if filler.sip_dispatch_rule_id < rule.sip_dispatch_rule_id:
                return rule
        await res.lk.sip.delete_dispatch_rule(
            DeleteSIPDispatchRuleRequest(sip_dispatch_rule_id=rule.sip_dispatch_rule_id)
        )
    raise AssertionError(f"no pair of rules in id order after {5 * attempts} tries")


async def rule_sorting_first(
    res: Resources,
    make: Callable[[], SIPDispatchRuleInfo],
    among: Callable[[], Awaitable[list[str]]],
    attempts: int = 60,
) -> SIPDispatchRuleInfo:
    """Create `make()` (deleting misses) until its id is the lowest of the ids `among()` lists."""
    for _ in range(attempts):
        rule = await res.rule(make())
        if min(await among()) == rule.sip_dispatch_rule_id:
            return rule
        await res.lk.sip.delete_dispatch_rule(
            DeleteSIPDispatchRuleRequest(sip_dispatch_rule_id=rule.sip_dispatch_rule_id)
        )
    raise AssertionError(f"no rule sorted first in {attempts} tries")


async def _ignore_not_found(call: Awaitable[object]) -> None:
    try:
        await call
    except api.TwirpError as exc:
        if exc.code != "not_found":
            raise


@pytest.fixture
async def lk(livekit_target: LiveKitTarget) -> AsyncIterator[api.LiveKitAPI]:
    client = livekit_target.api()
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
async def resources(lk: api.LiveKitAPI) -> AsyncIterator[Resources]:
    res = Resources(lk)
    try:
        yield res
    finally:
        await res.cleanup()
