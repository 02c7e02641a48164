"""Activities that ask Temporal itself about workflows (PIN leases, reconciliation)."""

from __future__ import annotations

import asyncio

from temporalio import activity
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from telephony import contracts
from telephony.models import TelephonyState

# A run that continued as new is not a closed owner: its successor carries on. Describing by id
# normally lands on that successor (RUNNING), but the status is accepted too for the instant in
# between.
_OPEN_STATUSES = frozenset(
    {WorkflowExecutionStatus.RUNNING, WorkflowExecutionStatus.CONTINUED_AS_NEW}
)


class TemporalActivities:
    def __init__(self, client: Client, task_queue: str | None = None) -> None:
        self._client = client
        # Reconciliation looks only at rooms served by this deployment's task queue.
        self._task_queue = task_queue

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

    @activity.defn(name=contracts.FILTER_OPEN_ROOMS)
    async def filter_open_rooms(self, room_ids: list[str]) -> list[str]:
        """The rooms among `room_ids` whose workflow is open (strongly consistent: describe)."""
        opened = await asyncio.gather(
            *(self.is_workflow_open(contracts.room_workflow_id(room_id)) for room_id in room_ids)
        )
        return [room_id for room_id, is_open in zip(room_ids, opened, strict=True) if is_open]

    @activity.defn(name=contracts.LIST_ROOMS_IN_STATE)
    async def list_rooms_in_state(self, state: str) -> list[str]:
        """Running room workflows whose `TelephonyState` is `state` (visibility: may lag)."""
        query = contracts.running_rooms_query(
            state=TelephonyState(state).value, task_queue=self._task_queue
        )
        rooms: list[str] = []
        async for execution in self._client.list_workflows(query):
            room_id = execution.typed_search_attributes.get(contracts.TELEPHONY_ROOM_ID)
            if room_id:
                rooms.append(room_id)
        return rooms

