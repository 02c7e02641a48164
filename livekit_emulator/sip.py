"""SIP inbound trunks and dispatch rules: storage, LiveKit's validation, list filters."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence

from google.protobuf.timestamp_pb2 import Timestamp
from livekit.protocol.models import ListUpdate, Pagination
from livekit.protocol.sip import (
    CreateSIPDispatchRuleRequest,
    CreateSIPInboundTrunkRequest,
    DeleteSIPDispatchRuleRequest,
    DeleteSIPTrunkRequest,
    ListSIPDispatchRuleRequest,
    ListSIPDispatchRuleResponse,
    ListSIPInboundTrunkRequest,
    ListSIPInboundTrunkResponse,
    SIPDispatchRule,
    SIPDispatchRuleInfo,
    SIPInboundTrunkInfo,
    SIPTrunkInfo,
    UpdateSIPDispatchRuleRequest,
)

from .ids import new_id
from .twirp import TwirpError

RuleKey = tuple[str, str, str, str]

_NUMBER_NOISE = re.compile(r"[\s()\-.]")


def normalize_number(number: str) -> str:
    """Compare phone numbers the way LiveKit does: formatting stripped, leading '+'."""
    if not number:
        return ""
    digits = _NUMBER_NOISE.sub("", number)
    return digits if digits.startswith("+") else "+" + digits


def rule_pin(rule: SIPDispatchRule) -> str:
    kind = rule.WhichOneof("rule")
    if kind is None:
        raise TwirpError("invalid_argument", "Unsupported SIP Dispatch Rule: <nil>")
    pin: str = getattr(rule, kind).pin
    return pin


def rule_keys(info: SIPDispatchRuleInfo) -> list[RuleKey]:
    """The (pin, trunk, inbound number, number) keys a rule occupies; an empty list is "any"."""
    pin = rule_pin(info.rule)
    trunks = list(info.trunk_ids) or [""]
    inbound = [normalize_number(n) for n in info.inbound_numbers] or [""]
    numbers = [normalize_number(n) for n in info.numbers] or [""]
    return [(pin, t, i, n) for t in trunks for i in inbound for n in numbers]


def _quote(text: str) -> str:
    """Go's %q for the names LiveKit quotes in its messages."""
    return json.dumps(text, ensure_ascii=False)


def _now() -> Timestamp:
    ts = Timestamp()
    ts.GetCurrentTime()
    return ts


def _page(
    items: Iterable[SIPDispatchRuleInfo], page: Pagination | None
) -> list[SIPDispatchRuleInfo]:
    result = sorted(items, key=lambda r: r.sip_dispatch_rule_id)
    if page is not None and page.after_id:
        result = [r for r in result if r.sip_dispatch_rule_id > page.after_id]
    if page is not None and page.limit > 0:
        result = result[: page.limit]
    return result


def _apply_list_update(current: Sequence[str], update: ListUpdate) -> list[str]:
    result = [] if update.clear else list(update.set) if update.set else list(current)
    result += [v for v in update.add if v not in result]
    return [v for v in result if v not in update.remove]


class SipStore:
    """In-memory trunks and dispatch rules. Every method either fully applies or raises."""

    def __init__(self) -> None:
        self.trunks: dict[str, SIPInboundTrunkInfo] = {}
        self.rules: dict[str, SIPDispatchRuleInfo] = {}

    # --- trunks ------------------------------------------------------------------------------
    def create_inbound_trunk(self, req: CreateSIPInboundTrunkRequest) -> SIPInboundTrunkInfo:
        if not req.HasField("trunk"):
            raise TwirpError("invalid_argument", "trunk info is required")
        info = SIPInboundTrunkInfo()
        info.CopyFrom(req.trunk)
        info.sip_trunk_id = new_id("ST_")
        self._validate_trunk(info)
        info.created_at.CopyFrom(_now())
        info.updated_at.CopyFrom(info.created_at)
        self.trunks[info.sip_trunk_id] = info
        return info

    def _validate_trunk(self, new: SIPInboundTrunkInfo) -> None:
        # Two trunks may not claim the same called number for the same (or any) caller.
        def keys(t: SIPInboundTrunkInfo) -> set[tuple[str, str]]:
            nums = [normalize_number(n) for n in t.numbers] or [""]
            allowed = [normalize_number(n) for n in t.allowed_numbers] or [""]
            return {(n, a) for n in nums for a in allowed}

        new_keys = keys(new)
        for other in sorted(self.trunks.values(), key=lambda t: t.sip_trunk_id):
            if other.sip_trunk_id != new.sip_trunk_id and keys(other) & new_keys:
                raise TwirpError(
                    "invalid_argument",
                    f'Conflicting inbound SIP Trunks: "{new.sip_trunk_id}" and '
                    f'"{other.sip_trunk_id}", using the same number(s)',
                )

    def list_inbound_trunks(self, req: ListSIPInboundTrunkRequest) -> ListSIPInboundTrunkResponse:
        wanted_numbers = {normalize_number(n) for n in req.numbers}

        def keep(t: SIPInboundTrunkInfo) -> bool:
            if req.trunk_ids and t.sip_trunk_id not in req.trunk_ids:
                return False
            # A trunk without numbers accepts any number, so it matches every number filter.
            if wanted_numbers and t.numbers:
                return bool(wanted_numbers & {normalize_number(n) for n in t.numbers})
            return True

        items = sorted((t for t in self.trunks.values() if keep(t)), key=lambda t: t.sip_trunk_id)
        page = req.page if req.HasField("page") else None
        if page is not None and page.after_id:
            items = [t for t in items if t.sip_trunk_id > page.after_id]
        if page is not None and page.limit > 0:
            items = items[: page.limit]
        return ListSIPInboundTrunkResponse(items=items)

    def delete_trunk(self, req: DeleteSIPTrunkRequest) -> SIPTrunkInfo:
        if not req.sip_trunk_id:
            raise TwirpError("invalid_argument", "trunk id is required")
        trunk = self.trunks.pop(req.sip_trunk_id, None)
        if trunk is None:
            raise TwirpError("not_found", "requested sip trunk does not exist")
        return SIPTrunkInfo(
            sip_trunk_id=trunk.sip_trunk_id,
            kind=SIPTrunkInfo.TrunkKind.TRUNK_INBOUND,
            inbound_addresses=trunk.allowed_addresses,
            inbound_numbers=trunk.allowed_numbers,
            name=trunk.name,
            metadata=trunk.metadata,
        )

    def trunk_for_number(self, number: str) -> SIPInboundTrunkInfo | None:
        """The trunk owning a called number; a trunk without numbers is the fallback."""
        wanted = normalize_number(number)
        fallback: SIPInboundTrunkInfo | None = None
        for trunk in sorted(self.trunks.values(), key=lambda t: t.sip_trunk_id):
            if not trunk.numbers:
                fallback = fallback or trunk
            elif wanted in {normalize_number(n) for n in trunk.numbers}:
                return trunk
        return fallback

    # --- dispatch rules ----------------------------------------------------------------------
    def create_dispatch_rule(self, req: CreateSIPDispatchRuleRequest) -> SIPDispatchRuleInfo:
        info = SIPDispatchRuleInfo()
        if req.HasField("dispatch_rule"):
            info.CopyFrom(req.dispatch_rule)
        else:
            # The deprecated flat request form, still accepted by LiveKit.
            info.rule.CopyFrom(req.rule)
            info.trunk_ids.extend(req.trunk_ids)
            info.hide_phone_number = req.hide_phone_number
            info.inbound_numbers.extend(req.inbound_numbers)
            info.name = req.name
            info.metadata = req.metadata
            info.attributes.update(req.attributes)
            info.room_preset = req.room_preset
            if req.HasField("room_config"):
                info.room_config.CopyFrom(req.room_config)
        info.sip_dispatch_rule_id = ""
        self._validate_rule(info)
        info.sip_dispatch_rule_id = new_id("SDR_")
        info.created_at.CopyFrom(_now())
        info.updated_at.CopyFrom(info.created_at)
        self.rules[info.sip_dispatch_rule_id] = info
        return info

    def update_dispatch_rule(self, req: UpdateSIPDispatchRuleRequest) -> SIPDispatchRuleInfo:
        current = self._existing_rule(req.sip_dispatch_rule_id)
        info = SIPDispatchRuleInfo()
        action = req.WhichOneof("action")
        if action == "replace":
            info.CopyFrom(req.replace)
            info.created_at.CopyFrom(current.created_at)
        elif action == "update":
            info.CopyFrom(current)
            upd = req.update
            if upd.HasField("trunk_ids"):
                new_trunks = _apply_list_update(info.trunk_ids, upd.trunk_ids)
                del info.trunk_ids[:]
                info.trunk_ids.extend(new_trunks)
            if upd.HasField("rule"):
                info.rule.CopyFrom(upd.rule)
            if upd.HasField("name"):
                info.name = upd.name
            if upd.HasField("metadata"):
                info.metadata = upd.metadata
            if upd.attributes:
                info.attributes.clear()
                info.attributes.update(upd.attributes)
            if upd.HasField("media_encryption"):
                info.media_encryption = upd.media_encryption
            if upd.HasField("media"):
                info.media.CopyFrom(upd.media)
        else:
            raise TwirpError("invalid_argument", "missing or unsupported update action")
        info.sip_dispatch_rule_id = current.sip_dispatch_rule_id
        self._validate_rule(info)
        info.updated_at.CopyFrom(_now())
        self.rules[info.sip_dispatch_rule_id] = info
        return info

    def delete_dispatch_rule(self, req: DeleteSIPDispatchRuleRequest) -> SIPDispatchRuleInfo:
        rule = self._existing_rule(req.sip_dispatch_rule_id)
        del self.rules[rule.sip_dispatch_rule_id]
        return rule

    def list_dispatch_rules(self, req: ListSIPDispatchRuleRequest) -> ListSIPDispatchRuleResponse:
        def keep(r: SIPDispatchRuleInfo) -> bool:
            if req.dispatch_rule_ids and r.sip_dispatch_rule_id not in req.dispatch_rule_ids:
                return False
            # A wildcard rule (no trunk ids) applies to every trunk, so every trunk filter keeps it.
            if req.trunk_ids and r.trunk_ids:
                return any(t in req.trunk_ids for t in r.trunk_ids)
            return True

        page = req.page if req.HasField("page") else None
        return ListSIPDispatchRuleResponse(items=_page(filter(keep, self.rules.values()), page))

    def sorted_rules(self) -> list[SIPDispatchRuleInfo]:
        return _page(self.rules.values(), None)

    def _existing_rule(self, rule_id: str) -> SIPDispatchRuleInfo:
        if not rule_id:
            raise TwirpError("invalid_argument", "dispatch rule id is required")
        rule = self.rules.get(rule_id)
        if rule is None:
            raise TwirpError("not_found", "requested sip dispatch rule does not exist")
        return rule

    def _validate_rule(self, info: SIPDispatchRuleInfo) -> None:
        kind = info.rule.WhichOneof("rule")
        if kind is None:
            raise TwirpError("invalid_argument", "dispatch rule is required")
        if kind == "dispatch_rule_direct" and not info.rule.dispatch_rule_direct.room_name:
            raise TwirpError("invalid_argument", "room name is required for a direct rule")
        holders: dict[RuleKey, SIPDispatchRuleInfo] = {}
        for other in self.sorted_rules():
            if other.sip_dispatch_rule_id == info.sip_dispatch_rule_id:
                continue
            for key in rule_keys(other):
                holders.setdefault(key, other)
        for key in rule_keys(info):
            holder = holders.get(key)
            if holder is not None:
                raise TwirpError(
                    "invalid_argument",
                    "Dispatch rule for the same trunk, inbound number, number, and PIN "
                    "combination already exists in dispatch rule "
                    f"{_quote(holder.sip_dispatch_rule_id)} "
                    f"{_quote(holder.name or '<blank name>')}",
                )
