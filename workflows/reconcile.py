"""`ReconcileWorkflow`: brings LiveKit's dispatch rules, the rooms' sessions and the PIN leases
back in step with the room workflows, page by page.

Each page is one activity (`activities/reconcile.py`) that acts on up to `page_size` items and
returns counts and a cursor; the workflow only walks the stages and pages, and continues as new
every `pages_per_run` pages. A run's history is therefore bounded by the pages, not the rooms:
about 6 events per page, so at most ~6 * pages_per_run + 10 events per run (610 with the
defaults), whatever the number of rooms. Deciding in the rooms (they are told, and repair their
own rule) keeps one writer per rule.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from telephony import contracts
    from telephony.models import (
        ReconcileInput,
        ReconcilePage,
        ReconcilePageRequest,
        ReconcileReport,
        ReconcileStage,
    )

PAGE_TIMEOUT = timedelta(minutes=5)
RETRY = RetryPolicy(maximum_interval=timedelta(minutes=1), maximum_attempts=20)

STAGES = list(ReconcileStage)
ACTIVITY_OF_STAGE = {
    ReconcileStage.SENTINEL: contracts.RECONCILE_SENTINEL,
    ReconcileStage.RULES: contracts.RECONCILE_RULES,
    ReconcileStage.ROOMS: contracts.RECONCILE_ROOMS,
    ReconcileStage.SESSIONS: contracts.RECONCILE_SESSIONS,
    ReconcileStage.LEASES: contracts.RECONCILE_LEASES,
}


@workflow.defn(name=contracts.RECONCILE_WORKFLOW)
class ReconcileWorkflow:
    @workflow.run
    async def run(self, input: ReconcileInput | None = None) -> ReconcileReport:
        state = input or ReconcileInput()
        stage: ReconcileStage | None = state.stage
        cursor, report = state.cursor, state.report
        pages = 0
        while stage is not None:
            if pages >= state.pages_per_run:
                workflow.continue_as_new(
                    state.model_copy(
                        update={
                            "stage": stage,
                            "cursor": cursor,
                            "report": report.model_copy(update={"runs": report.runs + 1}),
                        }
                    )
                )
            page = await workflow.execute_activity(
                ACTIVITY_OF_STAGE[stage],
                ReconcilePageRequest(cursor=cursor, page_size=state.page_size),
                result_type=ReconcilePage,
                summary=f"reconcile {stage.value} page {pages + 1}",
                start_to_close_timeout=PAGE_TIMEOUT,
                retry_policy=RETRY,
            )
            report = report.merged(page.report)
            pages += 1
            if page.next_cursor is None:
                stage, cursor = _after(stage), ""
            else:
                cursor = page.next_cursor
        workflow.logger.info(
            "reconciled: %d managed rule(s), %d orphan(s) deleted, %d room(s) told, "
            "%d session(s) repaired, %d lease(s) released",
            report.managed_rules,
            report.orphans_deleted,
            report.rooms_notified,
            report.sessions_repaired,
            report.leases_released,
        )
        return report


def _after(stage: ReconcileStage) -> ReconcileStage | None:
    index = STAGES.index(stage) + 1
    return STAGES[index] if index < len(STAGES) else None
