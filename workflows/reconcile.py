"""`ReconcileWorkflow`: compares LiveKit's managed dispatch rules with the room workflows.

Rules of rooms whose workflow is closed or unknown are orphans and are deleted here. Open rooms
are told what LiveKit holds for them (`observed_rules`) and decide themselves: re-create a rule
that vanished, delete a stray one. Deciding in the room keeps one writer per room's rule.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from telephony import contracts
    from telephony.models import ManagedRule, ObservedRules, ReconcileReport, TelephonyState

CALL_TIMEOUT = timedelta(minutes=2)
RETRY = RetryPolicy(maximum_interval=timedelta(minutes=1), maximum_attempts=20)


@workflow.defn(name=contracts.RECONCILE_WORKFLOW)
class ReconcileWorkflow:
    @workflow.run
    async def run(self) -> ReconcileReport:
        rules = await workflow.execute_activity(
            contracts.LIST_MANAGED_RULES,
            result_type=list[ManagedRule],
            start_to_close_timeout=CALL_TIMEOUT,
            retry_policy=RETRY,
        )
        rule_ids_by_room: dict[str, list[str]] = defaultdict(list)
        for rule in rules:
            rule_ids_by_room[rule.room_id].append(rule.rule_id)

        open_rooms = set(
            await workflow.execute_activity(
                contracts.FILTER_OPEN_ROOMS,
                sorted(rule_ids_by_room),
                result_type=list[str],
                start_to_close_timeout=CALL_TIMEOUT,
                retry_policy=RETRY,
            )
        )
        orphans: list[str] = []
        notified: list[str] = []
        for room_id, rule_ids in sorted(rule_ids_by_room.items()):
            if room_id in open_rooms:
                await self._tell_room(room_id, rule_ids)
                notified.append(room_id)
                continue
            for rule_id in rule_ids:
                await workflow.execute_activity(
                    contracts.DELETE_DISPATCH_RULE,
                    rule_id,
                    result_type=bool,
                    start_to_close_timeout=CALL_TIMEOUT,
                    retry_policy=RETRY,
                )
                orphans.append(rule_id)

        # Rooms that believe their rule exists but LiveKit has none for them.
        believed_open = await workflow.execute_activity(
            contracts.LIST_ROOMS_IN_STATE,
            TelephonyState.OPEN.value,
            result_type=list[str],
            start_to_close_timeout=CALL_TIMEOUT,
            retry_policy=RETRY,
        )
        for room_id in sorted(set(believed_open) - set(rule_ids_by_room)):
            await self._tell_room(room_id, [])
            notified.append(room_id)

        if orphans:
            workflow.logger.info("deleted %d orphan dispatch rule(s)", len(orphans))
        return ReconcileReport(
            managed_rules=len(rules), orphans_deleted=orphans, rooms_notified=notified
        )

    async def _tell_room(self, room_id: str, rule_ids: list[str]) -> None:
        handle = workflow.get_external_workflow_handle(contracts.room_workflow_id(room_id))
        try:
            await handle.signal(contracts.OBSERVED_RULES_SIGNAL, ObservedRules(rule_ids=rule_ids))
        except Exception as exc:
            workflow.logger.info("room workflow closed before it could be told (%s)", exc)
