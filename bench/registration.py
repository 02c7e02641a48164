"""(d) Registration: `PUT /api/v1/rooms/{id}` through the gateway process and
`TelephonyClient.register_room` in this process, one at a time and with concurrent callers
(closed loop: each caller sends its next registration when the previous one answered).

Each measurement is repeated; the figures are the medians over the repeats (every repeat is in
the JSON). Every room registered stays registered and idle (the later sections use them).
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

from bench.harness import Stack, bounded, log, room_ids
from bench.stats import line, median_of, summary


async def put_room(stack: Stack, room: str, statuses: Counter[int], pins: dict[str, str]) -> float:
    started = time.perf_counter()
    async with stack.session.put(
        f"{stack.gateway_url}/api/v1/rooms/{room}", headers=stack.api_headers
    ) as response:
        body = await response.json(content_type=None) if response.status == 200 else None
        statuses[response.status] += 1
    elapsed = time.perf_counter() - started
    if body is not None:
        pins[room] = body["pin"]
    return elapsed


async def register_direct(stack: Stack, room: str, pins: dict[str, str]) -> float:
    started = time.perf_counter()
    info = await stack.telephony.register_room(room)
    elapsed = time.perf_counter() - started
    pins[room] = info.pin
    return elapsed


async def one_run(
    stack: Stack, path: str, concurrency: int, total: int, pins: dict[str, str]
) -> dict[str, Any]:
    """`total` registrations of new rooms by `concurrency` closed-loop callers."""
    rooms = room_ids(f"reg-{path}-c{concurrency}", total)
    statuses: Counter[int] = Counter()
    if path == "http":
        calls = [lambda room=room: put_room(stack, room, statuses, pins) for room in rooms]
    else:
        calls = [lambda room=room: register_direct(stack, room, pins) for room in rooms]
    started = time.perf_counter()
    latencies = await bounded(calls, concurrency)
    elapsed = time.perf_counter() - started
    result = {
        **summary(latencies),
        "clients": concurrency,
        "total": total,
        "seconds": round(elapsed, 2),
        "per_second": round(total / elapsed, 1),
    }
    if path == "http":
        result["http_statuses"] = {str(code): n for code, n in sorted(statuses.items())}
    return result


# (path, concurrency) measured, in order; "total" comes from the sizes given to `measure`.
PLAN = [("direct", 1), ("http", 1), ("direct", 20), ("http", 20), ("direct", 200)]


async def measure(
    stack: Stack, *, sequential: int, totals: dict[int, int], repeats: int
) -> tuple[dict[str, Any], dict[str, str]]:
    """The figures, and room id -> PIN of every room registered (idle from now on)."""
    pins: dict[str, str] = {}
    runs: dict[str, list[dict[str, Any]]] = {}
    for repeat in range(repeats):
        for path, concurrency in PLAN:
            total = sequential if concurrency == 1 else totals.get(concurrency, 0)
            if not total:
                continue
            run = await one_run(stack, path, concurrency, total, pins)
            runs.setdefault(f"{path}_c{concurrency}", []).append(run)
            log(
                line(f"register {path}, {concurrency} client(s), repeat {repeat + 1}", run)
                + f", {run['per_second']} rooms/s"
            )
        stack.check_alive()
    return {name: median_of(found) for name, found in runs.items()}, pins
