"""Activities that ask Temporal itself about workflows (used by PIN leases)."""

from __future__ import annotations

from temporalio import activity
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from telephony import contracts

# A run that continued as new is not a closed owner: its successor carries on. Describing by id
# normally lands on that successor (RUNNING), but the status is accepted too for the instant in
# between.
_OPEN_STATUSES = frozenset(
    {WorkflowExecutionStatus.RUNNING, WorkflowExecutionStatus.CONTINUED_AS_NEW}
)


class TemporalActivities:
    def __init__(self, client: Client) -> None:
        self._client = client

    @activity.defn(name=contracts.IS_WORKFLOW_OPEN)
    async def is_workflow_open(self, workflow_id: str) -> bool:
        """Whether the latest run of `workflow_id` is running. Unknown ids are not open."""
        # No run id: the latest run of the chain, so continue-as-new does not look like a close.
        handle = self._client.get_workflow_handle(workflow_id)
        try:
            description = await handle.describe()
        except RPCError as error:
            if error.status == RPCStatusCode.NOT_FOUND:
                return False
            raise  # unavailable and friends: Temporal retries the activity
        return description.status in _OPEN_STATUSES
