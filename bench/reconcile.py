"""(e) One reconciliation pass over N orphan managed rules on the emulator (rules that carry the
service's attributes but belong to no registered room), besides every room and lease registered
earlier in the run: wall time, what the report says, and the history length of each run of the
reconcile workflow (continue-as-new keeps each run far below Temporal's 51,200-event limit).

The orphans are put straight into the emulator's store (filling is not what is measured).
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from livekit.protocol.sip import (
    CreateSIPDispatchRuleRequest,
    SIPDispatchRuleInfo,
)

from bench.emulator_rules import managed_rule
from bench.harness import Stack, log
from telephony import contracts


def _orphan(index: int) -> SIPDispatchRuleInfo:
    # 12 digits: never a PIN the service draws, nor another bench rule's.
    return managed_rule(f"orphan-{uuid.uuid4()}", f"9{index:011d}")


async def _runs(stack: Stack, workflow_id: str) -> list[dict[str, Any]]:
    """Every run of one workflow id (continue-as-new chain): its history length and status."""
    runs: list[dict[str, Any]] = []
    query = f"WorkflowId = '{workflow_id}'"
    async for execution in stack.client.list_workflows(query):
        handle = stack.client.get_workflow_handle(workflow_id, run_id=execution.run_id)
        info = (await handle.describe()).raw_description.workflow_execution_info
        runs.append(
            {
                "run_id": execution.run_id,
                "status": execution.status.name if execution.status else None,
                "history_events": info.history_length,
                "history_bytes": info.history_size_bytes,
            }
        )
    return runs


async def measure(stack: Stack, orphans: int) -> dict[str, Any]:
    store = stack.emulator.sip
    before = len(store.sorted_rules())
    started = time.perf_counter()
    for index in range(orphans):
        store.create_dispatch_rule(CreateSIPDispatchRuleRequest(dispatch_rule=_orphan(index)))
    log(f"reconcile: stored {orphans} orphan rules in {time.perf_counter() - started:.1f} s")

    started = time.perf_counter()
    report = await stack.telephony.reconcile()
    wall = time.perf_counter() - started
    stack.check_alive()
    left = len(store.sorted_rules())
    # The manual pass's workflow id: the client's, found again by prefix (newest first).
    prefix = f"{contracts.RECONCILE_WORKFLOW_ID}-manual-"
    workflow_id = ""
    async for execution in stack.client.list_workflows(
        f"WorkflowId STARTS_WITH '{prefix}'", limit=1
    ):
        workflow_id = execution.id
    runs = await _runs(stack, workflow_id) if workflow_id else []
    events = [run["history_events"] for run in runs]
    result = {
        "orphan_rules": orphans,
        "rules_before": before,
        "rules_after": left,
        "wall_seconds": round(wall, 2),
        "report": report.model_dump(
            exclude={"orphan_sample", "notified_sample", "repaired_sample", "released_sample"}
        ),
        "runs": len(runs),
        "events_per_run": events,
        "max_events_per_run": max(events) if events else None,
        "max_history_bytes": max((run["history_bytes"] for run in runs), default=None),
    }
    log(
        f"reconcile: {orphans} orphans in {wall:.1f} s, {report.orphans_deleted} deleted, "
        f"{len(runs)} run(s), events per run {events}"
    )
    return result
