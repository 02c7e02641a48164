"""Benchmark: registration latency and throughput, and how fast a room's rule follows its life.

Runs the real stack in one process: Temporal CLI dev server, the worker, the LiveKit emulator.
Timings on a shared 2-core machine are noisy: read them as orders of magnitude, not as limits.

    .venv/bin/python -m bench.lifecycle [--rooms 200] [--sessions 30]
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from livekit_emulator import LiveKitEmulator
from telephony.client import TelephonyClient
from telephony.contracts import SEARCH_ATTRIBUTES
from telephony.models import LiveKitEvent, LiveKitEventKind
from tests.fixtures.livekit import EMULATOR_API_KEY, EMULATOR_API_SECRET
from tests.fixtures.stack import stack_settings
from tests.fixtures.temporal import installed_binary
from worker.app import running_worker


def summary(name: str, samples: list[float]) -> str:
    ordered = sorted(samples)
    p95 = ordered[max(0, round(0.95 * len(ordered)) - 1)]
    return (
        f"{name}: n={len(samples)} p50={statistics.median(ordered) * 1000:.0f} ms "
        f"p95={p95 * 1000:.0f} ms max={ordered[-1] * 1000:.0f} ms"
    )


async def timed(call: Callable[[], Awaitable[object]]) -> float:
    start = time.perf_counter()
    await call()
    return time.perf_counter() - start


async def until_equal(probe: Callable[[], int], expected: int, limit: float = 30.0) -> None:
    deadline = time.perf_counter() + limit
    while probe() != expected:
        if time.perf_counter() > deadline:
            raise TimeoutError("condition not met")
        await asyncio.sleep(0.005)


def rule_count(emulator: LiveKitEmulator, room: str) -> int:
    return sum(r.rule.dispatch_rule_direct.room_name == room for r in emulator.dispatch_rules())


async def main(rooms: int, sessions: int) -> None:
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=installed_binary("temporal"),
        data_converter=pydantic_data_converter,
        search_attributes=SEARCH_ATTRIBUTES,
    )
    emulator = LiveKitEmulator(api_key=EMULATOR_API_KEY, api_secret=EMULATOR_API_SECRET)
    await emulator.start()
    try:
        settings = stack_settings(emulator)
        client = TelephonyClient(env.client, settings)
        async with running_worker(settings, env.client):
            await client.register_room("warm-up")
            sequential = [
                await timed(lambda: client.register_room(str(uuid.uuid4()))) for _ in range(30)
            ]
            print(summary("register (one at a time)", sequential))

            start = time.perf_counter()
            await asyncio.gather(*(client.register_room(str(uuid.uuid4())) for _ in range(rooms)))
            elapsed = time.perf_counter() - start
            print(f"register ({rooms} at once): {elapsed:.1f} s, {rooms / elapsed:.0f} rooms/s")

            opened: list[float] = []
            closed: list[float] = []
            for _ in range(sessions):
                room = str(uuid.uuid4())
                await client.register_room(room)

                rules = functools.partial(rule_count, emulator, room)

                for kind, expected, samples in (
                    (LiveKitEventKind.STARTED, 1, opened),
                    (LiveKitEventKind.FINISHED, 0, closed),
                ):
                    event = LiveKitEvent(
                        kind=kind,
                        room_sid=f"RM_{room[:8]}",
                        event_id=uuid.uuid4().hex,
                        created_at=datetime.now(UTC),
                    )
                    begin = time.perf_counter()
                    await client.send_event(room, event)
                    await until_equal(rules, expected)
                    samples.append(time.perf_counter() - begin)
            print(summary("room_started signal -> rule in LiveKit", opened))
            print(summary("room_finished signal -> rule deleted", closed))
    finally:
        await emulator.stop()
        await env.shutdown()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rooms", type=int, default=200)
    parser.add_argument("--sessions", type=int, default=30)
    arguments = parser.parse_args()
    asyncio.run(main(arguments.rooms, arguments.sessions))
