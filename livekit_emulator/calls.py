"""Inbound call simulation: trunk lookup, LiveKit SIP's rule matching, the caller joining.

As LiveKit SIP v1.11.0 with livekit-server v1.13.5 (scripts/LIVEKIT_FINDINGS.md, where no real
SIP call could be made; the server side read in protocol/sip `MatchDispatchRuleIter` and
`EvaluateDispatchRule`): the server is asked twice.
First with no PIN: no trunk, or no rule for the call at all, and the call is dropped without any
answer. Otherwise the best rule is chosen; if it is open, the caller joins at once (never asked
for a PIN), else the call is answered and the caller types a PIN ending with `#`. Then the server
is asked again with that PIN (`#` alone: open rules only); no match, or a 17th key, and the caller
hears "wrong PIN" and is hung up on.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from livekit.protocol.models import ParticipantInfo
from livekit.protocol.sip import SIPDispatchRuleInfo, SIPInboundTrunkInfo

from .ids import new_id
from .rooms import RoomManager
from .sip import SipStore, normalize_number, rule_pin

MAX_PIN_DIGITS = 16
# The keys of a phone keypad that LiveKit SIP adds to a PIN (`#` ends it).
PIN_KEYS = frozenset("0123456789*")

# Why a call did not land. Unanswered: the caller hears ringing, then nothing.
NO_TRUNK = "no_trunk"  # no inbound trunk owns the dialled number
NO_ANSWER = "no_answer"  # a trunk, but no dispatch rule applies to the call
# Answered, then "wrong PIN" and a hang-up.
INVALID_PIN = "invalid_pin"  # more than 16 keys, or a key no keypad sends
WRONG_PIN = "wrong_pin"  # no applicable rule has this PIN (`#` alone: no open rule)


@dataclass(frozen=True)
class CallResult:
    """How a simulated call ended. `answered`: LiveKit SIP picked up (always so when
    `accepted`). `reason` is set when not accepted: `no_trunk` or `no_answer` (never answered),
    `invalid_pin` or `wrong_pin` (answered, then "wrong PIN")."""

    accepted: bool
    reason: str | None = None
    answered: bool = False
    room_name: str | None = None
    participant_identity: str | None = None
    participant_name: str | None = None
    attributes: dict[str, str] = field(default_factory=dict)
    rule_id: str | None = None
    trunk_id: str | None = None

    def as_dict(self) -> dict[str, object]:
        return {
            "accepted": self.accepted,
            "answered": self.answered,
            "reason": self.reason,
            "room_name": self.room_name,
            "participant_identity": self.participant_identity,
            "participant_name": self.participant_name,
            "attributes": self.attributes,
            "rule_id": self.rule_id,
            "trunk_id": self.trunk_id,
        }


def _priority(rule: SIPDispatchRuleInfo) -> tuple[int, str]:
    """Lower wins: PIN-protected before open, direct before individual before callee,
    rules naming numbers before rules for any number; then room name, for a stable choice."""
    kind = rule.rule.WhichOneof("rule")
    order = {"dispatch_rule_direct": 0, "dispatch_rule_individual": 1, "dispatch_rule_callee": 2}
    value = order.get(kind or "", 1000) + (0 if rule_pin(rule.rule) else 100)
    value += 0 if rule.inbound_numbers else 1000
    value += 0 if rule.numbers else 1000
    return value, _room_of(rule)


def _room_of(rule: SIPDispatchRuleInfo) -> str:
    kind = rule.rule.WhichOneof("rule")
    if kind == "dispatch_rule_direct":
        return rule.rule.dispatch_rule_direct.room_name
    if kind is None:
        return ""
    prefix: str = getattr(rule.rule, kind).room_prefix
    return prefix


def _applies(
    rule: SIPDispatchRuleInfo, trunk: SIPInboundTrunkInfo, caller: str, called: str
) -> bool:
    if rule.trunk_ids and trunk.sip_trunk_id not in rule.trunk_ids:
        return False
    if rule.inbound_numbers and normalize_number(caller) not in {
        normalize_number(n) for n in rule.inbound_numbers
    }:
        return False
    return not rule.numbers or normalize_number(called) in {
        normalize_number(n) for n in rule.numbers
    }


def _select(candidates: list[SIPDispatchRuleInfo], trunk_id: str) -> SIPDispatchRuleInfo:
    # A rule naming the trunk beats a wildcard one, whatever their priorities.
    specific = [r for r in candidates if trunk_id in r.trunk_ids]
    pool = specific or candidates
    return min(pool, key=_priority)


def simulate_call(
    sip: SipStore,
    rooms: RoomManager,
    pin: str,
    *,
    number: str | None = None,
    trunk_id: str | None = None,
    caller: str = "+15550100",
) -> CallResult:
    """One call; `pin` is what the caller types before `#` if asked. One attempt only (LiveKit
    SIP has no retry loop)."""
    if trunk_id is not None:
        trunk = sip.trunks.get(trunk_id)
    elif number is not None:
        trunk = sip.trunk_for_number(number)
    else:
        raise ValueError("simulate_call needs a number or a trunk_id")
    if trunk is None:
        return CallResult(accepted=False, reason=NO_TRUNK)
    called = number if number is not None else (trunk.numbers[0] if trunk.numbers else "")

    candidates = [r for r in sip.sorted_rules() if _applies(r, trunk, caller, called)]
    if not candidates:
        return CallResult(accepted=False, reason=NO_ANSWER, trunk_id=trunk.sip_trunk_id)
    first = _select(candidates, trunk.sip_trunk_id)
    if not rule_pin(first.rule):
        # The best rule is open: the caller joins without being asked, whatever they type.
        return _admit(rooms, first, trunk, caller, called)
    # Answered; the "enter PIN" prompt plays.
    if len(pin) > MAX_PIN_DIGITS or not set(pin) <= PIN_KEYS:
        return _refused(INVALID_PIN, trunk)
    if pin:
        # A typed PIN only ever matches PIN-protected rules: no fallback to an open rule.
        matched = [r for r in candidates if rule_pin(r.rule) == pin]
    else:
        # `#` alone: LiveKit asks for the rules without a PIN.
        matched = [r for r in candidates if not rule_pin(r.rule)]
    if not matched:
        return _refused(WRONG_PIN, trunk)
    return _admit(rooms, _select(matched, trunk.sip_trunk_id), trunk, caller, called)


def _refused(reason: str, trunk: SIPInboundTrunkInfo) -> CallResult:
    return CallResult(accepted=False, answered=True, reason=reason, trunk_id=trunk.sip_trunk_id)


def _admit(
    rooms: RoomManager,
    rule: SIPDispatchRuleInfo,
    trunk: SIPInboundTrunkInfo,
    caller: str,
    called: str,
) -> CallResult:
    attributes = dict(rule.attributes)
    attributes.update(
        {
            "sip.callID": new_id("SCL_"),
            "sip.callStatus": "active",
            "sip.trunkID": trunk.sip_trunk_id,
            "sip.ruleID": rule.sip_dispatch_rule_id,
        }
    )
    if rule.hide_phone_number:
        identity = "sip_" + hashlib.sha256(caller.encode()).hexdigest()[:16]
        shown = caller[-4:] if len(caller) > 4 else caller[-1:]
        name = "Phone " + shown
    else:
        identity = "sip_" + caller
        name = "Phone " + caller
        attributes["sip.phoneNumber"] = caller
        attributes["sip.trunkPhoneNumber"] = called

    kind = rule.rule.WhichOneof("rule")
    if kind == "dispatch_rule_individual":
        prefix = rule.rule.dispatch_rule_individual.room_prefix
        room_name = f"{prefix}_{caller if not rule.hide_phone_number else shown}_{new_id('')}"
    elif kind == "dispatch_rule_callee":
        callee = rule.rule.dispatch_rule_callee
        room_name = f"{callee.room_prefix}_{called}" if callee.room_prefix else called
        if callee.randomize:
            room_name += "_" + new_id("")
    else:
        room_name = rule.rule.dispatch_rule_direct.room_name

    participant = rooms.join(
        room_name,
        identity,
        name=name,
        kind=ParticipantInfo.Kind.SIP,
        attributes=attributes,
        metadata=rule.metadata,
    )
    return CallResult(
        accepted=True,
        answered=True,
        room_name=room_name,
        participant_identity=participant.identity,
        participant_name=participant.name,
        attributes=dict(participant.attributes),
        rule_id=rule.sip_dispatch_rule_id,
        trunk_id=trunk.sip_trunk_id,
    )
