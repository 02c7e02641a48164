"""(e) Idle cost: N registered rooms with their PIN leases and no meeting. For a window of
`seconds`, count the workflow tasks, activities and local activities the worker runs (its SDK
metrics, read before and after), and read the histories of a sample of rooms and leases for
timers still pending (TimerStarted with neither TimerFired nor TimerCanceled). Idle rooms that
cost nothing show 0 of each; the old design woke every lease every 10 minutes (N/600 per second).
"""

from __future__ import annotations

import asyncio
import functools
import random
import time
from typing import Any

from temporalio.api.enums.v1 import EventType

from bench.harness import Stack, bounded, log
from telephony.contracts import room_workflow_id

# The worker's SDK metrics that count work (counters, summed over their labels).
COUNTERS = {
    "workflow_tasks": "temporal_workflow_task_execution_latency_count",
    "activities": "temporal_activity_task_received",
    "local_activities": "temporal_local_activity_total",
}


async def pending_timers(stack: Stack, workflow_id: str) -> int:
    """Timers started and not yet fired or cancelled in the current run's history."""
    history = await stack.client.get_workflow_handle(workflow_id).fetch_history()
    open_timers: set[str] = set()
    for event in history.events:
        if event.event_type == EventType.EVENT_TYPE_TIMER_STARTED:
            open_timers.add(event.timer_started_event_attributes.timer_id)
        elif event.event_type == EventType.EVENT_TYPE_TIMER_FIRED:
            open_timers.discard(event.timer_fired_event_attributes.timer_id)
        elif event.event_type == EventType.EVENT_TYPE_TIMER_CANCELED:
            open_timers.discard(event.timer_canceled_event_attributes.timer_id)
    return len(open_timers)


async def _counters(stack: Stack) -> dict[str, float]:
    metrics = await stack.worker_metrics()
    return {name: metrics.get(metric, 0.0) for name, metric in COUNTERS.items()}


async def measure(
    stack: Stack, rooms: dict[str, str], seconds: float, sample: int, settle: float = 5.0
) -> dict[str, Any]:
    """`rooms`: room id -> PIN of every registered idle room (its lease id is derived)."""
    await asyncio.sleep(settle)  # the last registrations' tasks finish
    stack.check_alive()
    memory_before = stack.memory()
    before = await _counters(stack)
    started = time.perf_counter()
    await asyncio.sleep(seconds)
    elapsed = time.perf_counter() - started
    after = await _counters(stack)
    stack.check_alive()
    per_minute = {name: round((after[name] - before[name]) * 60 / elapsed, 2) for name in COUNTERS}
    chosen = random.sample(sorted(rooms), min(sample, len(rooms)))
    ids = [room_workflow_id(room) for room in chosen]
    ids += [stack.settings.pin_lease_id(rooms[room]) for room in chosen]
    timers = await bounded(
        [functools.partial(pending_timers, stack, workflow_id) for workflow_id in ids],
        20,
    )
    result = {
        "idle_rooms": len(rooms),
        "window_seconds": round(elapsed, 1),
        "per_minute": per_minute,
        "counts_in_window": {name: after[name] - before[name] for name in COUNTERS},
        "histories_read": len(ids),
        "pending_timers_in_sample": sum(timers),
        "memory": memory_before,
    }
    log(
        f"idle: {len(rooms)} rooms for {elapsed:.0f} s: {per_minute} per minute; "
        f"{sum(timers)} pending timer(s) in {len(ids)} histories; memory {memory_before}"
    )
    return result
