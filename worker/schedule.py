"""The `telephony-reconcile` Temporal Schedule: a pass every TELEPHONY_RECONCILE_INTERVAL."""

from __future__ import annotations

import logging

from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleUpdate,
    ScheduleUpdateInput,
)

from telephony import contracts
from telephony.settings import Settings

log = logging.getLogger(__name__)


def reconcile_schedule(settings: Settings) -> Schedule:
    return Schedule(
        action=ScheduleActionStartWorkflow(
            contracts.RECONCILE_WORKFLOW,
            settings.reconcile_input(),
            id=contracts.RECONCILE_WORKFLOW_ID,
            task_queue=settings.telephony_task_queue,
        ),
        spec=ScheduleSpec(
            intervals=[ScheduleIntervalSpec(every=settings.telephony_reconcile_interval)]
        ),
        # One pass at a time; a pass still running when the next is due makes that one skip.
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
    )


async def ensure_reconcile_schedule(client: Client, settings: Settings) -> None:
    """Create the schedule, or bring an existing one to the configured interval and queue."""
    schedule = reconcile_schedule(settings)
    try:
        await client.create_schedule(contracts.RECONCILE_SCHEDULE_ID, schedule)
        log.info(
            "created schedule %s (every %s)",
            contracts.RECONCILE_SCHEDULE_ID,
            settings.telephony_reconcile_interval,
        )
    except ScheduleAlreadyRunningError:

        def update(_: ScheduleUpdateInput) -> ScheduleUpdate:
            return ScheduleUpdate(schedule=schedule)

        await client.get_schedule_handle(contracts.RECONCILE_SCHEDULE_ID).update(update)


async def reconcile_now(client: Client) -> None:
    """One pass right away (at worker start: whatever changed while no worker ran — LiveKit
    restarted, rules lost — is repaired at once, not at the next interval). A pass already
    running makes this one skip (the schedule's overlap policy)."""
    await client.get_schedule_handle(contracts.RECONCILE_SCHEDULE_ID).trigger()
