"""PIN draws and leases. Cryptographic randomness (`secrets`): a PIN is the only thing between a
caller and a room, so it must not be predictable — which also rules out `workflow.random()`.

`lease_pin` runs as a *local* activity of the room workflow: it draws a PIN and starts its lease
workflow right away (one Temporal call), inside the update's workflow task, so a registration
costs no extra task round trips. A retried attempt may leave a lease behind (started, result
lost): its owner's memo does not list it, and reconciliation releases it.
"""

from __future__ import annotations

import secrets
import string
from collections.abc import Callable

from temporalio import activity
from temporalio.client import Client
from temporalio.common import SearchAttributePair, TypedSearchAttributes
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError

from telephony import contracts
from telephony.models import LeasedPin, LeasePinRequest, PinLeaseRequest
from telephony.pins import PIN_RULE, is_valid_pin, is_valid_pin_length

PinSource = Callable[[int], str]
"""Returns a PIN of the given number of digits. Tests inject deterministic sources."""

INVALID_PIN_LENGTH = "InvalidPinLength"


def secret_pin(length: int) -> str:
    return "".join(secrets.choice(string.digits) for _ in range(length))


def draw_pin(length: int, source: PinSource = secret_pin) -> str:
    if not is_valid_pin_length(length):
        raise ApplicationError(
            f"PIN length must be {PIN_RULE}, got {length}",
            type=INVALID_PIN_LENGTH,
            non_retryable=True,
        )
    pin = source(length)
    if len(pin) != length or not is_valid_pin(pin):
        # Never echo the value: it may be a real PIN.
        raise ApplicationError(
            f"the PIN source returned something other than {length} digits",
            type=INVALID_PIN_LENGTH,
            non_retryable=True,
        )
    return pin


class PinActivities:
    """PIN leases on `task_queue`, with ids from `lease_id_of` (`Settings.pin_lease_id`: a keyed
    hash of the PIN); `source` lets tests force collisions."""

    def __init__(
        self,
        client: Client,
        task_queue: str,
        lease_id_of: Callable[[str], str],
        source: PinSource | None = None,
    ) -> None:
        self._client = client
        self._task_queue = task_queue
        self._lease_id_of = lease_id_of
        self._source = source or secret_pin

    @activity.defn(name=contracts.LEASE_PIN)
    async def lease_pin(self, request: LeasePinRequest) -> LeasedPin:
        room_id = request.owner_room_id
        if request.requested_pin is not None:
            return await self._lease_requested(request.requested_pin, room_id)
        for _ in range(request.max_draws):
            pin = draw_pin(request.pin_length, self._source)
            lease_id = self._lease_id_of(pin)
            if await start_lease(self._client, self._task_queue, lease_id, room_id):
                return LeasedPin(pin=pin, lease_id=lease_id)
            activity.logger.info("drawn PIN is leased by another room; drawing again")
        raise ApplicationError(
            f"no free {request.pin_length}-digit PIN found in {request.max_draws} draws; "
            "raise ROOM_TELEPHONY_PIN_LENGTH (or ROOM_TELEPHONY_PIN_MAX_RETRIES)",
            type=contracts.PIN_SPACE_EXHAUSTED,
            non_retryable=True,
        )

    async def _lease_requested(self, pin: str, room_id: str) -> LeasedPin:
        if not is_valid_pin(pin):
            # Never echo the value: it may be a real PIN.
            raise ApplicationError(
                f"a requested PIN must be {PIN_RULE}",
                type=contracts.INVALID_PIN,
                non_retryable=True,
            )
        lease_id = self._lease_id_of(pin)
        if await start_lease(self._client, self._task_queue, lease_id, room_id):
            return LeasedPin(pin=pin, lease_id=lease_id)
        # Nothing about the holder: a caller must not learn which room has a PIN.
        raise ApplicationError(
            "the requested PIN is taken", type=contracts.PIN_TAKEN, non_retryable=True
        )


async def start_lease(client: Client, task_queue: str, lease_id: str, room_id: str) -> bool:
    """Start the lease `lease_id` for `room_id`; False if another room holds it (True if this
    room already does)."""
    try:
        await client.start_workflow(
            contracts.PIN_LEASE_WORKFLOW,
            PinLeaseRequest(owner_workflow_id=contracts.room_workflow_id(room_id)),
            id=lease_id,
            task_queue=task_queue,
            request_eager_start=True,
            static_summary=f"PIN lease of room {room_id}",
            # The owner, for reconciliation's lease listing (never the PIN).
            search_attributes=TypedSearchAttributes(
                [SearchAttributePair(contracts.TELEPHONY_ROOM_ID, room_id)]
            ),
        )
    except WorkflowAlreadyStartedError:
        holder = await client.get_workflow_handle(lease_id).describe()
        return holder.typed_search_attributes.get(contracts.TELEPHONY_ROOM_ID) == room_id
    return True
