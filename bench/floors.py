"""(c) Floors: the least each measured path could cost on this machine.

- a bare `CreateSIPDispatchRule` round trip (livekit-api, the service's rule shape);
- a bare Temporal signal → empty activity → completion (one workflow task for the signal, one
  activity, one task for its result);
- a bare update-with-start of an empty workflow, one at a time and with 20 concurrent callers.

The floor workflows run on a worker inside this process, on their own task queue, sharing the
connection of this process's client (`connect_temporal`), on the same Temporal server as the
service.
"""

from __future__ import annotations

import asyncio
import secrets
import time
import uuid
from typing import Any

from livekit import api
from livekit.protocol.sip import DeleteSIPDispatchRuleRequest
from temporalio.client import Client, WithStartWorkflowOperation
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.worker import Worker

from activities.dispatch_rules import create_request
from bench import floor_workflows
from bench.floor_workflows import SignalFloorWorkflow, UpdateFloorWorkflow, empty_activity
from bench.harness import bounded, log
from bench.stats import line, median_of, summary


def random_pin() -> str:
    # 11 digits: never one of the 10-digit PINs the service draws, nor a filler rule's.
    return "".join(secrets.choice("0123456789") for _ in range(11))


async def bare_create(url: str, key: str, secret: str, samples: int) -> dict[str, Any]:
    """Create round trips (each rule deleted again, untimed)."""
    times: list[float] = []
    async with api.LiveKitAPI(url, key, secret) as lk:
        for index in range(samples + 10):
            room = f"floor-{uuid.uuid4()}"
            request = create_request(room, random_pin(), trunk_ids=[], hide_phone_number=False)
            started = time.perf_counter()
            created = await lk.sip.create_dispatch_rule(request)
            elapsed = time.perf_counter() - started
            await lk.sip.delete_dispatch_rule(
                DeleteSIPDispatchRuleRequest(sip_dispatch_rule_id=created.sip_dispatch_rule_id)
            )
            if index >= 10:  # the first calls open the connection
                times.append(elapsed)
    return summary(times)


async def _signal_floor(client: Client, task_queue: str, samples: int) -> dict[str, Any]:
    to_activity: list[float] = []
    to_completion: list[float] = []
    for index in range(samples + 5):
        workflow_id = f"bench-signal-floor-{uuid.uuid4()}"
        handle = await client.start_workflow(
            SignalFloorWorkflow.run, id=workflow_id, task_queue=task_queue
        )
        # Let the first task finish, so that the signal gets a task of its own as in a room.
        await asyncio.sleep(0.05)
        started = time.perf_counter()
        await handle.signal(SignalFloorWorkflow.signal_go)
        await handle.result()
        finished = time.perf_counter()
        ran = floor_workflows.activity_ran_at.pop(workflow_id)
        if index >= 5:
            to_activity.append(ran - started)
            to_completion.append(finished - started)
    return {"to_activity": summary(to_activity), "to_completion": summary(to_completion)}


async def _update_with_start(client: Client, task_queue: str) -> float:
    operation: WithStartWorkflowOperation[Any, Any] = WithStartWorkflowOperation(
        UpdateFloorWorkflow.run,
        id=f"bench-update-floor-{uuid.uuid4()}",
        task_queue=task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
    )
    started = time.perf_counter()
    await client.execute_update_with_start_workflow(
        UpdateFloorWorkflow.register, start_workflow_operation=operation
    )
    return time.perf_counter() - started


async def _update_floor(
    client: Client, task_queue: str, sequential: int, totals: dict[int, int], repeats: int
) -> dict[str, Any]:
    for _ in range(5):
        await _update_with_start(client, task_queue)
    runs: dict[str, list[dict[str, Any]]] = {}
    for _ in range(repeats):
        one = [await _update_with_start(client, task_queue) for _ in range(sequential)]
        runs.setdefault("c1", []).append(
            {**summary(one), "clients": 1, "total": sequential, "per_second": None}
        )
        for concurrency, total in sorted(totals.items()):
            started = time.perf_counter()
            concurrent = await bounded(
                [lambda: _update_with_start(client, task_queue) for _ in range(total)],
                concurrency,
            )
            elapsed = time.perf_counter() - started
            runs.setdefault(f"c{concurrency}", []).append(
                {
                    **summary(concurrent),
                    "clients": concurrency,
                    "total": total,
                    "seconds": round(elapsed, 2),
                    "per_second": round(total / elapsed, 1),
                }
            )
    return {name: median_of(found) for name, found in runs.items()}


async def temporal_floors(
    client: Client,
    *,
    signal_samples: int,
    update_sequential: int,
    update_totals: dict[int, int],
    repeats: int,
) -> dict[str, Any]:
    task_queue = f"bench-floor-{uuid.uuid4().hex[:8]}"
    worker = Worker(
        client,
        task_queue=task_queue,
        workflows=[SignalFloorWorkflow, UpdateFloorWorkflow],
        activities=[empty_activity],
    )
    async with worker:
        signal = await _signal_floor(client, task_queue, signal_samples)
        log(line("floor: signal -> empty activity ran", signal["to_activity"]))
        log(line("floor: signal -> activity -> completion", signal["to_completion"]))
        update = await _update_floor(client, task_queue, update_sequential, update_totals, repeats)
        for name, figures in update.items():
            log(
                f"floor: update-with-start {name}: p50 {figures['p50_ms']} ms, "
                f"p95 {figures['p95_ms']} ms, {figures.get('per_second')}/s (medians)"
            )
    return {"signal_activity": signal, "update_with_start": update}
