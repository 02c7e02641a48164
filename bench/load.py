"""Load test (issue 11, "Load"): many signed LiveKit webhooks and API registrations through one
gateway process, at a fixed concurrency; every answer is counted by status and every room's final
state is checked, so that an overloaded service shows up as 5xx answers or lost events, not only
as slower figures.

    .venv/bin/python -m bench.load [--rooms 500] [--cycles 2] [--concurrency 50]
                                   [--temporal dev|cluster]

`--concurrency` closed-loop clients share the rooms. Each client, for each of its rooms: registers
it (`PUT /api/v1/rooms/{id}`), then `--cycles` times opens the room in the LiveKit emulator and
posts a signed `room_started`, closes it and posts a signed `room_finished` (so 500 rooms x 2
cycles = 2,000 webhooks plus 500 registrations). Webhooks are not retried here: a 5xx is
reported as one. At the end, each room must be registered, idle (no live session), hold no rule
in LiveKit, and have had one rule created per cycle; any room that is not is "lost".
Writes bench/results/load-<temporal>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import time
import uuid
from collections import Counter
from typing import Any

from livekit.protocol.webhook import WebhookEvent

from bench.harness import Stack, bounded, log, room_ids, running_stack, write_result
from bench.machine import describe, load_average
from bench.stats import line, summary
from bench.timed_emulator import signed_headers
from livekit_emulator.webhooks import webhook_body
from telephony.client import RoomNotRegistered
from telephony.models import TelephonyState


class Load:
    def __init__(self, stack: Stack, cycles: int) -> None:
        self.stack = stack
        self.cycles = cycles
        self.statuses: dict[str, Counter[str]] = {
            "register": Counter(),
            "room_started": Counter(),
            "room_finished": Counter(),
        }
        self.latencies: dict[str, list[float]] = {name: [] for name in self.statuses}
        self.errors: Counter[str] = Counter()

    async def _timed(self, kind: str, method: str, url: str, **options: Any) -> None:
        started = time.perf_counter()
        try:
            async with self.stack.session.request(method, url, **options) as response:
                await response.read()
                status = str(response.status)
        except Exception as exc:  # connection refused, reset, timeout: counted, not raised
            status = type(exc).__name__
        self.latencies[kind].append(time.perf_counter() - started)
        self.statuses[kind][status] += 1

    async def _webhook(self, event: str, room: Any) -> None:
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
        await self._timed(event, "POST", url, data=body, headers=headers)

    async def room(self, room_id: str) -> None:
        url = f"{self.stack.gateway_url}/api/v1/rooms/{room_id}"
        await self._timed("register", "PUT", url, headers=self.stack.api_headers)
        emulator = self.stack.emulator
        for _ in range(self.cycles):
            room = await emulator.create_room(room_id, empty_timeout=3600)
            await self._webhook("room_started", room)
            await emulator.delete_room(room_id)
            await self._webhook("room_finished", room)


async def _final_state(stack: Stack, room_id: str, cycles: int) -> str | None:
    """Why the room is not as it should end (None: it is)."""
    try:
        status = await stack.telephony.get_status(room_id)
    except RoomNotRegistered:
        return "not registered"
    if status.session is not None or status.state != TelephonyState.IDLE:
        return f"state {status.state.value}, session {status.session is not None}"
    rules = [
        rule
        for rule in stack.emulator.dispatch_rules()
        if rule.rule.dispatch_rule_direct.room_name == room_id
    ]
    if rules:
        return f"{len(rules)} rule(s) left in LiveKit"
    created = len(stack.emulator.timed_sip.created_at.get(room_id, []))
    if created < cycles:
        return f"{created} rule(s) created for {cycles} session(s)"
    return None


async def settle(stack: Stack, rooms: list[str], cycles: int, within: float) -> dict[str, str]:
    """Poll every room until it is in its final state or `within` seconds are over."""
    deadline = time.perf_counter() + within
    pending = list(rooms)
    problems: dict[str, str] = {}
    while pending:
        checks = await bounded(
            [functools.partial(_final_state, stack, room, cycles) for room in pending], 50
        )
        problems = {room: why for room, why in zip(pending, checks, strict=True) if why}
        pending = list(problems)
        if not pending or time.perf_counter() > deadline:
            break
        await asyncio.sleep(1)
    return problems


async def run(kind: str, rooms: int, cycles: int, concurrency: int) -> dict[str, Any]:
    results: dict[str, Any] = {"temporal_kind": kind, "machine": describe()}
    async with running_stack(kind) as stack:
        # Webhooks are posted by the clients below, not by the emulator.
        stack.emulator.delivery = None
        stack.emulator.timed_sip.forget_times()
        load = Load(stack, cycles)
        names = room_ids("load", rooms)
        log(
            f"load: {rooms} registrations and {rooms * cycles * 2} webhooks, "
            f"{concurrency} clients (load average {load_average()})"
        )
        started = time.perf_counter()
        await bounded([functools.partial(load.room, room) for room in names], concurrency)
        elapsed = time.perf_counter() - started
        settle_started = time.perf_counter()
        problems = await settle(stack, names, cycles, within=120)
        settled = time.perf_counter() - settle_started
        stack.check_alive()
        webhooks = sum(sum(load.statuses[k].values()) for k in ("room_started", "room_finished"))
        server_errors = sum(
            count
            for counter in load.statuses.values()
            for status, count in counter.items()
            if not status.isdigit() or status.startswith("5")
        )
        results.update(
            {
                "temporal": stack.temporal.version,
                "rooms": rooms,
                "cycles": cycles,
                "concurrency": concurrency,
                "webhooks": webhooks,
                "registrations": sum(load.statuses["register"].values()),
                "seconds": round(elapsed, 2),
                "requests_per_second": round(
                    (webhooks + sum(load.statuses["register"].values())) / elapsed, 1
                ),
                "webhooks_per_second": round(webhooks / elapsed, 1),
                "statuses": {kind: dict(counter) for kind, counter in load.statuses.items()},
                "latency": {kind: summary(samples) for kind, samples in load.latencies.items()},
                "server_errors": server_errors,
                "lost_rooms": len(problems),
                "lost_sample": dict(list(problems.items())[:20]),
                "settle_seconds": round(settled, 1),
                "memory": stack.memory(),
                "load_average_at_end": load_average(),
            }
        )
    for name, stats in results["latency"].items():
        log(line(f"load: {name}", stats))
    log(
        f"load: {results['requests_per_second']} requests/s ({results['webhooks_per_second']} "
        f"webhooks/s) over {results['seconds']} s; statuses {results['statuses']}; "
        f"{server_errors} 5xx/errors, {len(problems)} lost room(s); settled in {settled:.1f} s"
    )
    write_result(f"load-{kind}", results)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.load", description=__doc__)
    parser.add_argument("--rooms", type=int, default=500)
    parser.add_argument("--cycles", type=int, default=2, help="sessions per room (2 webhooks each)")
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--temporal", choices=("dev", "cluster"), default="dev")
    args = parser.parse_args()
    results = asyncio.run(run(args.temporal, args.rooms, args.cycles, args.concurrency))
    print(
        f"\n{results['webhooks']} webhooks + {results['registrations']} registrations in "
        f"{results['seconds']} s: {results['requests_per_second']} requests/s; "
        f"5xx/errors {results['server_errors']}; lost rooms {results['lost_rooms']}"
    )
    for name, stats in results["latency"].items():
        print(line(f"  {name}", stats))
    raise SystemExit(1 if results["server_errors"] or results["lost_rooms"] else 0)


if __name__ == "__main__":
    main()
