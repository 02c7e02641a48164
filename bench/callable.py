"""(a) Webhook → callable: how long after LiveKit emits `room_started` the room's dispatch rule is
stored in LiveKit (callers can dial in), and after `room_finished` until it is deleted.

Open loop: rooms start at a fixed rate whatever the service's progress (as meetings do), each
closes `hold` seconds after it started. The emulator in this process opens and closes the rooms;
its webhooks go to the gateway process (signed, one queue per room, as LiveKit sends them); the
worker process creates and deletes the rules through the emulator's API. Both ends are read on
this process's clock: the emit time, and the time the store created or deleted the rule.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from typing import Any

from bench.harness import Stack, log
from bench.stats import line, summary


def _first_after(times: list[float], after: float) -> float | None:
    return next((t for t in times if t >= after), None)


async def _until(at: float) -> float:
    """Sleep until perf_counter reaches `at`; how late we woke (the generator's own lag)."""
    delay = at - time.perf_counter()
    if delay > 0:
        await asyncio.sleep(delay)
    return max(0.0, time.perf_counter() - at)


async def phase(
    stack: Stack, rooms: list[str], rate: float, hold: float, drain: float
) -> dict[str, Any]:
    emulator = stack.emulator
    store = emulator.timed_sip
    assert emulator.delivery is not None
    deliveries_before = len(emulator.delivery.deliveries)
    begin = time.perf_counter() + 0.5
    lags: list[float] = []

    async def one(index: int, room: str) -> None:
        lags.append(await _until(begin + index / rate))
        await emulator.create_room(room, empty_timeout=3600)
        lags.append(await _until(begin + index / rate + hold))
        await emulator.delete_room(room)

    await asyncio.gather(*(one(index, room) for index, room in enumerate(rooms)))
    # Wait (bounded) until every room's rule has come and gone, or the drain time is over.
    deadline = time.perf_counter() + drain
    while time.perf_counter() < deadline:
        if all(_first_after(store.deleted_at.get(room, []), begin) for room in rooms):
            break
        await asyncio.sleep(0.1)
    await emulator.delivery.drain(within=10)
    stack.check_alive()

    opened: list[float] = []
    closed: list[float] = []
    missing = Counter[str]()
    for room in rooms:
        started = _first_after(emulator.emitted.get(("room_started", room), []), begin)
        finished = _first_after(emulator.emitted.get(("room_finished", room), []), begin)
        assert started is not None and finished is not None
        created = _first_after(store.created_at.get(room, []), started)
        deleted = _first_after(store.deleted_at.get(room, []), finished)
        if created is None:
            missing["rule never created"] += 1
        else:
            opened.append(created - started)
        if deleted is None:
            missing["rule never deleted"] += 1
        else:
            closed.append(deleted - finished)
    records = emulator.delivery.deliveries[deliveries_before:]
    statuses = Counter(str(record.status) for record in records)
    delivered = [
        record.answered - record.emitted
        for record in records
        if record.answered is not None and record.event == "room_started"
    ]
    result: dict[str, Any] = {
        "rate_per_second": rate,
        "rooms": len(rooms),
        "hold_seconds": hold,
        "started_to_rule_stored": summary(opened),
        "finished_to_rule_deleted": summary(closed),
        "started_webhook_answered": summary(delivered),
        "webhook_statuses": dict(statuses),
        "webhook_retries": sum(record.attempts - 1 for record in records),
        "missing": dict(missing),
        "generator_lag": summary(lags),
    }
    log(line(f"{rate:g}/s room_started -> rule stored", result["started_to_rule_stored"]))
    log(line(f"{rate:g}/s room_finished -> rule deleted", result["finished_to_rule_deleted"]))
    if missing or set(statuses) != {"200"}:
        log(f"{rate:g}/s: missing {dict(missing)}, webhook answers {dict(statuses)}")
    return result


async def measure(
    stack: Stack,
    rooms: list[str],
    rates: list[float],
    seconds: dict[float, float],
    hold: float,
) -> dict[str, Any]:
    """One phase per rate over registered idle rooms (a room is used once per phase)."""
    phases = []
    for rate in rates:
        count = max(1, round(rate * seconds[rate]))
        if count > len(rooms):
            raise ValueError(f"{rate}/s for {seconds[rate]} s needs {count} rooms")
        phases.append(await phase(stack, rooms[:count], rate, hold, drain=30 + count / rate))
        await asyncio.sleep(1)  # let the continue-as-new tasks of the last rooms settle
    return {"phases": phases}
