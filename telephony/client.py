"""`TelephonyClient`: what a Python backend (and the HTTP API, and the CLI) calls.

It speaks to the room workflows through Temporal and answers with dial-in info built at read time
from the PIN and the current configuration. Temporal's errors become this module's exceptions.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any, NoReturn, TypeVar

from temporalio.client import (
    Client,
    WithStartWorkflowOperation,
    WorkflowFailureError,
    WorkflowQueryFailedError,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.common import SearchAttributePair, TypedSearchAttributes, WorkflowIDConflictPolicy
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from telephony import contracts
from telephony.contracts import room_workflow_id
from telephony.dialin import build_dial_in_info, format_number, format_numbers, valid_numbers
from telephony.models import (
    DialInInfo,
    DispatchMode,
    LiveKitEvent,
    ReconcileReport,
    RegisterRoom,
    RoomListing,
    RoomOverrides,
    RoomStatus,
    RotatePin,
    Schedule,
    ScheduleWindow,
    TelephonyConfig,
    TelephonyState,
    is_valid_room_id,
    schedule_problem,
)
from telephony.pins import PIN_RULE, is_valid_pin, normalized_pin
from telephony.settings import Settings
from telephony.temporal import connect_temporal, temporal_connection_problem

DISCOVERED_NUMBERS_TTL_SECONDS = 60.0
log = logging.getLogger(__name__)
T = TypeVar("T")


class TelephonyError(Exception):
    """Base of the client's errors; `code` is stable, the message is for people."""

    code = "telephony_error"


class RoomNotRegistered(TelephonyError):
    code = "not_registered"


class TelephonyDisabled(TelephonyError):
    code = "telephony_disabled"


class InvalidRoomId(TelephonyError):
    code = "invalid_room_id"


class InvalidSchedule(TelephonyError):
    code = "invalid_schedule"


class PinSpaceExhausted(TelephonyError):
    code = "pin_space_exhausted"


class InvalidPin(TelephonyError):
    code = "invalid_pin"


class InvalidNumbers(TelephonyError):
    """A room's numbers must be some of the configured dial-in numbers."""

    code = "invalid_numbers"


class PinTaken(TelephonyError):
    """The requested PIN is another room's (which one is never said)."""

    code = "pin_taken"


class PinConflict(TelephonyError):
    """A PIN was requested for a room that has another: rotate to it instead."""

    code = "pin_conflict"


class TelephonyUnavailable(TelephonyError):
    """Temporal cannot be reached (or did not answer in time): try again later."""

    code = "temporal_unavailable"


_ERRORS_BY_TYPE: dict[str, type[TelephonyError]] = {
    contracts.ROOM_NOT_REGISTERED: RoomNotRegistered,
    contracts.TELEPHONY_DISABLED: TelephonyDisabled,
    contracts.INVALID_ROOM_ID: InvalidRoomId,
    contracts.INVALID_SCHEDULE: InvalidSchedule,
    contracts.PIN_SPACE_EXHAUSTED: PinSpaceExhausted,
    contracts.INVALID_PIN: InvalidPin,
    contracts.PIN_TAKEN: PinTaken,
    contracts.PIN_CONFLICT: PinConflict,
}
_UNAVAILABLE_CODES = {
    RPCStatusCode.UNAVAILABLE,
    RPCStatusCode.DEADLINE_EXCEEDED,
    RPCStatusCode.CANCELLED,
    RPCStatusCode.RESOURCE_EXHAUSTED,
}


class TelephonyClient:
    def __init__(self, client: Client, settings: Settings) -> None:
        self.temporal = client
        self.settings = settings
        # Trunk numbers discovered from LiveKit, and when (monotonic clock).
        self._discovered: list[str] | None = None
        self._discovered_at = 0.0

    @classmethod
    @asynccontextmanager
    async def connect(cls, settings: Settings) -> AsyncIterator[TelephonyClient]:
        try:
            client = await connect_temporal(settings)
        except RuntimeError as exc:  # the SDK reports connection failures as RuntimeError
            raise TelephonyUnavailable(
                f"Temporal at {settings.temporal_address} is unreachable "
                f"({temporal_connection_problem(exc)})"
            ) from None
        yield cls(client, settings)

    # --- rooms --------------------------------------------------------------------------------

    async def register_room(
        self,
        room_id: str,
        schedule: Sequence[ScheduleWindow] | None = None,
        pin: str | None = None,
        *,
        dispatch_mode: DispatchMode | None = None,
        numbers: Sequence[str] | None = None,
        hide_phone_number: bool | None = None,
    ) -> DialInInfo:
        """Register (idempotent): the first call allocates the PIN, later calls return it.

        `pin`: keep a PIN the room already has (4-16 digits, spaces and dashes allowed) if it is
        free (`PinTaken` if not); `PinConflict` if the room is registered with another.
        The room's own phone policy, over the settings: `dispatch_mode`, `numbers` (some of the
        dial-in numbers, any format, `InvalidNumbers` otherwise; [] = every number) and
        `hide_phone_number`. One left out (None) keeps the room's current value; changing one
        updates the room's live rule in place.
        """
        self._check_room_id(room_id)
        pin = _requested_pin(pin)
        if not self.settings.room_telephony_enabled:
            raise TelephonyDisabled("telephony is disabled (ROOM_TELEPHONY_ENABLED is false)")
        if schedule is not None:
            _check_schedule(schedule)
        overrides = RoomOverrides(
            dispatch_mode=dispatch_mode,
            numbers=await self._room_numbers(numbers) if numbers is not None else None,
            hide_phone_number=hide_phone_number,
        )
        request = RegisterRoom(
            room_id=room_id,
            policy=self.settings.room_policy(),
            overrides=overrides,
            schedule=list(schedule) if schedule is not None else None,
            pin=pin,
        )
        start: WithStartWorkflowOperation[Any, RoomStatus] = WithStartWorkflowOperation(
            contracts.ROOM_WORKFLOW,
            {"room_id": room_id},
            id=room_workflow_id(room_id),
            task_queue=self.settings.telephony_task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            static_summary=f"phone access of room {room_id}",
            search_attributes=TypedSearchAttributes(
                [
                    SearchAttributePair(contracts.TELEPHONY_ROOM_ID, room_id),
                    SearchAttributePair(contracts.TELEPHONY_STATE, TelephonyState.IDLE.value),
                ]
            ),
            result_type=RoomStatus,
        )
        status = await self._call(
            room_id,
            self.temporal.execute_update_with_start_workflow(
                contracts.REGISTER_UPDATE,
                request,
                start_workflow_operation=start,
                result_type=RoomStatus,
            ),
        )
        return await self.dial_in(status)

    async def get_status(self, room_id: str) -> RoomStatus:
        """The room workflow's state; raises `RoomNotRegistered` for an unknown or closed room."""
        self._check_room_id(room_id)
        handle = self.temporal.get_workflow_handle(room_workflow_id(room_id))
        status: RoomStatus = await self._call(
            room_id, handle.query(contracts.STATUS_QUERY, result_type=RoomStatus)
        )
        if not status.registered:
            raise RoomNotRegistered(f"room {room_id} is not registered")
        return status

    async def get_room(self, room_id: str) -> DialInInfo:
        return await self.dial_in(await self.get_status(room_id))

    async def rotate_pin(self, room_id: str, pin: str | None = None) -> DialInInfo:
        """A new PIN for the room: `pin` if given and free, else a drawn one."""
        request = RotatePin(pin=_requested_pin(pin))
        return await self.dial_in(await self._update(room_id, contracts.ROTATE_PIN_UPDATE, request))

    async def set_schedule(self, room_id: str, windows: Sequence[ScheduleWindow]) -> DialInInfo:
        _check_schedule(windows)
        schedule = Schedule(windows=list(windows))
        status = await self._update(room_id, contracts.SET_SCHEDULE_UPDATE, schedule)
        return await self.dial_in(status)

    async def unregister_room(self, room_id: str) -> RoomStatus:
        """Remove the rule and release the PIN; the room workflow then completes."""
        return await self._update(room_id, contracts.UNREGISTER_UPDATE)

    async def send_event(self, room_id: str, event: LiveKitEvent) -> bool:
        """Signal a LiveKit event to the room's workflow; False if the room is not registered."""
        self._check_room_id(room_id)
        handle = self.temporal.get_workflow_handle(room_workflow_id(room_id))
        try:
            await self._call(room_id, handle.signal(contracts.LIVEKIT_EVENT_SIGNAL, event))
        except RoomNotRegistered:
            return False
        return True

    async def reconcile(self) -> ReconcileReport:
        """Run one reconciliation pass now (the schedule runs them every interval) and report."""
        stamp = uuid.uuid4().hex[:8]
        try:
            report: ReconcileReport = await self.temporal.execute_workflow(
                contracts.RECONCILE_WORKFLOW,
                self.settings.reconcile_input(),
                id=f"{contracts.RECONCILE_WORKFLOW_ID}-manual-{stamp}",
                task_queue=self.settings.telephony_task_queue,
                result_type=ReconcileReport,
                execution_timeout=timedelta(minutes=30),
            )
        except RPCError as exc:
            raise TelephonyUnavailable(
                f"Temporal is unavailable ({temporal_connection_problem(exc)})"
            ) from None
        return report

    async def list_rooms(self, limit: int) -> list[RoomListing]:
        """Registered rooms, newest first, from Temporal visibility (which may lag a little
        behind): id, state, since when. Never a PIN."""
        query = contracts.running_rooms_query(task_queue=self.settings.telephony_task_queue)
        rooms: list[RoomListing] = []
        try:
            async for execution in self.temporal.list_workflows(query, limit=limit):
                attributes = execution.typed_search_attributes
                rooms.append(
                    RoomListing(
                        room_id=attributes.get(contracts.TELEPHONY_ROOM_ID) or "",
                        state=attributes.get(contracts.TELEPHONY_STATE),
                        workflow_id=execution.id,
                        started_at=execution.start_time,
                    )
                )
        except RPCError as exc:
            raise TelephonyUnavailable(
                f"Temporal is unavailable ({temporal_connection_problem(exc)})"
            ) from None
        return rooms

    # --- configuration ------------------------------------------------------------------------

    async def telephony_config(self) -> TelephonyConfig:
        settings = self.settings
        numbers = format_numbers(
            await self.dial_in_numbers(), settings.room_telephony_default_country
        )
        return TelephonyConfig(
            enabled=settings.room_telephony_enabled,
            default_country=settings.room_telephony_default_country,
            international_phone_number=numbers[0].international if numbers else None,
            numbers=numbers,
            dispatch_mode=settings.room_telephony_dispatch_mode,
        )

    async def _room_numbers(self, requested: Sequence[str]) -> list[str]:
        """`requested` as E.164, each one of the dial-in numbers; `InvalidNumbers` if not."""
        region = self.settings.room_telephony_default_country
        offered = {n.e164 for n in format_numbers(await self.dial_in_numbers(), region)}
        chosen: list[str] = []
        for value in requested:
            try:
                e164 = format_number(value, region).e164
            except ValueError:
                raise InvalidNumbers(f"{value!r} is not a phone number") from None
            if e164 not in offered:
                raise InvalidNumbers(
                    f"{e164} is not one of the dial-in numbers ({', '.join(sorted(offered))})"
                )
            chosen.append(e164)
        return list(dict.fromkeys(chosen))

    async def dial_in_numbers(self) -> list[str]:
        """The configured numbers, then (with ROOM_TELEPHONY_DISCOVER_NUMBERS) the trunks' ones.

        Discovered numbers are cached for a minute; if LiveKit cannot be asked, the last known
        ones (or none) are shown: an invitation never fails for want of a trunk listing.
        """
        configured = self.settings.configured_phone_numbers
        if not self.settings.room_telephony_discover_numbers:
            return configured
        if self._discovered is None or (
            time.monotonic() - self._discovered_at > DISCOVERED_NUMBERS_TTL_SECONDS
        ):
            try:
                discovered: list[str] = await self.temporal.execute_workflow(
                    contracts.TRUNK_NUMBERS_WORKFLOW,
                    id=contracts.TRUNK_NUMBERS_WORKFLOW_ID,
                    id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                    task_queue=self.settings.telephony_task_queue,
                    result_type=list[str],
                    execution_timeout=timedelta(seconds=60),
                )
            except (WorkflowFailureError, RPCError) as exc:
                log.warning("could not list the LiveKit trunks' numbers: %s", exc)
            else:
                region = self.settings.room_telephony_default_country
                self._discovered = valid_numbers(discovered, region)
                self._discovered_at = time.monotonic()
        return list(dict.fromkeys([*configured, *(self._discovered or [])]))

    async def dial_in(self, status: RoomStatus) -> DialInInfo:
        """Dial-in info for a room's status, with the numbers as they are now (only the room's
        own, when it has some)."""
        return build_dial_in_info(
            status, await self.dial_in_numbers(), self.settings.room_telephony_default_country
        )

    # --- plumbing -----------------------------------------------------------------------------

    def _check_room_id(self, room_id: str) -> None:
        if not is_valid_room_id(room_id):
            raise InvalidRoomId(
                "room id must be 1-128 characters: letters, digits and ._:@=+- "
                "(starting with a letter or digit)"
            )

    async def _update(self, room_id: str, update: str, *args: Any) -> RoomStatus:
        self._check_room_id(room_id)
        handle = self.temporal.get_workflow_handle(room_workflow_id(room_id))
        return await self._call(
            room_id,
            handle.execute_update(
                update, *args, result_type=RoomStatus, rpc_timeout=timedelta(seconds=60)
            ),
        )

    async def _call(self, room_id: str, call: Awaitable[T]) -> T:
        try:
            result = await call
        except WorkflowUpdateFailedError as exc:
            _raise_translated(room_id, exc.cause)
        except WorkflowQueryFailedError as exc:
            raise TelephonyError(f"room {room_id}: status query failed: {exc.message}") from None
        except WorkflowUpdateRPCTimeoutOrCancelledError:
            raise TelephonyUnavailable(f"room {room_id}: Temporal did not answer in time") from None
        except RPCError as exc:
            if exc.status is RPCStatusCode.NOT_FOUND:
                raise RoomNotRegistered(f"room {room_id} is not registered") from None
            if exc.status in _UNAVAILABLE_CODES:
                raise TelephonyUnavailable(
                    f"Temporal is unavailable ({temporal_connection_problem(exc)})"
                ) from None
            raise TelephonyError(
                f"room {room_id}: Temporal refused the call: {exc.message}"
            ) from None
        except RuntimeError as exc:  # connection lost inside the SDK's core
            raise TelephonyUnavailable(
                f"Temporal is unavailable ({temporal_connection_problem(exc)})"
            ) from None
        return result


def _requested_pin(pin: str | None) -> str | None:
    """The digits of a requested PIN, as printed or typed ("841 451-6303"); `InvalidPin` if
    they are not 4-16 digits (the value is never echoed: it may be a real PIN)."""
    if pin is None:
        return None
    digits = normalized_pin(pin)
    if not is_valid_pin(digits):
        raise InvalidPin(f"a requested PIN must be {PIN_RULE} (spaces and dashes allowed)")
    return digits


def _check_schedule(windows: Sequence[ScheduleWindow]) -> None:
    problem = schedule_problem(list(windows), datetime.now(UTC))
    if problem is not None:
        raise InvalidSchedule(problem)


def _raise_translated(room_id: str, cause: BaseException | None) -> NoReturn:
    if isinstance(cause, ApplicationError) and cause.type in _ERRORS_BY_TYPE:
        raise _ERRORS_BY_TYPE[cause.type](cause.message) from None
    if isinstance(cause, ApplicationError):
        raise TelephonyError(f"room {room_id}: {cause.message}") from None
    raise TelephonyError(f"room {room_id}: the update failed ({type(cause).__name__})") from None
