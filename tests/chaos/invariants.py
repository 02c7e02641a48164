"""The four invariants, checked against LiveKit's own state after quiescence.

`observe()` reads what is: the dispatch rules (livekit-api), the live rooms (livekit-api), each
room's current PIN (the status query) and the running PIN leases (Temporal visibility). The
checkers are pure functions of the backend's model and that observation, so a planted violation
(a stray rule created directly, a lease started by hand) is detected exactly as a real one.
Simulated calls (invariant 4) join rooms, so they are made once the others hold.

Rules carrying attribute `telephony.sentinel` = `true` are not rooms' rules: ignored.
No message here quotes a PIN: "current PIN", "old PIN #n".
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
from livekit.api import ListRoomsRequest, ListSIPDispatchRuleRequest, LiveKitAPI
from temporalio.client import Client

from telephony import contracts
from telephony.client import RoomNotRegistered, TelephonyClient
from telephony.settings import Settings
from tests.chaos.model import Model, RoomModel

# A room whose schedule changes within this much of the observation is not judged (timers).
BOUNDARY_MARGIN = timedelta(seconds=6)


@dataclass(frozen=True)
class Violation:
    invariant: int
    room: str | None
    detail: str

    def line(self) -> str:
        return f"invariant {self.invariant} room={self.room or '-'}: {self.detail}"


@dataclass(frozen=True)
class ObservedRule:
    rule_id: str
    room: str | None
    pin: str
    managed: bool


@dataclass
class Observation:
    at: datetime
    rules: list[ObservedRule]
    live_rooms: set[str]
    # Each model room's PIN per its workflow (None: not registered).
    pins: dict[str, str | None]
    leases: list[tuple[str, str]]  # (lease workflow id, owner room)
    errors: list[str] = field(default_factory=list)

    def rules_of(self, room: str) -> list[ObservedRule]:
        return [rule for rule in self.rules if rule.room == room]


def _rule(info: Any) -> ObservedRule | None:
    attributes = dict(info.attributes)
    if attributes.get(contracts.SENTINEL_ATTRIBUTE) == "true":
        return None
    direct = info.rule.dispatch_rule_direct
    room = direct.room_name or attributes.get(contracts.ROOM_ID_ATTRIBUTE) or None
    managed = attributes.get(contracts.MANAGED_BY_ATTRIBUTE) == contracts.MANAGED_BY_VALUE
    return ObservedRule(info.sip_dispatch_rule_id, room, direct.pin, managed)


async def observe(
    model: Model, livekit: LiveKitAPI, telephony: TelephonyClient, settings: Settings
) -> Observation:
    rules_response = await livekit.sip.list_dispatch_rule(ListSIPDispatchRuleRequest())
    rules = [r for r in map(_rule, rules_response.items) if r is not None]
    rooms = await livekit.room.list_rooms(ListRoomsRequest())
    pins: dict[str, str | None] = {}
    errors: list[str] = []
    for room in model.rooms:
        try:
            pins[room] = (await telephony.get_status(room)).pin
        except RoomNotRegistered:
            pins[room] = None
        except Exception as exc:  # reported: an unreadable room fails the checks below
            errors.append(f"status of {room}: {type(exc).__name__}: {exc}")
            pins[room] = None
    leases = await running_leases(telephony.temporal, settings.telephony_task_queue)
    return Observation(
        at=datetime.now(UTC),
        rules=rules,
        live_rooms={room.name for room in rooms.rooms},
        pins=pins,
        leases=leases,
        errors=errors,
    )


async def running_leases(client: Client, task_queue: str) -> list[tuple[str, str]]:
    query = contracts.running_leases_query(task_queue=task_queue)
    leases = []
    async for execution in client.list_workflows(query):
        owner = execution.typed_search_attributes.get(contracts.TELEPHONY_ROOM_ID) or ""
        leases.append((execution.id, owner))
    return leases


# --- what should be ---------------------------------------------------------------------------


def should_open(room: RoomModel, live: bool, now: datetime, lead: timedelta) -> bool | None:
    """Whether the room's rule should exist now; None if a window boundary is too close."""
    if not room.registered:
        return False
    if live or room.mode == "always":
        return True
    for window in room.windows:
        for moment in (window.opens_at(lead), window.ends_at):
            if abs(moment - now) < BOUNDARY_MARGIN:
                return None
    return any(w.opens_at(lead) <= now < w.ends_at for w in room.windows)


# --- the checkers -----------------------------------------------------------------------------


def check_rule_presence(model: Model, seen: Observation, lead: timedelta) -> list[Violation]:
    """1. A rule exists for a room iff it should (registered and live / `always` / in a window)."""
    found = []
    for name, room in model.rooms.items():
        live = name in seen.live_rooms
        expected = should_open(room, live, seen.at, lead)
        has = bool(seen.rules_of(name))
        if expected is None or expected == has:
            continue
        why = (
            f"registered, mode {room.mode}, {'live' if live else 'not live'} in LiveKit, "
            f"{'in' if expected else 'outside'} its windows"
        )
        what = "no rule but it should have one" if expected else "a rule but it should have none"
        found.append(Violation(1, name, f"{what} ({why if room.registered else 'unregistered'})"))
    return found


def check_rule_ownership(model: Model, seen: Observation) -> list[Violation]:
    """2. At most one rule per room; none for unregistered or unknown rooms."""
    found = []
    by_room: dict[str | None, list[ObservedRule]] = defaultdict(list)
    for rule in seen.rules:
        by_room[rule.room].append(rule)
    for room, rules in by_room.items():
        ids = ", ".join(rule.rule_id for rule in rules)
        if room is None:
            found.append(Violation(2, None, f"rule(s) {ids} route to no room"))
            continue
        if len(rules) > 1:
            found.append(Violation(2, room, f"{len(rules)} rules: {ids}"))
        known = model.rooms.get(room)
        if known is None:
            found.append(
                Violation(2, room, f"rule(s) {ids} for a room the backend never registered")
            )
        elif not known.registered:
            found.append(Violation(2, room, f"rule(s) {ids} for an unregistered room"))
    return found


def check_pins_and_leases(model: Model, seen: Observation, settings: Settings) -> list[Violation]:
    """3. Registered rooms' PINs are distinct, each rule carries its room's current PIN, each
    registered room has exactly one running lease, no lease without a registered room."""
    found = [Violation(3, None, error) for error in seen.errors]
    registered = {name: room for name, room in model.rooms.items() if room.registered}
    for name, room in model.rooms.items():
        actual = seen.pins.get(name)
        if room.registered and actual is None:
            found.append(Violation(3, name, "registered by the backend, not in Temporal"))
        elif not room.registered and actual is not None:
            found.append(Violation(3, name, "unregistered by the backend, still registered"))
        elif room.registered and actual != room.pin:
            found.append(Violation(3, name, "its PIN differs from the one the API last answered"))
    counts = Counter(pin for name, pin in seen.pins.items() if name in registered and pin)
    for name in registered:
        pin = seen.pins.get(name)
        if pin and counts[pin] > 1:
            found.append(Violation(3, name, "its PIN is also another registered room's"))
    for rule in seen.rules:
        if rule.room in registered and seen.pins.get(rule.room) not in (None, rule.pin):
            found.append(Violation(3, rule.room, f"rule {rule.rule_id} carries another PIN"))
    by_owner: dict[str, list[str]] = defaultdict(list)
    for lease_id, owner in seen.leases:
        by_owner[owner].append(lease_id)
    for name in registered:
        pin = seen.pins.get(name)
        leases = by_owner.get(name, [])
        wanted = settings.pin_lease_id(pin) if pin else None
        if len(leases) != 1 or leases[0] != wanted:
            state = "its current PIN's" if wanted in leases else "none for its current PIN"
            found.append(Violation(3, name, f"{len(leases)} running lease(s), {state}"))
    sentinel_leases = by_owner.pop(contracts.SENTINEL_ROOM_ID, [])
    if settings.room_telephony_sentinel_rule:
        if sentinel_leases != [settings.pin_lease_id(settings.sentinel_pin())]:
            found.append(Violation(3, None, f"{len(sentinel_leases)} sentinel lease(s), not 1"))
    elif sentinel_leases:
        found.append(Violation(3, None, "a sentinel lease while the sentinel rule is off"))
    for owner, leases in by_owner.items():
        if owner not in registered:
            found.append(
                Violation(
                    3, owner or None, f"{len(leases)} running lease(s) of a room not registered"
                )
            )
    return found


@dataclass(frozen=True)
class Call:
    room: str  # whose PIN it is
    label: str  # "current PIN", "old PIN #n"
    pin: str
    must_land: bool


def planned_calls(model: Model, seen: Observation, lead: timedelta) -> list[Call]:
    """4. The calls to make: every room that should be open, by its PIN; every old, rotated
    or released PIN (unless a registered room holds it again); closed rooms' PINs."""
    current = {pin for pin in seen.pins.values() if pin}
    calls = []
    for name, room in model.rooms.items():
        expected = should_open(room, name in seen.live_rooms, seen.at, lead)
        if room.registered and room.pin and expected is not None:
            calls.append(Call(name, "current PIN", room.pin, expected))
        for number, pin in enumerate(sorted(room.old_pins)):
            if pin not in current:
                calls.append(Call(name, f"old PIN #{number}", pin, False))
    return calls


async def make_calls(
    session: aiohttp.ClientSession, livekit_url: str, number: str, calls: list[Call]
) -> list[tuple[Call, dict[str, Any]]]:
    results = []
    # Refusals first: an accepted call joins its room (and would open one that was not live).
    for index, call in enumerate(sorted(calls, key=lambda c: c.must_land)):
        body = {"pin": call.pin, "number": number, "caller": f"+1555{index:07d}"}
        async with session.post(f"{livekit_url}/_emulator/calls", json=body) as response:
            results.append((call, await response.json()))
    return results


def check_calls(results: list[tuple[Call, dict[str, Any]]]) -> list[Violation]:
    """4. A call lands in every room that should be open; other PINs route nowhere."""
    found = []
    for call, result in results:
        landed = bool(result.get("accepted"))
        where = result.get("room_name")
        if call.must_land and not (landed and where == call.room):
            outcome = f"landed in {where}" if landed else f"refused ({result.get('reason')})"
            found.append(Violation(4, call.room, f"a call with its {call.label} {outcome}"))
        elif not call.must_land and landed:
            found.append(Violation(4, call.room, f"a call with its {call.label} landed in {where}"))
    return found


def check_structure(
    model: Model, seen: Observation, settings: Settings, lead: timedelta
) -> list[Violation]:
    return [
        *check_rule_presence(model, seen, lead),
        *check_rule_ownership(model, seen),
        *check_pins_and_leases(model, seen, settings),
    ]


def check_logs(paths: list[Any], pins: set[str], secrets: dict[str, str]) -> list[Violation]:
    """Issue 11, security 1: no PIN and no secret in any process's log."""
    found = []
    for path in paths:
        text = path.read_text(errors="replace")
        # Whole digit runs only: a 10-digit PIN is not "in" a longer number of the log.
        leaked = sum(1 for pin in pins if re.search(rf"(?<!\d){pin}(?!\d)", text))
        if leaked:
            found.append(Violation(0, None, f"{path.name} contains {leaked} PIN(s)"))
        for name, secret in secrets.items():
            if secret and secret in text:
                found.append(Violation(0, None, f"{path.name} contains {name}"))
    return found
