"""(b) on the real livekit-server: what a room start and a room end cost LiveKit as the number
of stored rules grows — ours against the floor and against the original's handlers, on one server
in one run.

LiveKit checks every create against the stored rules (a wildcard rule's PIN against every other
wildcard rule), so even a bare create grows with the rules; the question is whether ours adds
anything to it, and what listing every rule adds to the original's.

Per stored-rule count (rules of our shape, created untimed with bounded concurrency), rounds of:
- floor: a bare `CreateSIPDispatchRule` of a rule in our shape (and its bare delete);
- ours: `activities.dispatch_rules.ensure_dispatch_rule` — what the activity does for a room
  start: one create — then `delete_dispatch_rule` for the room's end: one delete by id;
- baseline (every few rounds): the original's webhook handlers — list every rule, filter by name,
  then create; and list, filter by name, then delete.
The three are interleaved so that the load of a shared machine falls on each alike. Every timed
rule is deleted again, so the stored count holds during a size; the server is stopped and its
Redis (nothing on disk) discarded at the end.

    .venv/bin/python -m bench.livekit_rules [--sizes 0,1000,10000] [--creates 200]
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import itertools
import json
import time
from collections.abc import Callable
from typing import Any

from livekit import api
from livekit.protocol.sip import (
    CreateSIPDispatchRuleRequest,
    DeleteSIPDispatchRuleRequest,
    ListSIPDispatchRuleRequest,
)

from activities.dispatch_rules import delete_dispatch_rule, ensure_dispatch_rule
from bench.emulator_rules import (
    baseline_create,
    baseline_delete,
    room_and_pin,
    rule,
    sizes_parser,
)
from bench.harness import bounded, livekit_unavailable, real_livekit_server
from bench.stats import ratio, summary
from telephony.contracts import dispatch_rule_name
from telephony.models import EnsureRuleRequest

FILL_CONCURRENCY = 4  # two cores: more only queues in the server
TIMINGS = (
    "floor_create",
    "ours_create",
    "baseline_create",
    "floor_delete",
    "ours_delete",
    "baseline_delete",
)


async def _create(lk: api.LiveKitAPI, index: int) -> str:
    request = CreateSIPDispatchRuleRequest(dispatch_rule=rule(index))
    return (await lk.sip.create_dispatch_rule(request)).sip_dispatch_rule_id


async def _fill(lk: api.LiveKitAPI, start: int, stop: int) -> None:
    await bounded(
        [functools.partial(_create, lk, index) for index in range(start, stop)],
        FILL_CONCURRENCY,
    )


async def _count(lk: api.LiveKitAPI) -> int:
    return len((await lk.sip.list_dispatch_rule(ListSIPDispatchRuleRequest())).items)


async def _round(
    lk: api.LiveKitAPI, indexes: itertools.count[int], baseline: bool
) -> dict[str, float]:
    """One floor, one ours and (if `baseline`) one baseline create + delete, in seconds."""
    clock = time.perf_counter
    times: dict[str, float] = {}
    index = next(indexes)
    started = clock()
    rule_id = await _create(lk, index)
    times["floor_create"] = clock() - started
    started = clock()
    await lk.sip.delete_dispatch_rule(DeleteSIPDispatchRuleRequest(sip_dispatch_rule_id=rule_id))
    times["floor_delete"] = clock() - started

    room, pin = room_and_pin(next(indexes))
    started = clock()
    ensured = await ensure_dispatch_rule(
        lk.sip, EnsureRuleRequest(room_id=room, pin=pin), trunk_ids=[], hide_phone_number=False
    )
    times["ours_create"] = clock() - started
    assert not ensured.adopted
    started = clock()
    assert await delete_dispatch_rule(lk.sip, ensured.rule_id)
    times["ours_delete"] = clock() - started

    if baseline:
        index = next(indexes)
        started = clock()
        await baseline_create(lk.sip, rule(index))
        times["baseline_create"] = clock() - started
        started = clock()
        deleted = await baseline_delete(lk.sip, dispatch_rule_name(room_and_pin(index)[0]))
        times["baseline_delete"] = clock() - started
        assert deleted == 1
    return times


def _ratios(row: dict[str, Any]) -> None:
    p50 = {name: row[name]["p50_ms"] for name in TIMINGS}
    p95 = {name: row[name]["p95_ms"] for name in TIMINGS}
    for what in ("create", "delete"):
        row[f"ours_vs_floor_{what}"] = ratio(p50[f"ours_{what}"], p50[f"floor_{what}"])
        row[f"ours_vs_floor_{what}_p95"] = ratio(p95[f"ours_{what}"], p95[f"floor_{what}"])
        row[f"baseline_vs_ours_{what}"] = ratio(p50[f"baseline_{what}"], p50[f"ours_{what}"])


async def _measure_on(
    url: str, key: str, secret: str, sizes: list[int], creates: int, log: Callable[[str], None]
) -> list[dict[str, Any]]:
    every = max(1, creates // max(5, creates // 4))  # a baseline round every `every` rounds
    indexes = itertools.count(max(sizes) + 1)  # above every stored rule's: never a conflict
    rows: list[dict[str, Any]] = []
    stored = 0
    async with api.LiveKitAPI(url, key, secret) as lk:
        for number in range(10):  # warm-up: connection, imports, the server's first requests
            await _round(lk, indexes, baseline=number % 2 == 0)
        for size in sorted(sizes):
            started = time.perf_counter()
            await _fill(lk, stored, size)
            fill_s = time.perf_counter() - started
            stored = size
            counted = await _count(lk)
            assert counted == size, (counted, size)
            samples: dict[str, list[float]] = {name: [] for name in TIMINGS}
            for number in range(creates):
                for name, seconds in (await _round(lk, indexes, number % every == 0)).items():
                    samples[name].append(seconds)
            lists: list[float] = []
            for _ in range(max(5, creates // 10)):
                started = time.perf_counter()
                await _count(lk)
                lists.append(time.perf_counter() - started)
            row: dict[str, Any] = {
                "stored_rules": size,
                "fill_seconds": round(fill_s, 1),
                "fill_concurrency": FILL_CONCURRENCY,
                **{name: summary(samples[name]) for name in TIMINGS},
                "list_all": summary(lists),
            }
            _ratios(row)
            rows.append(row)
            log(
                f"real livekit-server, {size} rules (filled in {fill_s:.1f} s): create p50 "
                f"floor {row['floor_create']['p50_ms']} / ours {row['ours_create']['p50_ms']} / "
                f"baseline {row['baseline_create']['p50_ms']} ms; delete p50 ours "
                f"{row['ours_delete']['p50_ms']} / baseline {row['baseline_delete']['p50_ms']} ms"
            )
    return rows


async def measure(
    sizes: list[int], creates: int, log: Callable[[str], None] = print
) -> dict[str, Any]:
    """The real server's figures per size, or `{"skipped": reason}` when it is not built."""
    reason = await asyncio.to_thread(livekit_unavailable)
    if reason is not None:
        log(f"real livekit-server: not measured ({reason})")
        return {"skipped": reason}
    with real_livekit_server() as info:
        rows = await _measure_on(
            info["LIVEKIT_URL"],
            info["LIVEKIT_API_KEY"],
            info["LIVEKIT_API_SECRET"],
            sizes,
            creates,
            log,
        )
        version = info.get("LIVEKIT_REAL_VERSION", "?")
    return {"server": f"livekit-server {version} + Redis, loopback", "sizes": rows}


def parse_args() -> argparse.Namespace:
    return sizes_parser(
        "python -m bench.livekit_rules", __doc__, "timed rounds per size"
    ).parse_args()


if __name__ == "__main__":
    args = parse_args()
    print(json.dumps(asyncio.run(measure(args.sizes, args.creates)), indent=2))
