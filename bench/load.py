"""Load test (issue 11, "Load"): many signed LiveKit webhooks and API registrations through one
gateway process, at a fixed concurrency; every answer is counted by status and every event is
checked against what the service made of it, so that an overloaded service shows up as 5xx
answers or lost events, not only as slower figures.

    .venv/bin/python -m bench.load [--rooms 500] [--cycles 2] [--end-open 0.5]
                                   [--concurrency 50] [--hold 60] [--temporal dev|cluster]

`--concurrency` closed-loop clients share the rooms. Each client, for each of its rooms:
registers it (`PUT /api/v1/rooms/{id}`), then `--cycles` times opens the room in the LiveKit
emulator and posts a signed `room_started`, closes it and posts a signed `room_finished`; a
fraction `--end-open` of the rooms then opens once more and stays open. So 500 rooms x 2 cycles,
half left open = 2,250 webhooks plus 500 registrations. Webhooks are not retried here: a 5xx is
reported as one.

What counts as lost. A session opened and closed within milliseconds may rightly never get a
rule of its own (the room workflow sees its close in the same task as its start, or while the
previous session's rule is being created), and two sessions may rightly share one rule (the next
`room_started` arrives before the rule is deleted); so "one rule created per session" would
count correct behaviour as loss. Instead each event is held until LiveKit shows
it, or `--hold` seconds pass:
- after `room_started` the room stays open until LiveKit holds a rule for it: a session whose
  rule never appeared is a lost event;
- after `room_finished` the next session waits until the room's rule is gone (so a rule seen by
  the next session is the next session's): a rule still there is a lost event;
- a webhook answered `ignored` (e.g. "room is not registered") is a lost event;
- at the end every room's final state must match the last event sent: a closed room is
  registered, idle, without session and without a rule in LiveKit; an open room is open, its
  session is the last `sid`, and LiveKit holds exactly its rule, routing its PIN.
Exit code 1 on any non-2xx answer (5xx, 4xx, connection error) or any lost event.
Writes bench/results/load-<temporal>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from typing import Any

from livekit.protocol.models import Room
from livekit.protocol.webhook import WebhookEvent

from bench.harness import Stack, bounded, log, room_ids, running_stack, write_result
from bench.machine import describe, load_average
from bench.stats import line, summary
from bench.timed_emulator import signed_headers
from livekit_emulator.webhooks import webhook_body
from telephony.client import RoomNotRegistered
from telephony.models import TelephonyState

EVENT_KINDS = ("register", "room_started", "room_finished")
LOST_SAMPLE = 20


@dataclass
class Answer:
    status: str  # the HTTP status, or the exception's name when there was no answer
    body: dict[str, Any] | None = None


@dataclass(frozen=True)
class Expected:
    """The room's last event: open with this session, or closed."""

    sid: str | None  # None: closed


class Load:
    def __init__(self, stack: Stack, cycles: int, hold: float) -> None:
        self.stack = stack
        self.cycles = cycles
        self.hold = hold
        self.statuses: dict[str, Counter[str]] = {name: Counter() for name in EVENT_KINDS}
        self.answers: dict[str, Counter[str]] = {
            "room_started": Counter(),
            "room_finished": Counter(),
        }
        self.latencies: dict[str, list[float]] = {name: [] for name in EVENT_KINDS}
        # Webhook posted → LiveKit shows it (rule stored / rule deleted).
        self.reflected: dict[str, list[float]] = {"rule_stored": [], "rule_deleted": []}
        self.lost: list[tuple[str, str]] = []  # (room, why)
        self.expected: dict[str, Expected] = {}

    async def _timed(self, kind: str, method: str, url: str, **options: Any) -> Answer:
        started = time.perf_counter()
        try:
            async with self.stack.session.request(method, url, **options) as response:
                raw = await response.read()
                answer = Answer(str(response.status))
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = None
                answer.body = body if isinstance(body, dict) else None
        except Exception as exc:  # connection refused, reset, timeout: counted, not raised
            answer = Answer(type(exc).__name__)
        self.latencies[kind].append(time.perf_counter() - started)
        self.statuses[kind][answer.status] += 1
        return answer

    async def _webhook(self, event: str, room: Room) -> bool:
        """Post one signed webhook; True if the gateway processed it."""
        message = WebhookEvent(
            event=event, room=room, id=f"EV_{uuid.uuid4().hex[:12]}", created_at=int(time.time())
        )
        body = webhook_body(message)
        headers = signed_headers(
            body,
            self.stack.settings.livekit_api_key or "",
            self.stack.service_env["LIVEKIT_API_SECRET"],
        )
        url = f"{self.stack.gateway_url}/livekit/webhook"
        answer = await self._timed(event, "POST", url, data=body, headers=headers)
        if not answer.status.startswith("2"):
            self.lost.append((room.name, f"{event} {room.sid}: answered {answer.status}"))
            return False
        outcome = str((answer.body or {}).get("status"))
        self.answers[event][outcome] += 1
        if outcome != "processed":
            reason = (answer.body or {}).get("reason")
            self.lost.append((room.name, f"{event} {room.sid}: {outcome} ({reason})"))
            return False
        return True

    async def _until_rules(self, room_id: str, present: bool) -> float | None:
        """Seconds until the room has a rule in LiveKit (`present`) or none; None past the hold."""
        started = time.perf_counter()
        reached = await self.stack.emulator.timed_sip.wait_rules(
            room_id, (lambda rules: bool(rules) == present), self.hold
        )
        return time.perf_counter() - started if reached else None

    async def room(self, room_id: str, end_open: bool) -> None:
        url = f"{self.stack.gateway_url}/api/v1/rooms/{room_id}"
        answer = await self._timed("register", "PUT", url, headers=self.stack.api_headers)
        if not answer.status.startswith("2"):
            self.lost.append((room_id, f"register: answered {answer.status}"))
            return  # webhooks for it would rightly be ignored
        emulator = self.stack.emulator
        sessions = self.cycles + (1 if end_open else 0)
        for cycle in range(sessions):
            room = await emulator.create_room(room_id, empty_timeout=3600)
            if await self._webhook("room_started", room):
                waited = await self._until_rules(room_id, present=True)
                if waited is None:
                    why = f"room_started {room.sid}: no rule in LiveKit after {self.hold:g} s"
                    self.lost.append((room_id, why))
                else:
                    self.reflected["rule_stored"].append(waited)
            if cycle == self.cycles:  # the extra session of a room left open
                self.expected[room_id] = Expected(sid=room.sid)
                return
            await emulator.delete_room(room_id)
            if await self._webhook("room_finished", room):
                waited = await self._until_rules(room_id, present=False)
                if waited is None:
                    why = f"room_finished {room.sid}: rule still in LiveKit after {self.hold:g} s"
                    self.lost.append((room_id, why))
                else:
                    self.reflected["rule_deleted"].append(waited)
        self.expected[room_id] = Expected(sid=None)


async def _final_state(stack: Stack, room_id: str, expected: Expected | None) -> str | None:
    """Why the room's final state does not match its last event (None: it does)."""
    if expected is None:
        return "registration failed"  # already counted as lost
    try:
        status = await stack.telephony.get_status(room_id)
    except RoomNotRegistered:
        return "not registered"
    store = stack.emulator.timed_sip
    rules = store.room_rules(room_id)
    if expected.sid is None:
        if status.state is not TelephonyState.IDLE or status.session is not None:
            return f"closed room is {status.state.value}, session {status.session}"
        if status.rule_id is not None or rules:
            return f"closed room: rule {status.rule_id}, {len(rules)} rule(s) in LiveKit"
        return None
    session = status.session.sid if status.session else None
    if status.state is not TelephonyState.OPEN or session != expected.sid:
        return f"open room {expected.sid} is {status.state.value}, session {session}"
    if status.rule_id is None or rules != {status.rule_id}:
        return f"open room: rule {status.rule_id}, LiveKit holds {sorted(rules)}"
    pin = store.rules[status.rule_id].rule.dispatch_rule_direct.pin
    if pin != status.pin:
        return "open room: its rule in LiveKit does not route its PIN"
    return None


async def settle(
    stack: Stack, expected: dict[str, Expected | None], within: float
) -> dict[str, str]:
    """Check every room until its final state matches or `within` seconds are over."""
    deadline = time.perf_counter() + within
    pending = list(expected)
    problems: dict[str, str] = {}
    while pending:
        checks = await bounded(
            [functools.partial(_final_state, stack, room, expected[room]) for room in pending],
            50,
        )
        problems = {room: why for room, why in zip(pending, checks, strict=True) if why}
        pending = list(problems)
        if not pending or time.perf_counter() > deadline:
            break
        await asyncio.sleep(1)
    return problems


def _ends_open(index: int, fraction: float) -> bool:
    """Spread the rooms left open evenly over the list."""
    return int((index + 1) * fraction) > int(index * fraction)


async def run(
    kind: str, rooms: int, cycles: int, end_open: float, concurrency: int, hold: float
) -> dict[str, Any]:
    results: dict[str, Any] = {"temporal_kind": kind, "machine": describe()}
    async with running_stack(kind) as stack:
        # Webhooks are posted by the clients below, not by the emulator.
        stack.emulator.delivery = None
        stack.emulator.timed_sip.forget_times()
        load = Load(stack, cycles, hold)
        names = room_ids("load", rooms)
        plan = [(name, _ends_open(index, end_open)) for index, name in enumerate(names)]
        left_open = sum(1 for _, is_open in plan if is_open)
        load_before = load_average()
        log(
            f"load: {rooms} registrations and {rooms * cycles * 2 + left_open} webhooks "
            f"({left_open} rooms left open), {concurrency} clients (load average {load_before})"
        )
        started = time.perf_counter()
        await bounded(
            [functools.partial(load.room, name, is_open) for name, is_open in plan], concurrency
        )
        elapsed = time.perf_counter() - started
        settle_started = time.perf_counter()
        problems = await settle(stack, {name: load.expected.get(name) for name in names}, 60)
        settled = time.perf_counter() - settle_started
        stack.check_alive()
        registrations = sum(load.statuses["register"].values())
        webhooks = sum(sum(load.statuses[k].values()) for k in ("room_started", "room_finished"))
        failed = {
            kind: {status: count for status, count in counter.items() if status[:1] != "2"}
            for kind, counter in load.statuses.items()
        }
        server_errors = sum(
            count
            for counter in failed.values()
            for status, count in counter.items()
            if not status.startswith("4")  # 5xx, or no answer at all
        )
        non_2xx = sum(sum(counter.values()) for counter in failed.values())
        lost = [*load.lost, *((room, f"final state: {why}") for room, why in problems.items())]
        results.update(
            {
                "temporal": stack.temporal.version,
                "rooms": rooms,
                "cycles": cycles,
                "rooms_left_open": left_open,
                "concurrency": concurrency,
                "hold_seconds": hold,
                "webhooks": webhooks,
                "registrations": registrations,
                "seconds": round(elapsed, 2),
                "requests_per_second": round((webhooks + registrations) / elapsed, 1),
                "webhooks_per_second": round(webhooks / elapsed, 1),
                "statuses": {kind: dict(counter) for kind, counter in load.statuses.items()},
                "webhook_answers": {kind: dict(counter) for kind, counter in load.answers.items()},
                "latency": {kind: summary(samples) for kind, samples in load.latencies.items()},
                "reflected_in_livekit": {
                    kind: summary(samples) for kind, samples in load.reflected.items()
                },
                "server_errors": server_errors,
                "non_2xx": non_2xx,
                "lost_events": len(lost),
                "rooms_with_lost_events": len({room for room, _ in lost}),
                "lost_sample": [f"{room}: {why}" for room, why in lost[:LOST_SAMPLE]],
                "settle_seconds": round(settled, 1),
                "memory": stack.memory(),
                "load_average_at_start": load_before,
                "load_average_at_end": load_average(),
            }
        )
    for name, stats in results["latency"].items():
        log(line(f"load: {name}", stats))
    for name, stats in results["reflected_in_livekit"].items():
        log(line(f"load: webhook → {name}", stats))
    log(
        f"load: {results['requests_per_second']} requests/s ({results['webhooks_per_second']} "
        f"webhooks/s) over {results['seconds']} s; statuses {results['statuses']}; "
        f"{server_errors} 5xx/errors, {non_2xx} non-2xx, {len(lost)} lost event(s); "
        f"final state checked in {settled:.1f} s"
    )
    write_result(f"load-{kind}", results)
    return results


def _fraction(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError("a fraction between 0 and 1")
    return value


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.load",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--rooms", type=int, default=500)
    parser.add_argument("--cycles", type=int, default=2, help="closed sessions per room")
    parser.add_argument(
        "--end-open",
        type=_fraction,
        default=0.5,
        help="fraction of the rooms opened once more at the end and left open (default 0.5)",
    )
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument(
        "--hold",
        type=float,
        default=60.0,
        help="seconds an event may take to show in LiveKit before it counts as lost",
    )
    parser.add_argument("--temporal", choices=("dev", "cluster"), default="dev")
    args = parser.parse_args()
    results = asyncio.run(
        run(args.temporal, args.rooms, args.cycles, args.end_open, args.concurrency, args.hold)
    )
    print(
        f"\n{results['webhooks']} webhooks + {results['registrations']} registrations in "
        f"{results['seconds']} s: {results['requests_per_second']} requests/s; "
        f"5xx/errors {results['server_errors']}; non-2xx {results['non_2xx']}; "
        f"lost events {results['lost_events']}"
    )
    for name, stats in results["latency"].items():
        print(line(f"  {name}", stats))
    for name, stats in results["reflected_in_livekit"].items():
        print(line(f"  webhook → {name}", stats))
    for sample in results["lost_sample"]:
        print(f"  lost: {sample}")
    raise SystemExit(1 if results["non_2xx"] or results["lost_events"] else 0)


if __name__ == "__main__":
    main()
