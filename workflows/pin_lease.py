"""`PinLeaseWorkflow`: an open workflow whose id is derived from a PIN *is* the PIN's reservation.

Temporal allows one open workflow per id, so starting the lease (`activities/pins.py`) is a
strongly consistent uniqueness check with no extra database. The lease holds no timer: an idle
room's PIN costs nothing. It ends when its owner releases it; a lease whose owner is gone, or
does not list it any more, is released by reconciliation (docs/ARCHITECTURE.md).
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from telephony import contracts
    from telephony.models import PinLeaseRequest


@workflow.defn(name=contracts.PIN_LEASE_WORKFLOW)
class PinLeaseWorkflow:
    @workflow.init
    def __init__(self, request: PinLeaseRequest) -> None:
        self._request = request
        self._released = False

    @workflow.run
    async def run(self, request: PinLeaseRequest) -> str:
        # Only signals add events (a release, or a stray one from a previous holder).
        await workflow.wait_condition(
            lambda: self._released or workflow.info().is_continue_as_new_suggested()
        )
        if not self._released:
            workflow.continue_as_new(request)
        return "released"

    @workflow.signal(name=contracts.RELEASE_LEASE_SIGNAL)
    def release(self, owner_workflow_id: str) -> None:
        # Only the owner may release: a late signal from a previous holder must not free the PIN.
        if owner_workflow_id == self._request.owner_workflow_id:
            self._released = True
