"""(b) What one dispatch-rule create costs on the LiveKit emulator as the number of stored rules
grows, against a baseline that does what the original does on every webhook (list every rule,
filter by name, then create).

Our service creates one rule per room start (no listing); the original lists every rule per
event. On the emulator the first should stay flat and the second grow with the rules. The rules
are the service's own shape: direct, wildcard, a 10-digit PIN, two attributes.

    .venv/bin/python -m bench.emulator_rules [--sizes 0,1000,10000] [--creates 200] [--lists 20]

"create" and "list-all" go over HTTP with `livekit-api` (token signing included); "store create"
is `SipStore.create_dispatch_rule` alone, without HTTP. Each timed create is deleted again
(untimed), so the number of stored rules stays the same during a size's run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from typing import Any

from livekit import api
from livekit.api.sip_service import SipService
from livekit.protocol.sip import (
    CreateSIPDispatchRuleRequest,
    DeleteSIPDispatchRuleRequest,
    ListSIPDispatchRuleRequest,
    SIPDispatchRule,
    SIPDispatchRuleDirect,
    SIPDispatchRuleInfo,
)

from bench.stats import ratio, summary
from livekit_emulator import LiveKitEmulator
from telephony.contracts import (
    MANAGED_BY_ATTRIBUTE,
    MANAGED_BY_VALUE,
    ROOM_ID_ATTRIBUTE,
    dispatch_rule_name,
)

API_KEY = "bench"
API_SECRET = "bench-secret-0123456789abcdef0123456789"


def managed_rule(room: str, pin: str) -> SIPDispatchRuleInfo:
    """A rule as our service creates it for `room` (name and attributes from the contracts)."""
    return SIPDispatchRuleInfo(
        name=dispatch_rule_name(room),
        rule=SIPDispatchRule(dispatch_rule_direct=SIPDispatchRuleDirect(room_name=room, pin=pin)),
        attributes={MANAGED_BY_ATTRIBUTE: MANAGED_BY_VALUE, ROOM_ID_ATTRIBUTE: room},
    )


def room_and_pin(index: int) -> tuple[str, str]:
    """Room number `index` and its PIN (unique per index)."""
    return f"bench-room-{index}", f"{index:010d}"


def rule(index: int) -> SIPDispatchRuleInfo:
    """The rule for room number `index`."""
    return managed_rule(*room_and_pin(index))


def fill(emu: LiveKitEmulator, start: int, stop: int) -> None:
    """Store rules `start`..`stop-1` directly (no HTTP: filling is not what is measured)."""
    for index in range(start, stop):
        emu.sip.create_dispatch_rule(CreateSIPDispatchRuleRequest(dispatch_rule=rule(index)))


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


async def baseline_create(sip: SipService, wanted: SIPDispatchRuleInfo) -> str:
    """The original's `room_started` handler: list every rule, look for the room's by name,
    create it if missing; the rule's id."""
    listed = await sip.list_dispatch_rule(ListSIPDispatchRuleRequest())
    for existing in listed.items:
        if existing.name == wanted.name:
            return existing.sip_dispatch_rule_id
    created = await sip.create_dispatch_rule(CreateSIPDispatchRuleRequest(dispatch_rule=wanted))
    return created.sip_dispatch_rule_id


async def baseline_delete(sip: SipService, name: str) -> int:
    """The original's `room_finished` handler: list every rule, delete those named `name`; how
    many it deleted."""
    listed = await sip.list_dispatch_rule(ListSIPDispatchRuleRequest())
    named = [existing for existing in listed.items if existing.name == name]
    for existing in named:
        await sip.delete_dispatch_rule(
            DeleteSIPDispatchRuleRequest(sip_dispatch_rule_id=existing.sip_dispatch_rule_id)
        )
    return len(named)


async def time_baseline(lk: api.LiveKitAPI, first_index: int, count: int) -> list[float]:
    """The original's handler: list every rule, look for the room's by name, then create."""
    samples = []
    for index in range(first_index, first_index + count):
        started = time.perf_counter()
        rule_id = await baseline_create(lk.sip, rule(index))
        samples.append(time.perf_counter() - started)
        await lk.sip.delete_dispatch_rule(
            DeleteSIPDispatchRuleRequest(sip_dispatch_rule_id=rule_id)
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


async def measure(sizes: list[int], creates: int, lists: int, log: Any = print) -> dict[str, Any]:
    """Per size: create (ours), list + filter + create (the original), store create, list-all."""
    emu = LiveKitEmulator(api_key=API_KEY, api_secret=API_SECRET)
    await emu.start(host="127.0.0.1", port=0)
    fresh = max(sizes) + 1  # indexes above every stored rule's: a timed create never conflicts
    stored = 0
    rows: list[dict[str, Any]] = []
    try:
        async with api.LiveKitAPI(emu.url, API_KEY, API_SECRET) as lk:
            await time_creates(lk, fresh, 20)  # warm-up: connection, imports
            for size in sorted(sizes):
                started = time.perf_counter()
                fill(emu, stored, size)
                fill_s = time.perf_counter() - started
                stored = size
                row: dict[str, Any] = {
                    "stored_rules": size,
                    "fill_seconds": round(fill_s, 2),
                    "create": summary(await time_creates(lk, fresh, creates)),
                    "baseline_list_filter_create": summary(
                        await time_baseline(lk, fresh, max(5, creates // 4))
                    ),
                    "store_create": summary(time_store_creates(emu, fresh, creates)),
                    "list_all": summary(await time_lists(lk, lists, size)),
                }
                rows.append(row)
                log(
                    f"{size:6d} rules: create p50 {row['create']['p50_ms']} ms, "
                    f"baseline p50 {row['baseline_list_filter_create']['p50_ms']} ms, "
                    f"list-all p50 {row['list_all']['p50_ms']} ms"
                )
    finally:
        await emu.stop()
    first = rows[0]
    for row in rows:
        row["create_vs_empty"] = ratio(row["create"]["p50_ms"], first["create"]["p50_ms"])
        row["baseline_vs_create"] = ratio(
            row["baseline_list_filter_create"]["p50_ms"], row["create"]["p50_ms"]
        )
    return {"sizes": rows}


def sizes_parser(prog: str, doc: str | None, creates: str) -> argparse.ArgumentParser:
    """The command line of a rule-cost module: --sizes, and --creates (help text `creates`)."""
    parser = argparse.ArgumentParser(prog=prog, description=doc)
    parser.add_argument(
        "--sizes",
        type=lambda text: [int(n) for n in text.split(",")],
        default=[0, 1000, 10000],
        help="stored-rule counts to measure at, comma-separated (default: 0,1000,10000)",
    )
    parser.add_argument("--creates", type=int, default=200, help=creates)
    return parser


def parse_args() -> argparse.Namespace:
    parser = sizes_parser("python -m bench.emulator_rules", __doc__, "timed creates per size")
    parser.add_argument("--lists", type=int, default=20, help="timed list-all calls per size")
    return parser.parse_args()


if __name__ == "__main__":
    args = parse_args()
    print(json.dumps(asyncio.run(measure(args.sizes, args.creates, args.lists)), indent=2))
