"""`PinLeaseWorkflow`: an open workflow with id `telephony-pin-{pin}` *is* the PIN's reservation.

Temporal allows one open workflow per id, so starting the lease is a strongly consistent
uniqueness check with no extra database. The lease ends when its owner releases it, or when the
owner room workflow (checked by id, so a run that continued-as-new still counts) is closed.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from telephony import contracts
    from telephony.models import PinLeaseRequest

# A lease's history grows by a few events per owner check; restart it well before it matters.
CHECKS_PER_RUN = 500


@workflow.defn(name=contracts.PIN_LEASE_WORKFLOW)
class PinLeaseWorkflow:
    @workflow.init
    def __init__(self, request: PinLeaseRequest) -> None:
        self._request = request
        self._released = False

    @workflow.run
    async def run(self, request: PinLeaseRequest) -> str:
        checks = 0
        while not self._released:
            try:
                await workflow.wait_condition(
                    lambda: self._released, timeout=request.check_interval
                )
            except TimeoutError:
                owner_open = await workflow.execute_activity(
                    contracts.IS_WORKFLOW_OPEN,
                    request.owner_workflow_id,
                    result_type=bool,
                    start_to_close_timeout=timedelta(seconds=30),
                    retry_policy=RetryPolicy(maximum_interval=timedelta(minutes=1)),
                )
                if not owner_open:
                    workflow.logger.info(
                        "lease released: owner %s is closed", request.owner_workflow_id
                    )
                    return "owner_closed"
                checks += 1
                if checks >= CHECKS_PER_RUN or workflow.info().is_continue_as_new_suggested():
                    await workflow.wait_condition(workflow.all_handlers_finished)
                    workflow.continue_as_new(request)
        return "released"

    @workflow.signal(name=contracts.RELEASE_LEASE_SIGNAL)
    def release(self, owner_workflow_id: str) -> None:
        # Only the owner may release: a late signal from a previous holder must not free the PIN.
        if owner_workflow_id == self._request.owner_workflow_id:
            self._released = True
