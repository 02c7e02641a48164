"""Benchmark: what one dispatch-rule create and one list-all cost on the LiveKit emulator, as the
number of stored rules grows.

Our service creates one rule per room start (no listing); the original design lists every rule
per event. On the emulator the first should stay flat and the second grow with the rules. The
rules are the service's own shape: direct, wildcard, a 10-digit PIN, two attributes.

    .venv/bin/python -m bench.emulator_rules [--sizes 0,1000,10000] [--creates 200] [--lists 20]

"create" and "list-all" go over HTTP with `livekit-api` (token signing included); "store create"
is `SipStore.create_dispatch_rule` alone, without HTTP. Each timed create is deleted again
(untimed), so the number of stored rules stays the same during a size's run.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Callable

from livekit import api
from livekit.protocol.sip import (
    CreateSIPDispatchRuleRequest,
    DeleteSIPDispatchRuleRequest,
    ListSIPDispatchRuleRequest,
    SIPDispatchRule,
    SIPDispatchRuleDirect,
    SIPDispatchRuleInfo,
)

from livekit_emulator import LiveKitEmulator

API_KEY = "bench"
API_SECRET = "bench-secret-0123456789abcdef0123456789"


def rule(index: int) -> SIPDispatchRuleInfo:
    """The rule our service would create for room number `index` (PINs unique per index)."""
    room = f"bench-room-{index}"
    return SIPDispatchRuleInfo(
        name=f"telephony:{room}",
        rule=SIPDispatchRule(
            dispatch_rule_direct=SIPDispatchRuleDirect(room_name=room, pin=f"{index:010d}")
        ),
        attributes={"telephony.managed_by": "meet-telephony", "telephony.room_id": room},
    )


async def fill(emu: LiveKitEmulator, start: int, stop: int) -> None:
    for index in range(start, stop):
        await emu.create_dispatch_rule(rule(index))


def ms(samples: list[float]) -> str:
    ordered = sorted(samples)
    p95 = ordered[max(0, round(0.95 * len(ordered)) - 1)]
    return f"p50 {statistics.median(ordered) * 1000:7.2f} ms  p95 {p95 * 1000:7.2f} ms"


async def time_creates(lk: api.LiveKitAPI, first_index: int, count: int) -> list[float]:
    samples = []
    for index in range(first_index, first_index + count):
        request = CreateSIPDispatchRuleRequest(dispatch_rule=rule(index))
        started = time.perf_counter()
        created = await lk.sip.create_dispatch_rule(request)
        samples.append(time.perf_counter() - started)
        await lk.sip.delete_dispatch_rule(
            DeleteSIPDispatchRuleRequest(sip_dispatch_rule_id=created.sip_dispatch_rule_id)
        )
    return samples


def time_store_creates(emu: LiveKitEmulator, first_index: int, count: int) -> list[float]:
    samples = []
    for index in range(first_index, first_index + count):
        request = CreateSIPDispatchRuleRequest(dispatch_rule=rule(index))
        started = time.perf_counter()
        created = emu.sip.create_dispatch_rule(request)
        samples.append(time.perf_counter() - started)
        emu.sip.delete_dispatch_rule(
            DeleteSIPDispatchRuleRequest(sip_dispatch_rule_id=created.sip_dispatch_rule_id)
        )
    return samples


async def time_lists(lk: api.LiveKitAPI, count: int, expected: int) -> list[float]:
    samples = []
    for _ in range(count):
        started = time.perf_counter()
        listed = await lk.sip.list_dispatch_rule(ListSIPDispatchRuleRequest())
        samples.append(time.perf_counter() - started)
        assert len(listed.items) == expected, (len(listed.items), expected)
    return samples


async def main(
    sizes: list[int],
    creates: int,
    lists: int,
    filler: Callable[[LiveKitEmulator, int, int], object] = fill,
) -> None:
    emu = LiveKitEmulator(api_key=API_KEY, api_secret=API_SECRET)
    await emu.start(host="127.0.0.1", port=0)
    # Indexes above every stored rule's, so a timed create never conflicts.
    fresh = max(sizes) + 1
    stored = 0
    try:
        async with api.LiveKitAPI(emu.url, API_KEY, API_SECRET) as lk:
            await time_creates(lk, fresh, 20)  # warm-up: connection, imports
            for size in sorted(sizes):
                started = time.perf_counter()
                result = filler(emu, stored, size)
                if asyncio.iscoroutine(result):
                    await result
                fill_s = time.perf_counter() - started
                stored = size
                over_http = await time_creates(lk, fresh, creates)
                in_store = time_store_creates(emu, fresh, creates)
                listing = await time_lists(lk, lists, size)
                print(
                    f"{size:6d} rules (filled in {fill_s:6.1f} s)  "
                    f"create {ms(over_http)} | store create {ms(in_store)} | "
                    f"list-all {ms(listing)}",
                    flush=True,
                )
    finally:
        await emu.stop()


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.emulator_rules", description=__doc__)
    parser.add_argument(
        "--sizes",
        type=lambda text: [int(n) for n in text.split(",")],
        default=[0, 1000, 10000],
        help="stored-rule counts to measure at, comma-separated (default: 0,1000,10000)",
    )
    parser.add_argument("--creates", type=int, default=200, help="timed creates per size")
    parser.add_argument("--lists", type=int, default=20, help="timed list-all calls per size")
    return parser.parse_args()


if __name__ == "__main__":
    args = parse_args()
    asyncio.run(main(args.sizes, args.creates, args.lists))
