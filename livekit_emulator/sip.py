"""SIP inbound trunks and dispatch rules: storage, LiveKit's validation, list filters and pages.

Modelled on livekit-server v1.13.5 (`pkg/service/sip.go`, its Redis store) and livekit/protocol
(`sip/sip.go`, `livekit/sip.go`, `livekit/types.go`), and checked against a real server by
`tests/conformance/`. The quirks are reproduced on purpose:

- Validation walks a sequence of rules and names, on the first key collision, the rule seen
  *earlier* of the colliding pair. On create the sequence is `[c0, NEW, c1, c2, ...]` (existing
  candidates by id, the new rule second, id `<new>`), so the holder is named only when it is `c0`.
  The candidates are filtered by the request's *flat* `trunk_ids` (the deprecated field): with the
  `dispatch_rule` form they are all the rules.
- On update the candidates are the stored rules filtered by the *updated* rule's trunk ids, with
  the updated rule put in its own place; if the stored version of the rule does not pass that
  filter, the updated rule is not validated at all.
- `page.limit` is a window size, not a page size: every window is returned. With a filter, the
  walk stops at the first window without a match (a truncated answer).
- Only "a rule kind is set" is checked: empty room names, any PIN, unknown trunk ids are accepted.

The store keeps, besides the rules, their ids in sorted order and an index key -> holder ids. A
create runs the walk above only when the index says it could fail (a stored key held twice, a
stored rule without a kind, or a stored rule holding one of the new rule's keys): otherwise the
walk cannot find a collision, and skipping it keeps a create's cost independent of the number of
stored rules. The walk still decides every refusal, so the messages are unchanged.
"""

from __future__ import annotations

import bisect
import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from types import MappingProxyType
from typing import TypeVar

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

# Twirp-go prefixes the message of an error that is not a Twirp error (a psrpc error, here).
UNKNOWN_PREFIX = "twirp error unknown: "
RULE_NOT_FOUND = "requested sip dispatch rule does not exist"
CONFLICT_MESSAGE = (
    "Dispatch rule for the same trunk, inbound number, number, and PIN combination "
    "already exists in dispatch rule {id} {name}"
)
# Redis windows when a page is given with limit 0.
DEFAULT_WINDOW = 1000

_NUMBER = re.compile(r"^\+?[\d\- ()]+$")
_NUMBER_NOISE = re.compile(r"[ ()\-]")


def normalize_number(number: str) -> str:
    """LiveKit's NormalizeNumber: a number-looking string loses spaces, dashes and parentheses
    and gains a leading '+'; anything else is left as it is."""
    if not number or not _NUMBER.match(number):
        return number
    digits = _NUMBER_NOISE.sub("", number)
    return digits if digits.startswith("+") else "+" + digits


def rule_pin(rule: SIPDispatchRule) -> str:
    kind = rule.WhichOneof("rule")
    if kind is None:
        raise TwirpError(
            "invalid_argument", UNKNOWN_PREFIX + "unsupported SIP Dispatch Rule: <nil>"
        )
    pin: str = getattr(rule, kind).pin
    return pin


def go_quote(text: str) -> str:
    """Go's %q for the ids and names LiveKit quotes in its messages."""
    return json.dumps(text, ensure_ascii=False)


def _print_id(rule_id: str) -> str:
    return go_quote(rule_id or "<new>")


def _print_numbers(numbers: Sequence[str]) -> str:
    # Go's %q of a []string: ["a" "b"]; "<any>" when empty.
    return "[" + " ".join(go_quote(n) for n in numbers) + "]" if numbers else "<any>"


T = TypeVar("T", SIPDispatchRuleInfo, SIPInboundTrunkInfo)


def _interleave(first: Iterable[T], second: Iterable[T]) -> Iterator[T]:
    """dennwc/iters MultiIter: alternate between the two until both are exhausted."""
    iters = [iter(first), iter(second)]
    index = 0
    while iters:
        try:
            item = next(iters[index])
        except StopIteration:
            del iters[index]
            if iters:
                index %= len(iters)
            continue
        index = (index + 1) % len(iters)
        yield item


def paged_list(
    sorted_ids: Sequence[str],
    items_by_id: Mapping[str, T],
    keep: Callable[[T], bool],
    page: Pagination | None,
) -> list[T]:
    """LiveKit's list: without a page, every match sorted by id. With a page, windows of `limit`
    ids (1000 if 0) after `after_id`, each filtered, the cursor moving to the last match; the walk
    ends at the first window with no match. Every window's matches are returned."""
    if page is None:
        return [items_by_id[i] for i in sorted_ids if keep(items_by_id[i])]
    window = page.limit if page.limit > 0 else DEFAULT_WINDOW
    after = page.after_id
    result: list[T] = []
    while True:
        start = bisect.bisect_right(sorted_ids, after)
        ids = sorted_ids[start : start + window]
        matches = [items_by_id[i] for i in ids if keep(items_by_id[i])]
        if not matches:
            return result
        result.extend(matches)
        # Ids are ascending, so the last match is the highest.
        after = _id_of(matches[-1])


def _id_of(item: SIPDispatchRuleInfo | SIPInboundTrunkInfo) -> str:
    if isinstance(item, SIPDispatchRuleInfo):
        return item.sip_dispatch_rule_id
    return item.sip_trunk_id


def _apply_list_update(current: Sequence[str], update: ListUpdate) -> list[str]:
    if update.clear:
        return []
    if update.set:
        return list(update.set)
    result = list(current)
    for value in update.remove:
        if value in result:
            result.remove(value)
    result += [v for v in update.add if v not in result]
    return result


def _validate_list_update(update: ListUpdate) -> None:
    change = len(update.set) + len(update.add) + len(update.remove) > 0
    if not update.clear and not change:
        raise TwirpError("invalid_argument", "unsupported list update operation")
    if update.clear and change:
        raise TwirpError("invalid_argument", "cannot clear and change the list at the same time")
    if update.set and (update.add or update.remove):
        raise TwirpError("invalid_argument", "cannot set and change the list at the same time")
    if "" in (*update.set, *update.add, *update.remove):
        raise TwirpError("invalid_argument", "empty element in the list")


def rule_keys(rule: SIPDispatchRuleInfo) -> list[RuleKey]:
    """The keys a rule holds, in the validator's order. A key may come twice (e.g. a trunk id
    listed twice): LiveKit then finds the rule in conflict with itself."""
    pin = rule_pin(rule.rule)
    trunks = list(rule.trunk_ids) or [""]
    inbound = [normalize_number(n) for n in rule.inbound_numbers] or [""]
    numbers = [normalize_number(n) for n in rule.numbers] or [""]
    return [
        (pin, trunk, caller, called) for trunk in trunks for caller in inbound for called in numbers
    ]


def validate_dispatch_rules(rules: Iterable[SIPDispatchRuleInfo]) -> None:
    """protocol/sip DispatchRuleValidator: the first key seen twice is a conflict naming the rule
    that took it first (`<new>` for the rule being created)."""
    holders: dict[RuleKey, SIPDispatchRuleInfo] = {}
    for rule in rules:
        for key in rule_keys(rule):
            holder = holders.get(key)
            if holder is not None:
                raise TwirpError(
                    "invalid_argument",
                    CONFLICT_MESSAGE.format(
                        id=_print_id(holder.sip_dispatch_rule_id),
                        name=go_quote(holder.name or "<blank name>"),
                    ),
                )
            holders[key] = rule


class RuleKeyIndex:
    """Which stored rules hold each key. It never decides a conflict; it only tells when the
    validator's walk cannot find one, so that a create need not walk every stored rule."""

    def __init__(self) -> None:
        self._holders: dict[RuleKey, list[str]] = {}
        # Keys held more than once: a conflicting stored pair (left by an unvalidated update),
        # which fails every walk listing both rules.
        self.shared_keys = 0
        # Rules without a rule kind (same origin): the walk fails on them too.
        self.unkeyed: set[str] = set()

    @property
    def clean(self) -> bool:
        return self.shared_keys == 0 and not self.unkeyed

    def holds_any(self, keys: Iterable[RuleKey]) -> bool:
        return any(key in self._holders for key in keys)

    def add(self, rule: SIPDispatchRuleInfo) -> None:
        rule_id = rule.sip_dispatch_rule_id
        if rule.rule.WhichOneof("rule") is None:
            self.unkeyed.add(rule_id)
            return
        for key in rule_keys(rule):
            ids = self._holders.setdefault(key, [])
            ids.append(rule_id)
            if len(ids) == 2:
                self.shared_keys += 1

    def remove(self, rule: SIPDispatchRuleInfo) -> None:
        """Forget `rule`, as it was added (the stored version)."""
        rule_id = rule.sip_dispatch_rule_id
        if rule_id in self.unkeyed:
            self.unkeyed.discard(rule_id)
            return
        for key in rule_keys(rule):
            ids = self._holders[key]
            ids.remove(rule_id)
            if len(ids) == 1:
                self.shared_keys -= 1
            elif not ids:
                del self._holders[key]


def validate_trunks(trunks: Iterable[SIPInboundTrunkInfo]) -> None:
    """protocol/sip ValidateTrunksIter for inbound trunks: per called number (or "any"), one
    trunk without allowed numbers, and one per allowed (caller) number."""
    buckets: dict[str, dict[str, SIPInboundTrunkInfo]] = {}
    for trunk in trunks:
        keys = list(dict.fromkeys(normalize_number(n) for n in trunk.numbers)) or [""]
        for key in keys:
            by_inbound = buckets.setdefault(key, {})
            if not trunk.allowed_numbers:
                other = by_inbound.get("")
                if other is not None and other.sip_trunk_id != trunk.sip_trunk_id:
                    raise TwirpError(
                        "invalid_argument",
                        f"Conflicting inbound SIP Trunks: {_print_id(trunk.sip_trunk_id)} and "
                        f"{_print_id(other.sip_trunk_id)}, using the same number(s) "
                        f"{_print_numbers(trunk.numbers)} without AllowedNumbers set",
                    )
                by_inbound[""] = trunk
                continue
            seen: set[str] = set()
            for allowed in trunk.allowed_numbers:
                inbound_key = normalize_number(allowed)
                if inbound_key in seen:
                    continue
                seen.add(inbound_key)
                other = by_inbound.get(inbound_key)
                if other is not None and other.sip_trunk_id != trunk.sip_trunk_id:
                    raise TwirpError(
                        "invalid_argument",
                        f"Conflicting inbound SIP Trunks: {_print_id(trunk.sip_trunk_id)} and "
                        f"{_print_id(other.sip_trunk_id)}, using the same number(s) "
                        f"{_print_numbers(trunk.numbers)} and AllowedNumber {go_quote(allowed)}",
                    )
                by_inbound[inbound_key] = trunk


def _rule_filter(req: ListSIPDispatchRuleRequest) -> Callable[[SIPDispatchRuleInfo], bool]:
    def keep(r: SIPDispatchRuleInfo) -> bool:
        if req.dispatch_rule_ids and r.sip_dispatch_rule_id not in req.dispatch_rule_ids:
            return False
        # A wildcard rule (no trunk ids) applies to every trunk, so every trunk filter keeps it.
        if req.trunk_ids and r.trunk_ids:
            return any(t in req.trunk_ids for t in r.trunk_ids)
        return True

    return keep


def _trunk_filter(req: ListSIPInboundTrunkRequest) -> Callable[[SIPInboundTrunkInfo], bool]:
    wanted = {normalize_number(n) for n in req.numbers} | set(req.numbers)

    def keep(t: SIPInboundTrunkInfo) -> bool:
        if req.trunk_ids and t.sip_trunk_id not in req.trunk_ids:
            return False
        # A trunk without numbers accepts any number, so it matches every number filter.
        if req.numbers and t.numbers:
            return any(n in wanted or normalize_number(n) in wanted for n in t.numbers)
        return True

    return keep


class SipStore:
    """In-memory trunks and dispatch rules. Every method either fully applies or raises.
    `trunks` and `rules` are read-only views: changes go through the methods, which keep the
    sorted ids and the key index in step."""

    def __init__(self) -> None:
        self._trunks: dict[str, SIPInboundTrunkInfo] = {}
        self._trunk_ids: list[str] = []
        self._rules: dict[str, SIPDispatchRuleInfo] = {}
        self._rule_ids: list[str] = []
        self._rule_keys = RuleKeyIndex()
        self.trunks: Mapping[str, SIPInboundTrunkInfo] = MappingProxyType(self._trunks)
        self.rules: Mapping[str, SIPDispatchRuleInfo] = MappingProxyType(self._rules)

    # --- trunks ------------------------------------------------------------------------------
    def create_inbound_trunk(self, req: CreateSIPInboundTrunkRequest) -> SIPInboundTrunkInfo:
        if not req.HasField("trunk"):
            raise TwirpError("invalid_argument", "missing trunk")
        if req.trunk.sip_trunk_id:
            raise TwirpError("invalid_argument", "trunk id must not be set")
        info = SIPInboundTrunkInfo()
        info.CopyFrom(req.trunk)
        has_auth = bool(info.auth_username or info.auth_password)
        if not has_auth and not info.allowed_addresses and not info.numbers:
            raise TwirpError(
                "invalid_argument",
                "for security, one of the fields must be set: "
                "AuthUsername+AuthPassword, AllowedAddresses or Numbers",
            )
        # The new trunk (id still empty, printed `<new>`) goes second among the candidates.
        candidates = self.list_inbound_trunks(ListSIPInboundTrunkRequest(numbers=info.numbers))
        validate_trunks(_interleave(candidates.items, [info]))
        info.sip_trunk_id = new_id("ST_")
        self._trunks[info.sip_trunk_id] = info
        bisect.insort(self._trunk_ids, info.sip_trunk_id)
        return info

    def list_inbound_trunks(self, req: ListSIPInboundTrunkRequest) -> ListSIPInboundTrunkResponse:
        page = req.page if req.HasField("page") else None
        items = paged_list(self._trunk_ids, self._trunks, _trunk_filter(req), page)
        return ListSIPInboundTrunkResponse(items=items)

    def delete_trunk(self, req: DeleteSIPTrunkRequest) -> SIPTrunkInfo:
        # LiveKit checks nothing: an unknown id is "deleted" too, and rules keep their trunk ids.
        if not req.sip_trunk_id:
            raise TwirpError("invalid_argument", "trunk ID is required")
        if self._trunks.pop(req.sip_trunk_id, None) is not None:
            _remove_sorted(self._trunk_ids, req.sip_trunk_id)
        return SIPTrunkInfo(sip_trunk_id=req.sip_trunk_id)

    def trunk_for_number(self, number: str) -> SIPInboundTrunkInfo | None:
        """The trunk owning a called number; a trunk without numbers is the fallback."""
        wanted = normalize_number(number)
        fallback: SIPInboundTrunkInfo | None = None
        for trunk in (self._trunks[i] for i in self._trunk_ids):
            if not trunk.numbers:
                fallback = fallback or trunk
            elif wanted in {normalize_number(n) for n in trunk.numbers}:
                return trunk
        return fallback

    # --- dispatch rules ----------------------------------------------------------------------
    def create_dispatch_rule(
        self, req: CreateSIPDispatchRuleRequest, *, rule_id: str | None = None
    ) -> SIPDispatchRuleInfo:
        """CreateSIPDispatchRule; `rule_id` (tests only) picks the new id instead of a random one,
        to control which rule LiveKit's conflict message names."""
        info = SIPDispatchRuleInfo()
        if req.HasField("dispatch_rule"):
            if req.dispatch_rule.sip_dispatch_rule_id:
                raise TwirpError("invalid_argument", "rule id must not be set")
            info.CopyFrom(req.dispatch_rule)
        else:
            # The deprecated flat request form, still accepted by LiveKit.
            if req.HasField("rule"):
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
        if not info.HasField("rule"):
            raise TwirpError("invalid_argument", "missing rule")
        if not self._create_cannot_conflict(info):
            # Candidates come from the request's flat trunk_ids (empty with the dispatch_rule
            # form: every rule); the new rule, id still empty, goes second.
            candidates = self.list_dispatch_rules(
                ListSIPDispatchRuleRequest(trunk_ids=req.trunk_ids)
            )
            validate_dispatch_rules(_interleave(candidates.items, [info]))
        if rule_id is not None and rule_id in self._rules:
            raise ValueError(f"dispatch rule {rule_id} already exists")
        info.sip_dispatch_rule_id = rule_id or new_id("SDR_")
        # LiveKit v1.13.5 leaves created_at / updated_at unset, and always sets `media`.
        info.media.SetInParent()
        self._store_rule(info)
        return info

    def _create_cannot_conflict(self, info: SIPDispatchRuleInfo) -> bool:
        """True when the create walk `[c0, NEW, c1, ...]` cannot find a collision: the candidates
        are stored rules, among which no key is held twice and every rule has a kind, and no
        stored rule holds a key of the new rule, which holds each of its keys once. O(keys of
        the new rule). False means only "maybe": the walk then decides, and names the rule."""
        if not self._rule_keys.clean:
            return False
        # A new rule without a kind fails here exactly as in the walk: c0 alone cannot fail.
        keys = rule_keys(info)
        return len(set(keys)) == len(keys) and not self._rule_keys.holds_any(keys)

    def _store_rule(self, info: SIPDispatchRuleInfo) -> None:
        rule_id = info.sip_dispatch_rule_id
        previous = self._rules.get(rule_id)
        if previous is None:
            bisect.insort(self._rule_ids, rule_id)
        else:
            self._rule_keys.remove(previous)
        self._rules[rule_id] = info
        self._rule_keys.add(info)

    def update_dispatch_rule(self, req: UpdateSIPDispatchRuleRequest) -> SIPDispatchRuleInfo:
        action = req.WhichOneof("action")
        # Request validation comes before the lookup of the rule.
        if not req.sip_dispatch_rule_id:
            raise TwirpError("invalid_argument", "rule id must be set")
        if action is None:
            raise TwirpError("invalid_argument", "missing or unsupported update action")
        if action == "replace":
            replace_id = req.replace.sip_dispatch_rule_id
            if replace_id and replace_id != req.sip_dispatch_rule_id:
                raise TwirpError(
                    "invalid_argument",
                    "rule id in the info must be empty or match the id in the update",
                )
            if not req.replace.HasField("rule"):
                raise TwirpError("invalid_argument", "missing rule")
        elif req.update.HasField("trunk_ids"):
            _validate_list_update(req.update.trunk_ids)
        current = self._rules.get(req.sip_dispatch_rule_id)
        if current is None:
            raise TwirpError("not_found", RULE_NOT_FOUND)
        info = SIPDispatchRuleInfo()
        if action == "replace":
            info.CopyFrom(req.replace)
        else:
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
            # Attributes are merged; an empty value removes the key.
            for key, value in upd.attributes.items():
                if value:
                    info.attributes[key] = value
                else:
                    info.attributes.pop(key, None)
            if upd.HasField("media_encryption"):
                info.media_encryption = upd.media_encryption
            if upd.HasField("media"):
                info.media.CopyFrom(upd.media)
        info.sip_dispatch_rule_id = current.sip_dispatch_rule_id
        info.media.SetInParent()
        # Candidates: stored rules filtered by the *updated* trunk ids, the rule in its place.
        candidates = self.list_dispatch_rules(ListSIPDispatchRuleRequest(trunk_ids=info.trunk_ids))
        validate_dispatch_rules(
            info if r.sip_dispatch_rule_id == info.sip_dispatch_rule_id else r
            for r in candidates.items
        )
        self._store_rule(info)
        return info

    def delete_dispatch_rule(self, req: DeleteSIPDispatchRuleRequest) -> SIPDispatchRuleInfo:
        if not req.sip_dispatch_rule_id:
            raise TwirpError("invalid_argument", "dispatch rule ID is required")
        rule = self._rules.pop(req.sip_dispatch_rule_id, None)
        if rule is None:
            raise TwirpError("not_found", RULE_NOT_FOUND)
        _remove_sorted(self._rule_ids, rule.sip_dispatch_rule_id)
        self._rule_keys.remove(rule)
        return rule

    def list_dispatch_rules(self, req: ListSIPDispatchRuleRequest) -> ListSIPDispatchRuleResponse:
        page = req.page if req.HasField("page") else None
        items = paged_list(self._rule_ids, self._rules, _rule_filter(req), page)
        return ListSIPDispatchRuleResponse(items=items)

    def sorted_rules(self) -> list[SIPDispatchRuleInfo]:
        return [self._rules[i] for i in self._rule_ids]

    def sorted_trunks(self) -> list[SIPInboundTrunkInfo]:
        return [self._trunks[i] for i in self._trunk_ids]


def _remove_sorted(ids: list[str], value: str) -> None:
    index = bisect.bisect_left(ids, value)
    if index < len(ids) and ids[index] == value:
        del ids[index]
