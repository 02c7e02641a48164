"""Dispatch-rule operations: ensure (adopt or create), delete, list the rules we manage.

Every operation is idempotent so that a Temporal retry after a lost answer converges: a create
whose response was lost is retried, hits LiveKit's "same trunk + PIN already exists" conflict
(`invalid_argument`), and adopts the stored rule.

LiveKit's conflict message names a rule, but not reliably the holder (scripts/LIVEKIT_FINDINGS.md):
on create it names the holder only when the holder has the lowest id of the candidates, otherwise
the new rule (`"<new>"`), and a conflict between two *other* rules is reported too. So: if the
named rule is ours for this room and PIN, adopt it after one lookup by id; otherwise list the
rules (filtered by our trunk ids, never with a page: LiveKit truncates filtered pages) and look for
the rule holding our key — same PIN, no number restrictions, overlapping trunks or both wildcard.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

from livekit.api import (
    CreateSIPDispatchRuleRequest,
    DeleteSIPDispatchRuleRequest,
    ListSIPDispatchRuleRequest,
    Pagination,
    ServerError,
    SIPDispatchRule,
    SIPDispatchRuleDirect,
    SIPDispatchRuleInfo,
)
from livekit.api.sip_service import SipService
from temporalio.exceptions import ApplicationError

from activities.livekit_errors import (
    LIVEKIT_FAILURES,
    conflict_holder_id,
    is_not_found,
    is_rule_conflict,
    livekit_errors,
    translate,
)
from telephony import contracts
from telephony.contracts import (
    MANAGED_BY_ATTRIBUTE,
    MANAGED_BY_VALUE,
    ROOM_ID_ATTRIBUTE,
    SENTINEL_ATTRIBUTE,
    SENTINEL_ROOM_ID,
    dispatch_rule_name,
)
from telephony.models import EnsureRuleRequest, EnsureRuleResult, ManagedRule
from telephony.pins import PIN_RULE, is_valid_pin

logger = logging.getLogger(__name__)

# Retryable: the conflicting rule was gone by the time we looked it up (deleted concurrently), so
# the next attempt's create should go through.
DISPATCH_RULE_CONFLICT_UNRESOLVED = "DispatchRuleConflictUnresolved"
# Non-retryable: LiveKit accepts any PIN (letters, 20 digits...), callers can only type 4-16 digits.
INVALID_PIN = "InvalidPin"


def is_managed(rule: SIPDispatchRuleInfo) -> bool:
    return rule.attributes.get(MANAGED_BY_ATTRIBUTE) == MANAGED_BY_VALUE


def is_ours_for(rule: SIPDispatchRuleInfo, room_id: str, pin: str) -> bool:
    """Whether `rule` is the one this service would create for `room_id` with `pin`."""
    direct = rule.rule.dispatch_rule_direct
    return (
        is_managed(rule)
        and rule.attributes.get(ROOM_ID_ATTRIBUTE) == room_id
        and rule.rule.WhichOneof("rule") == "dispatch_rule_direct"
        and direct.room_name == room_id
        and direct.pin == pin
    )


def is_sentinel_for(rule: SIPDispatchRuleInfo, pin: str, trunk_ids: Sequence[str]) -> bool:
    """Whether `rule` is the sentinel rule as configured now: marked, with the sentinel PIN,
    on the configured trunks (docs/ARCHITECTURE.md, "The sentinel rule")."""
    return (
        rule.attributes.get(SENTINEL_ATTRIBUTE) == "true"
        and is_ours_for(rule, SENTINEL_ROOM_ID, pin)
        and sorted(rule.trunk_ids) == sorted(trunk_ids)
    )


def holds_key_of(
    rule: SIPDispatchRuleInfo, pin: str, trunk_ids: Sequence[str], numbers: Sequence[str] = ()
) -> bool:
    """Whether `rule` occupies a key a rule of ours (`pin` on `trunk_ids`, any caller, calls to
    `numbers` or to any number) would: LiveKit's conflict. Its keys are (PIN, trunk, caller,
    called number), an empty list standing for one "any" key (scripts/LIVEKIT_FINDINGS.md), so
    empty lists collide only with each other."""
    kind = rule.rule.WhichOneof("rule")
    if kind is None or getattr(rule.rule, kind).pin != pin:
        return False
    if rule.inbound_numbers:
        return False
    if set(rule.numbers or [""]).isdisjoint(numbers or [""]):
        return False
    if not trunk_ids or not rule.trunk_ids:
        return not trunk_ids and not rule.trunk_ids
    return bool(set(trunk_ids) & set(rule.trunk_ids))


def routes_as_asked(rule: SIPDispatchRuleInfo, wanted: SIPDispatchRuleInfo) -> bool:
    """Whether `rule` (ours for the room and PIN) has `wanted`'s numbers and number hiding."""
    return (
        sorted(rule.numbers) == sorted(wanted.numbers)
        and rule.hide_phone_number == wanted.hide_phone_number
    )


def check_pin(pin: str) -> None:
    """Refuse, non-retryably, a PIN callers could not type (LiveKit itself accepts anything)."""
    if not is_valid_pin(pin):
        # Never echo the value: it may be a real PIN.
        raise ApplicationError(
            f"a dispatch-rule PIN must be {PIN_RULE} (got {len(pin)} characters)",
            type=INVALID_PIN,
            non_retryable=True,
        )


def rule_info(
    room_id: str,
    pin: str,
    *,
    trunk_ids: Sequence[str],
    hide_phone_number: bool,
    numbers: Sequence[str] = (),
    attributes: Mapping[str, str] | None = None,
) -> SIPDispatchRuleInfo:
    """The rule this service keeps for `room_id`: PIN `pin` routes callers into the room."""
    return SIPDispatchRuleInfo(
        name=dispatch_rule_name(room_id),
        rule=SIPDispatchRule(
            dispatch_rule_direct=SIPDispatchRuleDirect(room_name=room_id, pin=pin),
        ),
        attributes={
            MANAGED_BY_ATTRIBUTE: MANAGED_BY_VALUE,
            ROOM_ID_ATTRIBUTE: room_id,
            **(attributes or {}),
        },
        trunk_ids=list(trunk_ids),  # empty: every inbound trunk (wildcard)
        numbers=list(numbers),  # empty: calls to any number
        hide_phone_number=hide_phone_number,
    )


def create_request(
    room_id: str, pin: str, *, trunk_ids: Sequence[str], hide_phone_number: bool
) -> CreateSIPDispatchRuleRequest:
    """A create of the rule `rule_info` describes, on every number."""
    # The `dispatch_rule` form: the flat fields of the request are deprecated in LiveKit.
    return CreateSIPDispatchRuleRequest(
        dispatch_rule=rule_info(
            room_id, pin, trunk_ids=trunk_ids, hide_phone_number=hide_phone_number
        )
    )


async def get_rule(
    sip: SipService, rule_id: str, *, secrets: Sequence[str] = ()
) -> SIPDispatchRuleInfo | None:
    """The rule with this id, or None. One request, whatever the number of rules."""
    with livekit_errors("ListSIPDispatchRule", secrets=secrets):
        response = await sip.list_dispatch_rule(
            ListSIPDispatchRuleRequest(dispatch_rule_ids=[rule_id])
        )
    # Match on the id: a server may answer an unknown id with an empty item or nothing at all.
    for rule in response.items:
        if rule.sip_dispatch_rule_id == rule_id:
            return rule
    return None


async def ensure_dispatch_rule(
    sip: SipService,
    request: EnsureRuleRequest,
    *,
    trunk_ids: Sequence[str],
    hide_phone_number: bool,
    attributes: Mapping[str, str] | None = None,
) -> EnsureRuleResult:
    """`hide_phone_number`: the default when the request leaves it out; `attributes`: added to
    the rule's own (the sentinel's mark)."""
    room_id, pin = request.room_id, request.pin
    check_pin(pin)
    secrets = (pin,)
    hide = hide_phone_number if request.hide_phone_number is None else request.hide_phone_number
    wanted = rule_info(
        room_id,
        pin,
        trunk_ids=trunk_ids,
        hide_phone_number=hide,
        numbers=request.numbers,
        attributes=attributes,
    )

    if request.known_rule_id:
        known = await get_rule(sip, request.known_rule_id, secrets=secrets)
        if known is not None and is_ours_for(known, room_id, pin):
            kept = await _keep_or_replace(sip, known, wanted, secrets)
            if kept is not None:
                return kept
        logger.info(
            "known dispatch rule %s of room %s is gone or no longer matches; creating one",
            request.known_rule_id,
            room_id,
        )

    conflict: ServerError
    try:
        created = await sip.create_dispatch_rule(CreateSIPDispatchRuleRequest(dispatch_rule=wanted))
    except LIVEKIT_FAILURES as error:
        if not is_rule_conflict(error):
            raise translate(error, "CreateSIPDispatchRule", secrets=secrets) from None
        conflict = error
    else:
        logger.info("created dispatch rule %s for room %s", created.sip_dispatch_rule_id, room_id)
        return EnsureRuleResult(rule_id=created.sip_dispatch_rule_id, adopted=False)
    # Resolved outside the `except` block so no LiveKit error rides along as context.
    return await _resolve_conflict(sip, request, wanted, trunk_ids, conflict)


async def _keep_or_replace(
    sip: SipService, rule: SIPDispatchRuleInfo, wanted: SIPDispatchRuleInfo, secrets: Sequence[str]
) -> EnsureRuleResult | None:
    """Our rule for the room and PIN: kept if it routes as `wanted` does, else replaced by
    `wanted` in one call (callers are routed throughout); None if it is gone by now."""
    rule_id = rule.sip_dispatch_rule_id
    if routes_as_asked(rule, wanted):
        return EnsureRuleResult(rule_id=rule_id, adopted=True)
    try:
        await sip.update_dispatch_rule(rule_id, wanted)
    except LIVEKIT_FAILURES as error:
        if is_not_found(error):
            return None
        raise translate(error, "UpdateSIPDispatchRule", secrets=secrets) from None
    logger.info("replaced dispatch rule %s (numbers or number hiding changed)", rule_id)
    return EnsureRuleResult(rule_id=rule_id, adopted=True)


async def _resolve_conflict(
    sip: SipService,
    request: EnsureRuleRequest,
    wanted: SIPDispatchRuleInfo,
    trunk_ids: Sequence[str],
    conflict: ServerError,
) -> EnsureRuleResult:
    room_id, pin, numbers = request.room_id, request.pin, request.numbers
    secrets = (pin,)
    named_id = conflict_holder_id(conflict)  # None for "<new>"
    named = await get_rule(sip, named_id, secrets=secrets) if named_id else None
    if named is not None and is_ours_for(named, room_id, pin):
        # Fast path: typically our own earlier create whose response was lost.
        logger.info("adopted dispatch rule %s for room %s", named_id, room_id)
        return await _adopted(sip, named, wanted, room_id, secrets)

    holders = await _rules_holding_key(sip, pin, trunk_ids, numbers)
    ours = [rule for rule in holders if is_ours_for(rule, room_id, pin)]
    if ours:
        holder_id = ours[0].sip_dispatch_rule_id
        logger.info("adopted dispatch rule %s for room %s (found by listing)", holder_id, room_id)
        return await _adopted(sip, ours[0], wanted, room_id, secrets)
    if holders:
        holder = holders[0]
        raise ApplicationError(
            f"the PIN of room {room_id} is already held by dispatch rule "
            f"{holder.sip_dispatch_rule_id}"
            + (
                f" (room {holder.attributes.get(ROOM_ID_ATTRIBUTE)!s})"
                if is_managed(holder)
                else " (not managed by meet-telephony)"
            ),
            type=contracts.PIN_HELD_BY_ANOTHER_RULE,
            non_retryable=True,
        )
    if named is not None and not holds_key_of(named, pin, trunk_ids, numbers):
        # Two *other* stored rules collide (LiveKit lets an update create such a pair): every
        # create that lists both fails until someone fixes the rules. Retrying cannot help.
        logger.error(
            "LiveKit refuses every new dispatch rule: stored rule %s conflicts with another",
            named_id,
        )
        raise translate(conflict, "CreateSIPDispatchRule", secrets=secrets)
    raise ApplicationError(
        f"the PIN of room {room_id} conflicted with a dispatch rule that is gone by now "
        "(deleted concurrently?); retrying the create",
        type=DISPATCH_RULE_CONFLICT_UNRESOLVED,
        non_retryable=False,
    )


async def _adopted(
    sip: SipService,
    rule: SIPDispatchRuleInfo,
    wanted: SIPDispatchRuleInfo,
    room_id: str,
    secrets: Sequence[str],
) -> EnsureRuleResult:
    """Our rule for the room and PIN, found holding the key: kept, or brought to `wanted`."""
    kept = await _keep_or_replace(sip, rule, wanted, secrets)
    if kept is None:
        raise ApplicationError(
            f"the dispatch rule of room {room_id} vanished while being adopted; "
            "retrying the create",
            type=DISPATCH_RULE_CONFLICT_UNRESOLVED,
            non_retryable=False,
        )
    return kept


async def _rules_holding_key(
    sip: SipService, pin: str, trunk_ids: Sequence[str], numbers: Sequence[str] = ()
) -> list[SIPDispatchRuleInfo]:
    """The rules that hold the key of a rule of ours, sorted by id. One list call, filtered by
    our trunk ids (wildcard rules are always included) and *without* a page: LiveKit returns
    every match then, while a filter combined with a page can silently truncate the answer."""
    with livekit_errors("ListSIPDispatchRule", secrets=(pin,)):
        response = await sip.list_dispatch_rule(
            ListSIPDispatchRuleRequest(trunk_ids=list(trunk_ids))
        )
    holders = [rule for rule in response.items if holds_key_of(rule, pin, trunk_ids, numbers)]
    return sorted(holders, key=lambda rule: rule.sip_dispatch_rule_id)


async def delete_dispatch_rule(sip: SipService, rule_id: str) -> bool:
    """True if deleted now, False if it was already gone (`not_found` counts as done)."""
    try:
        await sip.delete_dispatch_rule(DeleteSIPDispatchRuleRequest(sip_dispatch_rule_id=rule_id))
    except LIVEKIT_FAILURES as error:
        if not is_not_found(error):
            raise translate(error, "DeleteSIPDispatchRule") from None
        logger.info("dispatch rule %s was already gone", rule_id)
        return False
    logger.info("deleted dispatch rule %s", rule_id)
    return True


async def list_rules_after(sip: SipService, after_id: str) -> list[SIPDispatchRuleInfo]:
    """Every rule whose id sorts after `after_id` ("" = all), sorted by id: one call.

    A page without a filter: LiveKit then answers with every rule after the cursor (its
    `page.limit` is an internal window, not a page size; scripts/LIVEKIT_FINDINGS.md), so the
    caller takes its page from the front and resumes after the last id it handled.
    """
    with livekit_errors("ListSIPDispatchRule"):
        response = await sip.list_dispatch_rule(
            ListSIPDispatchRuleRequest(page=Pagination(after_id=after_id))
        )
    rules = [rule for rule in response.items if rule.sip_dispatch_rule_id > after_id]
    return sorted(rules, key=lambda rule: rule.sip_dispatch_rule_id)


async def existing_rule_ids(sip: SipService, rule_ids: Sequence[str]) -> set[str]:
    """Which of `rule_ids` LiveKit holds: one call, filtered by id and *without* a page."""
    if not rule_ids:
        return set()
    with livekit_errors("ListSIPDispatchRule"):
        response = await sip.list_dispatch_rule(
            ListSIPDispatchRuleRequest(dispatch_rule_ids=list(rule_ids))
        )
    wanted = set(rule_ids)
    return {rule.sip_dispatch_rule_id for rule in response.items} & wanted


def to_managed_rule(rule: SIPDispatchRuleInfo) -> ManagedRule:
    direct = rule.rule.dispatch_rule_direct
    return ManagedRule(
        rule_id=rule.sip_dispatch_rule_id,
        room_id=rule.attributes.get(ROOM_ID_ATTRIBUTE, ""),
        room_name=direct.room_name,
        pin=direct.pin,
    )
