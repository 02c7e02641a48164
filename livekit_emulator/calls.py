"""Inbound call simulation: trunk lookup, LiveKit SIP's rule matching, the caller joining."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from livekit.protocol.models import ParticipantInfo
from livekit.protocol.sip import SIPDispatchRuleInfo, SIPInboundTrunkInfo

from .ids import new_id
from .rooms import RoomManager
from .sip import SipStore, normalize_number, rule_pin

MAX_PIN_DIGITS = 16


@dataclass(frozen=True)
class CallResult:
    """How a simulated call ended. `reason` is set when rejected: `no_trunk`, `no_rules`,
    `invalid_pin` or `wrong_pin`."""

    accepted: bool
    reason: str | None = None
    room_name: str | None = None
    participant_identity: str | None = None
    participant_name: str | None = None
    attributes: dict[str, str] = field(default_factory=dict)
    rule_id: str | None = None
    trunk_id: str | None = None

    def as_dict(self) -> dict[str, object]:
        return {
            "accepted": self.accepted,
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
    """One call, one PIN attempt (LiveKit SIP has no retry loop)."""
    if trunk_id is not None:
        trunk = sip.trunks.get(trunk_id)
    elif number is not None:
        trunk = sip.trunk_for_number(number)
    else:
        raise ValueError("simulate_call needs a number or a trunk_id")
    if trunk is None:
        return CallResult(accepted=False, reason="no_trunk")
    called = number if number is not None else (trunk.numbers[0] if trunk.numbers else "")

    candidates = [r for r in sip.sorted_rules() if _applies(r, trunk, caller, called)]
    if not candidates:
        return CallResult(accepted=False, reason="no_rules", trunk_id=trunk.sip_trunk_id)
    if len(pin) > MAX_PIN_DIGITS or (pin and not pin.isdigit()):
        return CallResult(accepted=False, reason="invalid_pin", trunk_id=trunk.sip_trunk_id)
    if pin:
        # A typed PIN only ever matches PIN-protected rules: no fallback to an open rule.
        matched = [r for r in candidates if rule_pin(r.rule) == pin]
    elif any(rule_pin(r.rule) for r in candidates):
        # PIN-protected rules outrank open ones, so the caller is asked for a PIN; none typed.
        matched = []
    else:
        matched = candidates
    if not matched:
        return CallResult(accepted=False, reason="wrong_pin", trunk_id=trunk.sip_trunk_id)
    rule = _select(matched, trunk.sip_trunk_id)
    return _admit(rooms, rule, trunk, caller, called)


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
        room_name=room_name,
        participant_identity=participant.identity,
        participant_name=participant.name,
        attributes=dict(participant.attributes),
        rule_id=rule.sip_dispatch_rule_id,
        trunk_id=trunk.sip_trunk_id,
    )
