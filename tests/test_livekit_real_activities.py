"""Our LiveKit activities (`activities.LiveKitActivities`, called as methods) against the real
LiveKit server (v1.13.5 + Redis): the conflict message there usually names the new rule, not the
holder, so adoption after a lost create response must work by listing.

Skipped unless the server was built (`scripts/livekit-real.sh install`). Every rule, trunk and
room made here is deleted afterwards; PINs and names are random, so leftovers do not matter.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pytest
from livekit import api
from livekit.protocol.sip import (
    CreateSIPDispatchRuleRequest,
    CreateSIPInboundTrunkRequest,
    DeleteSIPDispatchRuleRequest,
    DeleteSIPTrunkRequest,
    ListSIPDispatchRuleRequest,
    SIPDispatchRule,
    SIPDispatchRuleDirect,
    SIPDispatchRuleInfo,
    SIPInboundTrunkInfo,
)
from temporalio.exceptions import ApplicationError

from activities import LiveKitActivities, open_livekit_api
from activities.dispatch_rules import create_request
from telephony import contracts
from telephony.contracts import (
    MANAGED_BY_ATTRIBUTE,
    MANAGED_BY_VALUE,
    ROOM_ID_ATTRIBUTE,
    dispatch_rule_name,
)
from telephony.models import EnsureRuleRequest, EnsureRuleResult, RoomLiveness
from telephony.settings import Settings
from tests.fixtures import livekit_real

if TYPE_CHECKING:
    from tests.fixtures.livekit_real import RealLiveKit

livekit_real.skip_module_unless_available()

pytestmark = pytest.mark.livekit_real


NUMBER = "+15550100000"


def new_room() -> str:
    return f"real-act-{uuid.uuid4()}"


def new_pin() -> str:
    return "".join(secrets.choice("0123456789") for _ in range(12))


@dataclass
class Real:
    """The activities and a raw client on the real server, remembering what to delete."""

    lk: api.LiveKitAPI
    settings: Settings
    rule_ids: set[str] = field(default_factory=set)
    trunk_ids: list[str] = field(default_factory=list)
    rooms: list[str] = field(default_factory=list)

    def activities(self, trunk_ids: Sequence[str] = ()) -> LiveKitActivities:
        settings = self.settings.model_copy(update={"room_telephony_trunk_ids": list(trunk_ids)})
        return LiveKitActivities(settings, self.lk)

    async def ensure(
        self,
        room_id: str,
        pin: str,
        trunk_ids: Sequence[str] = (),
        **request: Any,
    ) -> EnsureRuleResult:
        try:
            result = await self.activities(trunk_ids).ensure_dispatch_rule(
                EnsureRuleRequest(room_id=room_id, pin=pin, **request)
            )
        finally:
            # Whatever happened, the rules of this room are ours to delete.
            self.rule_ids |= {r.sip_dispatch_rule_id for r in await self.rules_for(room_id)}
        return result

    async def create_as_lost(
        self, room_id: str, pin: str, trunk_ids: Sequence[str] = ()
    ) -> SIPDispatchRuleInfo:
        """The create our activity sends, whose answer never reached it."""
        rule = await self.lk.sip.create_dispatch_rule(
            create_request(room_id, pin, trunk_ids=trunk_ids, hide_phone_number=False)
        )
        self.rule_ids.add(rule.sip_dispatch_rule_id)
        return rule

    async def foreign_rule(
        self, pin: str, trunk_ids: Sequence[str] = (), name: str = "foreign"
    ) -> SIPDispatchRuleInfo:
        rule = await self.lk.sip.create_dispatch_rule(
            CreateSIPDispatchRuleRequest(
                dispatch_rule=SIPDispatchRuleInfo(
                    name=name,
                    trunk_ids=list(trunk_ids),
                    rule=SIPDispatchRule(
                        dispatch_rule_direct=SIPDispatchRuleDirect(room_name=new_room(), pin=pin)
                    ),
                )
            )
        )
        self.rule_ids.add(rule.sip_dispatch_rule_id)
        return rule

    async def rule_sorting_before(
        self, rule_id: str, trunk_ids: Sequence[str] = ()
    ) -> SIPDispatchRuleInfo:
        """A rule whose id sorts before `rule_id` (one already there, or unrelated new ones until
        one does): the conflict message then names the new rule (`"<new>"`), not the holder.

        Ids are random: with a low `rule_id` a filler sorts before it only a few times in a
        hundred, hence the generous bound."""
        listing = await self.lk.sip.list_dispatch_rule(ListSIPDispatchRuleRequest())
        for rule in listing.items:
            if rule.sip_dispatch_rule_id < rule_id and set(rule.trunk_ids) <= set(trunk_ids):
                return rule
        for _ in range(300):
            filler = await self.foreign_rule(new_pin(), trunk_ids, name="filler")
            if filler.sip_dispatch_rule_id < rule_id:
                return filler
        raise AssertionError(f"no rule id sorted before {rule_id}")

    async def trunk(self) -> str:
        number = "+1555" + new_pin()[:8]
        trunk = await self.lk.sip.create_inbound_trunk(
            CreateSIPInboundTrunkRequest(
                trunk=SIPInboundTrunkInfo(name="real-act", numbers=[number])
            )
        )
        self.trunk_ids.append(trunk.sip_trunk_id)
        return trunk.sip_trunk_id

    async def rules_for(self, room_id: str) -> list[SIPDispatchRuleInfo]:
        listed = await self.lk.sip.list_dispatch_rule(ListSIPDispatchRuleRequest())
        return [r for r in listed.items if r.attributes.get(ROOM_ID_ATTRIBUTE) == room_id]

    async def cleanup(self) -> None:
        for rule_id in self.rule_ids:
            try:
                await self.lk.sip.delete_dispatch_rule(
                    DeleteSIPDispatchRuleRequest(sip_dispatch_rule_id=rule_id)
                )
            except api.TwirpError as exc:
                if exc.code != "not_found":
                    raise
        for trunk_id in self.trunk_ids:
            await self.lk.sip.delete_trunk(DeleteSIPTrunkRequest(sip_trunk_id=trunk_id))
        for room in self.rooms:
            try:
                await self.lk.room.delete_room(api.DeleteRoomRequest(room=room))
            except api.TwirpError as exc:
                if exc.code != "not_found":
                    raise


@pytest.fixture
async def real(real_livekit: RealLiveKit) -> AsyncIterator[Real]:
    settings = Settings(
        livekit_url=real_livekit.url,
        livekit_api_key=real_livekit.api_key,
        livekit_api_secret=real_livekit.api_secret,
    )
    async with open_livekit_api(settings) as lk:
        state = Real(lk, settings)
        try:
            yield state
        finally:
            await state.cleanup()


async def test_ensure_creates_a_managed_rule_for_the_room(real: Real) -> None:
    room_id, pin = new_room(), new_pin()

    result = await real.ensure(room_id, pin)

    [rule] = await real.rules_for(room_id)
    assert result == EnsureRuleResult(rule_id=rule.sip_dispatch_rule_id, adopted=False)
    assert rule.name == dispatch_rule_name(room_id)
    assert rule.rule.dispatch_rule_direct == SIPDispatchRuleDirect(room_name=room_id, pin=pin)
    assert dict(rule.attributes) == {
        MANAGED_BY_ATTRIBUTE: MANAGED_BY_VALUE,
        ROOM_ID_ATTRIBUTE: room_id,
    }
    assert list(rule.trunk_ids) == []


async def test_ensure_after_a_lost_create_adopts_the_one_rule(real: Real) -> None:
    room_id, pin = new_room(), new_pin()
    lost = await real.create_as_lost(room_id, pin)

    result = await real.ensure(room_id, pin)

    assert result == EnsureRuleResult(rule_id=lost.sip_dispatch_rule_id, adopted=True)
    assert [r.sip_dispatch_rule_id for r in await real.rules_for(room_id)] == [
        lost.sip_dispatch_rule_id
    ]


async def test_ensure_adopts_by_listing_when_the_conflict_names_the_new_rule(real: Real) -> None:
    room_id, pin = new_room(), new_pin()
    lost = await real.create_as_lost(room_id, pin)
    await real.rule_sorting_before(lost.sip_dispatch_rule_id)

    result = await real.ensure(room_id, pin)

    assert result == EnsureRuleResult(rule_id=lost.sip_dispatch_rule_id, adopted=True)
    assert len(await real.rules_for(room_id)) == 1


async def test_ensure_on_configured_trunks_adopts_by_listing_them(real: Real) -> None:
    trunk_id = await real.trunk()
    room_id, pin = new_room(), new_pin()
    lost = await real.create_as_lost(room_id, pin, [trunk_id])
    await real.rule_sorting_before(lost.sip_dispatch_rule_id, [await real.trunk()])

    result = await real.ensure(room_id, pin, [trunk_id])

    assert result == EnsureRuleResult(rule_id=lost.sip_dispatch_rule_id, adopted=True)
    assert len(await real.rules_for(room_id)) == 1


async def test_ensure_with_numbers_creates_a_rule_for_those_numbers_only(real: Real) -> None:
    room_id, pin = new_room(), new_pin()

    await real.ensure(room_id, pin, numbers=[NUMBER], hide_phone_number=True)

    [rule] = await real.rules_for(room_id)
    assert (list(rule.numbers), rule.hide_phone_number) == ([NUMBER], True)


async def test_ensure_with_other_numbers_replaces_the_known_rule_in_place(real: Real) -> None:
    room_id, pin = new_room(), new_pin()
    created = await real.ensure(room_id, pin)

    replaced = await real.ensure(room_id, pin, numbers=[NUMBER], known_rule_id=created.rule_id)

    [rule] = await real.rules_for(room_id)
    assert replaced.rule_id == created.rule_id == rule.sip_dispatch_rule_id
    assert list(rule.numbers) == [NUMBER]
    assert rule.rule.dispatch_rule_direct.pin == pin


async def test_a_rule_on_some_numbers_does_not_collide_with_one_on_every_number(
    real: Real,
) -> None:
    room_id, pin = new_room(), new_pin()
    lost = await real.create_as_lost(room_id, pin)

    result = await real.ensure(room_id, pin, numbers=[NUMBER])

    # Every number and calls to NUMBER do not collide in LiveKit: the create succeeds, so the
    # room's one rule is the new one once the loop deletes the rule it no longer knows.
    rules = {r.sip_dispatch_rule_id: list(r.numbers) for r in await real.rules_for(room_id)}
    assert rules[result.rule_id] == [NUMBER] and lost.sip_dispatch_rule_id in rules


async def test_pin_held_by_a_foreign_rule_is_pin_held_by_another_rule(real: Real) -> None:
    pin = new_pin()
    foreign = await real.foreign_rule(pin)
    await real.rule_sorting_before(foreign.sip_dispatch_rule_id)
    room_id = new_room()

    with pytest.raises(ApplicationError) as caught:
        await real.ensure(room_id, pin)

    assert (caught.value.type, caught.value.non_retryable) == (
        contracts.PIN_HELD_BY_ANOTHER_RULE,
        True,
    )
    assert foreign.sip_dispatch_rule_id in caught.value.message
    assert pin not in caught.value.message
    assert await real.rules_for(room_id) == []


async def test_delete_twice_reports_already_gone_the_second_time(real: Real) -> None:
    created = await real.ensure(new_room(), new_pin())
    activities = real.activities()

    first = await activities.delete_dispatch_rule(created.rule_id)
    second = await activities.delete_dispatch_rule(created.rule_id)

    assert (first, second) == (True, False)


async def test_liveness_of_an_open_room_reports_its_sid_and_creation_time(real: Real) -> None:
    room_id = new_room()
    real.rooms.append(room_id)
    room = await real.lk.room.create_room(api.CreateRoomRequest(name=room_id))

    liveness = await real.activities().check_room_liveness(room_id)

    # The real server gives the creation time in milliseconds: it orders incarnations.
    assert room.creation_time_ms > 0
    assert liveness == RoomLiveness(
        exists=True,
        sid=room.sid,
        created_at=datetime.fromtimestamp(room.creation_time_ms / 1000, UTC),
    )


async def test_liveness_of_an_unknown_room_is_false(real: Real) -> None:
    liveness = await real.activities().check_room_liveness(new_room())

    assert liveness == RoomLiveness(exists=False, sid=None)
