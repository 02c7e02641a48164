"""What reconciliation asks Temporal about room workflows and PIN leases, strongly consistent
(describe) where a wrong answer would delete or release something."""

from __future__ import annotations

from dataclasses import dataclass

from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from telephony import contracts
from telephony.models import RoomMemo

# A run that continued as new is not a closed room: its successor carries on. Describing by id
# normally lands on that successor (RUNNING), but the status is accepted too for the instant in
# between.
_OPEN_STATUSES = frozenset(
    {WorkflowExecutionStatus.RUNNING, WorkflowExecutionStatus.CONTINUED_AS_NEW}
)


@dataclass(frozen=True)
class RoomView:
    """A room workflow as describe shows it: open or not, and its memo (None: none yet)."""

    open: bool
    memo: RoomMemo | None


CLOSED = RoomView(open=False, memo=None)


async def describe_room(client: Client, room_id: str) -> RoomView:
    """The latest run of the room's workflow (no run id: continue-as-new is not a close).
    An unknown room is closed; other failures raise (the activity is retried)."""
    handle = client.get_workflow_handle(contracts.room_workflow_id(room_id))
    try:
        description = await handle.describe()
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            return CLOSED
        raise
    if description.status not in _OPEN_STATUSES:
        return CLOSED
    memo = await description.memo_value(contracts.ROOM_MEMO_KEY, None, type_hint=RoomMemo)
    return RoomView(open=True, memo=memo)


async def signal_room(client: Client, room_id: str, signal: str, arg: object) -> bool:
    """Signal a room workflow; False if it is gone (closed or unknown)."""
    handle = client.get_workflow_handle(contracts.room_workflow_id(room_id))
    try:
        await handle.signal(signal, arg)
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            return False
        raise
    return True
