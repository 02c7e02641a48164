"""Simulated phone calls: trunk lookup, LiveKit SIP's rule matching, how the caller joins."""

from __future__ import annotations

import aiohttp
from livekit import api
from livekit.protocol.models import ParticipantInfo
from livekit.protocol.sip import (
    CreateSIPDispatchRuleRequest,
    SIPDispatchRule,
    SIPDispatchRuleDirect,
    SIPDispatchRuleInfo,
)

from livekit_emulator import LiveKitEmulator
from tests.conformance.conftest import direct_rule

NUMBER = "+33123456789"
CALLER = "+33612345678"


async def add_rule(emu: LiveKitEmulator, info: SIPDispatchRuleInfo) -> str:
    async with api.LiveKitAPI(emu.url, emu.api_key, emu.api_secret) as lk:
        created = await lk.sip.create_dispatch_rule(
            CreateSIPDispatchRuleRequest(dispatch_rule=info)
        )
    return created.sip_dispatch_rule_id


async def test_matching_pin_joins_the_rule_room_as_sip_participant(
    emulator: LiveKitEmulator,
) -> None:
    trunk = await emulator.create_inbound_trunk(numbers=[NUMBER])
    rule_id = await add_rule(emulator, direct_rule("1234", room="meeting"))
    result = await emulator.simulate_call("1234", number=NUMBER, caller=CALLER)
    assert (result.accepted, result.answered, result.reason) == (True, True, None)
    assert (result.room_name, result.rule_id) == ("meeting", rule_id)
    assert (result.participant_identity, result.participant_name) == (
        f"sip_{CALLER}",
        f"Phone {CALLER}",
    )
    assert result.attributes["sip.trunkID"] == trunk
    assert result.attributes["sip.ruleID"] == rule_id
    assert result.attributes["sip.phoneNumber"] == CALLER
    (participant,) = emulator.participants("meeting")
    assert participant.kind == ParticipantInfo.Kind.SIP


async def test_call_creates_the_room_if_absent(emulator: LiveKitEmulator) -> None:
    await emulator.create_inbound_trunk(numbers=[NUMBER])
    await add_rule(emulator, direct_rule("1234", room="fresh"))
    assert emulator.rooms() == []
    await emulator.simulate_call("1234", number=NUMBER)
    assert [r.name for r in emulator.rooms()] == ["fresh"]
    assert [e.event for e in emulator.webhook_events[:2]] == ["room_started", "participant_joined"]


async def test_specific_rule_beats_wildcard_rule(emulator: LiveKitEmulator) -> None:
    trunk = await emulator.create_inbound_trunk(numbers=[NUMBER])
    # Room names chosen so that LiveKit's tie-break on room name would pick the wildcard.
    await add_rule(emulator, direct_rule("1234", room="a-wildcard-room"))
    specific = await add_rule(
        emulator, direct_rule("1234", room="z-specific-room", trunk_ids=[trunk])
    )
    result = await emulator.simulate_call("1234", number=NUMBER)
    assert (result.room_name, result.rule_id) == ("z-specific-room", specific)


async def test_wildcard_rule_serves_a_trunk_without_specific_rule(
    emulator: LiveKitEmulator,
) -> None:
    await emulator.create_inbound_trunk(numbers=[NUMBER])
    other = await emulator.create_inbound_trunk(numbers=["+33999999999"])
    await add_rule(emulator, direct_rule("1234", room="other-room", trunk_ids=[other]))
    await add_rule(emulator, direct_rule("1234", room="wildcard-room"))
    result = await emulator.simulate_call("1234", number=NUMBER)
    assert result.room_name == "wildcard-room"


async def test_wrong_pin_is_answered_then_refused_without_retry(
    emulator: LiveKitEmulator,
) -> None:
    await emulator.create_inbound_trunk(numbers=[NUMBER])
    await add_rule(emulator, direct_rule("1234", room="meeting"))
    result = await emulator.simulate_call("9999", number=NUMBER)
    assert (result.accepted, result.answered, result.reason) == (False, True, "wrong_pin")
    assert emulator.rooms() == []


async def test_typed_pin_never_falls_back_to_a_pinless_rule(emulator: LiveKitEmulator) -> None:
    await emulator.create_inbound_trunk(numbers=[NUMBER])
    await add_rule(emulator, direct_rule("", room="open-room"))
    await add_rule(emulator, direct_rule("1234", room="meeting"))
    result = await emulator.simulate_call("9999", number=NUMBER)
    assert (result.accepted, result.reason) == (False, "wrong_pin")


async def test_empty_pin_where_a_pin_is_needed_is_rejected(emulator: LiveKitEmulator) -> None:
    await emulator.create_inbound_trunk(numbers=[NUMBER])
    await add_rule(emulator, direct_rule("1234", room="meeting"))
    result = await emulator.simulate_call("", number=NUMBER)
    assert (result.accepted, result.reason) == (False, "wrong_pin")


async def test_no_pin_joins_an_open_rule(emulator: LiveKitEmulator) -> None:
    await emulator.create_inbound_trunk(numbers=[NUMBER])
    await add_rule(emulator, direct_rule("", room="open-room"))
    result = await emulator.simulate_call("", number=NUMBER)
    assert (result.accepted, result.room_name) == (True, "open-room")


async def test_hash_alone_joins_an_open_rule_even_when_a_pin_rule_applies(
    emulator: LiveKitEmulator,
) -> None:
    await emulator.create_inbound_trunk(numbers=[NUMBER])
    await add_rule(emulator, direct_rule("1234", room="meeting"))
    await add_rule(emulator, direct_rule("", room="open-room"))
    result = await emulator.simulate_call("", number=NUMBER)
    assert (result.accepted, result.room_name) == (True, "open-room")


async def test_caller_is_not_asked_for_a_pin_when_the_best_rule_is_open(
    emulator: LiveKitEmulator,
) -> None:
    trunk = await emulator.create_inbound_trunk(numbers=[NUMBER])
    # The trunk-specific open rule beats the wildcard PIN rule: no prompt, typed keys unread.
    await add_rule(emulator, direct_rule("", room="open-room", trunk_ids=[trunk]))
    await add_rule(emulator, direct_rule("1234", room="meeting"))
    result = await emulator.simulate_call("1234", number=NUMBER)
    assert (result.accepted, result.room_name) == (True, "open-room")


async def test_star_is_a_pin_key(emulator: LiveKitEmulator) -> None:
    await emulator.create_inbound_trunk(numbers=[NUMBER])
    await add_rule(emulator, direct_rule("12*4", room="meeting"))
    result = await emulator.simulate_call("12*4", number=NUMBER)
    assert (result.accepted, result.room_name) == (True, "meeting")


async def test_pin_longer_than_16_digits_is_answered_then_refused(
    emulator: LiveKitEmulator,
) -> None:
    await emulator.create_inbound_trunk(numbers=[NUMBER])
    await add_rule(emulator, direct_rule("1" * 17, room="meeting"))
    result = await emulator.simulate_call("1" * 17, number=NUMBER)
    assert (result.accepted, result.answered, result.reason) == (False, True, "invalid_pin")


async def test_number_without_trunk_is_not_answered(emulator: LiveKitEmulator) -> None:
    await emulator.create_inbound_trunk(numbers=[NUMBER])
    await add_rule(emulator, direct_rule("1234", room="meeting"))
    result = await emulator.simulate_call("1234", number="+4411111111")
    assert (result.accepted, result.answered, result.reason) == (False, False, "no_trunk")


async def test_trunk_without_applicable_rules_is_not_answered(emulator: LiveKitEmulator) -> None:
    await emulator.create_inbound_trunk(numbers=[NUMBER])
    other = await emulator.create_inbound_trunk(numbers=["+33999999999"])
    await add_rule(emulator, direct_rule("1234", room="meeting", trunk_ids=[other]))
    result = await emulator.simulate_call("1234", number=NUMBER)
    assert (result.accepted, result.answered, result.reason) == (False, False, "no_answer")


async def test_call_can_target_a_trunk_id(emulator: LiveKitEmulator) -> None:
    trunk = await emulator.create_inbound_trunk(numbers=[NUMBER])
    await add_rule(emulator, direct_rule("1234", room="meeting", trunk_ids=[trunk]))
    result = await emulator.simulate_call("1234", trunk_id=trunk)
    assert (result.accepted, result.trunk_id) == (True, trunk)


async def test_number_formatting_is_ignored_when_finding_the_trunk(
    emulator: LiveKitEmulator,
) -> None:
    trunk = await emulator.create_inbound_trunk(numbers=[NUMBER])
    await add_rule(emulator, direct_rule("1234", room="meeting"))
    result = await emulator.simulate_call("1234", number="+33 1 23 45 67 89")
    assert result.trunk_id == trunk


async def test_hide_phone_number_hashes_identity_and_keeps_last_four_digits(
    emulator: LiveKitEmulator,
) -> None:
    await emulator.create_inbound_trunk(numbers=[NUMBER])
    info = direct_rule("1234", room="meeting")
    info.hide_phone_number = True
    await add_rule(emulator, info)
    result = await emulator.simulate_call("1234", number=NUMBER, caller=CALLER)
    assert result.participant_identity is not None
    assert result.participant_identity.startswith("sip_")
    assert CALLER not in result.participant_identity
    assert result.participant_name == "Phone 5678"
    assert "sip.phoneNumber" not in result.attributes


async def test_hidden_identity_is_stable_per_caller(emulator: LiveKitEmulator) -> None:
    await emulator.create_inbound_trunk(numbers=[NUMBER])
    info = direct_rule("1234", room="meeting")
    info.hide_phone_number = True
    await add_rule(emulator, info)
    first = await emulator.simulate_call("1234", number=NUMBER, caller=CALLER)
    second = await emulator.simulate_call("1234", number=NUMBER, caller=CALLER)
    other = await emulator.simulate_call("1234", number=NUMBER, caller="+33600000000")
    assert first.participant_identity == second.participant_identity
    assert first.participant_identity != other.participant_identity


async def test_rule_attributes_are_copied_onto_the_participant(
    emulator: LiveKitEmulator,
) -> None:
    await emulator.create_inbound_trunk(numbers=[NUMBER])
    info = direct_rule("1234", room="meeting")
    info.attributes.update({"telephony.room_id": "meeting", "team": "blue"})
    await add_rule(emulator, info)
    await emulator.simulate_call("1234", number=NUMBER)
    (participant,) = emulator.participants("meeting")
    assert participant.attributes["telephony.room_id"] == "meeting"
    assert participant.attributes["team"] == "blue"


async def test_rule_restricted_to_caller_numbers_ignores_other_callers(
    emulator: LiveKitEmulator,
) -> None:
    await emulator.create_inbound_trunk(numbers=[NUMBER])
    info = SIPDispatchRuleInfo(
        inbound_numbers=["+33600000000"],
        rule=SIPDispatchRule(
            dispatch_rule_direct=SIPDispatchRuleDirect(room_name="vip", pin="1234")
        ),
    )
    await add_rule(emulator, info)
    result = await emulator.simulate_call("1234", number=NUMBER, caller=CALLER)
    assert (result.accepted, result.reason) == (False, "no_answer")


async def test_call_route_simulates_a_call_over_http(emulator: LiveKitEmulator) -> None:
    await emulator.create_inbound_trunk(numbers=[NUMBER])
    await add_rule(emulator, direct_rule("1234", room="meeting"))
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            emulator.url + "/_emulator/calls",
            json={"pin": "1234", "number": NUMBER, "caller": CALLER},
        ) as resp,
    ):
        body = await resp.json()
    assert resp.status == 200
    assert (body["accepted"], body["room_name"], body["participant_identity"]) == (
        True,
        "meeting",
        f"sip_{CALLER}",
    )


async def test_call_route_answers_a_call_nobody_picks_up(emulator: LiveKitEmulator) -> None:
    await emulator.create_inbound_trunk(numbers=[NUMBER])
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            emulator.url + "/_emulator/calls", json={"pin": "1234", "number": NUMBER}
        ) as resp,
    ):
        body = await resp.json()
    assert (resp.status, body["accepted"], body["answered"], body["reason"]) == (
        200,
        False,
        False,
        "no_answer",
    )
