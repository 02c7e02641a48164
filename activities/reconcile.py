"""Reconciliation, one page at a time: each activity handles up to `page_size` rules, rooms or
leases, does its deletes and notifications itself with bounded concurrency, and returns counts,
a bounded sample of ids and where the next page starts — never the lists themselves, so nothing
it passes to the workflow grows with the number of rooms.

What it decides, per stage (`ReconcileStage`):
- sentinel: the sentinel PIN is leased and LiveKit holds the sentinel rule (docs/ARCHITECTURE.md).
- rules: a managed rule whose room workflow is closed or unknown is an orphan: deleted. A room
  whose memo does not name exactly the rules LiveKit holds for it is told (`observed_rules`) and
  repairs itself (one writer per rule).
- rooms: a room that believes it holds a rule LiveKit no longer has is told (`observed_rules([])`).
- sessions: a registered room that LiveKit shows open but whose memo names another (or no)
  session is told, as a participant event would (a lost `room_started`).
- leases: a lease whose owner room is closed, or (after a grace period) not listed in its open
  owner's memo, is released.
Closing decisions (delete, release) rest on describe, which is strongly consistent; visibility is
used only to find candidates. Rooms handle every notification idempotently, so a stale one costs
a wasted call, never a wrong state.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
from collections import defaultdict
from collections.abc import Awaitable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeVar

from livekit.api import ListRoomsRequest, LiveKitAPI, SIPDispatchRuleInfo
from temporalio import activity
from temporalio.client import Client, WorkflowExecution
from temporalio.exceptions import ApplicationError

from activities import dispatch_rules
from activities.livekit_errors import livekit_errors
from activities.pins import start_lease
from activities.temporal import RoomView, describe_room, signal_room
from telephony import contracts
from telephony.models import (
    EnsureRuleRequest,
    LiveKitEvent,
    LiveKitEventKind,
    ObservedRules,
    ReconcilePage,
    ReconcilePageRequest,
    ReconcileReport,
    RoomMemo,
    incarnation_time,
    is_valid_room_id,
)
from telephony.settings import Settings, reveal

T = TypeVar("T")


async def bounded(calls: Iterable[Awaitable[T]], limit: int) -> list[T]:
    """Await `calls` with at most `limit` in flight; results in order."""
    semaphore = asyncio.Semaphore(limit)

    async def one(call: Awaitable[T]) -> T:
        async with semaphore:
            return await call

    return await asyncio.gather(*(one(call) for call in calls))


class ReconcileActivities:
    def __init__(self, settings: Settings, livekit: LiveKitAPI, client: Client) -> None:
        self._livekit = livekit
        self._client = client
        self._task_queue = settings.telephony_task_queue
        self._concurrency = settings.telephony_reconcile_concurrency
        self._lease_grace = settings.telephony_reconcile_lease_grace
        self._trunk_ids = tuple(settings.room_telephony_trunk_ids)
        self._sentinel = _Sentinel.of(settings)
        # The sentinel rule's id once found: later passes check it with one look-up by id.
        self._sentinel_rule_id: str | None = None

    async def _views(self, room_ids: Sequence[str]) -> dict[str, RoomView]:
        views = await bounded(
            (describe_room(self._client, room_id) for room_id in room_ids), self._concurrency
        )
        return dict(zip(room_ids, views, strict=True))

    # --- sentinel -------------------------------------------------------------------------------

    @activity.defn(name=contracts.RECONCILE_SENTINEL)
    async def reconcile_sentinel(self, request: ReconcilePageRequest) -> ReconcilePage:
        """Lease the sentinel PIN and make LiveKit hold the sentinel rule (one page). When the
        sentinel is off, the rules and leases stages remove what is left of it."""
        done = ReconcilePage(report=ReconcileReport(pages=1), next_cursor=None)
        sentinel = self._sentinel
        if sentinel is None:
            return done
        room = contracts.SENTINEL_ROOM_ID
        if not await start_lease(self._client, self._task_queue, sentinel.lease_id, room):
            # Odds of 10^-16 per room with 16-digit PINs: said loudly, never a failed pass.
            activity.logger.error("the sentinel PIN is leased by a room; no sentinel rule")
            return done
        try:
            result = await dispatch_rules.ensure_dispatch_rule(
                self._livekit.sip,
                EnsureRuleRequest(
                    room_id=room,
                    pin=sentinel.pin,
                    hide_phone_number=False,
                    known_rule_id=self._sentinel_rule_id,
                ),
                trunk_ids=self._trunk_ids,
                hide_phone_number=False,
                attributes={contracts.SENTINEL_ATTRIBUTE: "true"},
            )
        except ApplicationError as error:
            # The rest of the pass does not wait for it: the next pass tries again.
            activity.logger.warning("sentinel rule not ensured this pass: %s", error.message)
            return done
        if not result.adopted:
            activity.logger.info("created the sentinel rule %s", result.rule_id)
        self._sentinel_rule_id = result.rule_id
        return ReconcilePage(
            report=ReconcileReport(pages=1, sentinel_rule_id=result.rule_id), next_cursor=None
        )

    def _is_current_sentinel(self, rule: SIPDispatchRuleInfo) -> bool:
        """A managed rule of the sentinel room that is not the sentinel as configured now is
        deleted like an orphan."""
        sentinel = self._sentinel
        return sentinel is not None and dispatch_rules.is_sentinel_for(
            rule, sentinel.pin, self._trunk_ids
        )

    # --- rules ----------------------------------------------------------------------------------

    @activity.defn(name=contracts.RECONCILE_RULES)
    async def reconcile_rules(self, request: ReconcilePageRequest) -> ReconcilePage:
        after = await dispatch_rules.list_rules_after(self._livekit.sip, request.cursor)
        page = after[: request.page_size]
        rule_ids_by_room: dict[str, list[str]] = defaultdict(list)
        stale_sentinels: list[str] = []
        for rule in page:
            if not dispatch_rules.is_managed(rule):
                continue
            managed = dispatch_rules.to_managed_rule(rule)
            if managed.room_id == contracts.SENTINEL_ROOM_ID:
                if not self._is_current_sentinel(rule):
                    stale_sentinels.append(managed.rule_id)
                continue
            rule_ids_by_room[managed.room_id].append(managed.rule_id)
        rooms = [room for room in rule_ids_by_room if is_valid_room_id(room)]
        views = await self._views(rooms)
        orphans = stale_sentinels + [
            rule_id
            for room, rule_ids in rule_ids_by_room.items()
            if room not in views or not views[room].open
            for rule_id in rule_ids
        ]
        differing = [
            room
            for room in rooms
            if views[room].open and _memo_rules(views[room]) != rule_ids_by_room[room]
        ]
        await bounded(
            (dispatch_rules.delete_dispatch_rule(self._livekit.sip, rule) for rule in orphans),
            self._concurrency,
        )
        told = await self._tell_rules({room: rule_ids_by_room[room] for room in differing})
        if orphans:
            activity.logger.info("deleted %d orphan dispatch rule(s)", len(orphans))
        return ReconcilePage(
            report=ReconcileReport(
                managed_rules=sum(len(ids) for ids in rule_ids_by_room.values()),
                orphans_deleted=len(orphans),
                rooms_notified=len(told),
                pages=1,
                orphan_sample=orphans,
                notified_sample=told,
            ),
            next_cursor=page[-1].sip_dispatch_rule_id if len(after) > len(page) else None,
        )

    async def _tell_rules(self, observed: dict[str, list[str]]) -> list[str]:
        rooms = list(observed)
        delivered = await bounded(
            (
                signal_room(
                    self._client,
                    room,
                    contracts.OBSERVED_RULES_SIGNAL,
                    ObservedRules(rule_ids=observed[room]),
                )
                for room in rooms
            ),
            self._concurrency,
        )
        return [room for room, ok in zip(rooms, delivered, strict=True) if ok]

    # --- rooms ----------------------------------------------------------------------------------

    @activity.defn(name=contracts.RECONCILE_ROOMS)
    async def reconcile_rooms(self, request: ReconcilePageRequest) -> ReconcilePage:
        query = contracts.running_rooms_query(state="open", task_queue=self._task_queue)
        executions, next_cursor = await self._visibility_page(query, request)
        believed: dict[str, str] = {}
        for execution in executions:
            room = execution.typed_search_attributes.get(contracts.TELEPHONY_ROOM_ID)
            memo = await _memo(execution)
            if room and memo is not None and memo.rule_id:
                believed[room] = memo.rule_id
        present = await dispatch_rules.existing_rule_ids(
            self._livekit.sip, sorted(set(believed.values()))
        )
        told = await self._tell_rules(
            {room: [] for room, rule_id in believed.items() if rule_id not in present}
        )
        return ReconcilePage(
            report=ReconcileReport(rooms_notified=len(told), pages=1, notified_sample=told),
            next_cursor=next_cursor,
        )

    # --- sessions -------------------------------------------------------------------------------

    @activity.defn(name=contracts.RECONCILE_SESSIONS)
    async def reconcile_sessions(self, request: ReconcilePageRequest) -> ReconcilePage:
        with livekit_errors("ListRooms"):
            listing = await self._livekit.room.list_rooms(ListRoomsRequest())
        live = sorted(
            (room for room in listing.rooms if room.name > request.cursor and room.sid),
            key=lambda room: room.name,
        )
        page = live[: request.page_size]
        candidates = [room for room in page if is_valid_room_id(room.name)]
        views = await self._views([room.name for room in candidates])
        unaware = [
            room
            for room in candidates
            if views[room.name].open and _memo_session(views[room.name]) != room.sid
        ]
        now = datetime.now(UTC)

        async def tell(room_name: str, sid: str, created_at: datetime | None) -> bool:
            event = LiveKitEvent(
                kind=LiveKitEventKind.ACTIVITY,
                room_sid=sid,
                # The same id for every pass: the room applies it once.
                event_id=f"reconcile-{sid}",
                created_at=created_at or now,
                room_created_at=created_at,
            )
            return await signal_room(self._client, room_name, contracts.LIVEKIT_EVENT_SIGNAL, event)

        delivered = await bounded(
            (
                tell(
                    room.name, room.sid, incarnation_time(room.creation_time_ms, room.creation_time)
                )
                for room in unaware
            ),
            self._concurrency,
        )
        repaired = [room.name for room, ok in zip(unaware, delivered, strict=True) if ok]
        return ReconcilePage(
            report=ReconcileReport(
                sessions_repaired=len(repaired), pages=1, repaired_sample=repaired
            ),
            next_cursor=page[-1].name if len(live) > len(page) else None,
        )

    # --- leases ---------------------------------------------------------------------------------

    @activity.defn(name=contracts.RECONCILE_LEASES)
    async def reconcile_leases(self, request: ReconcilePageRequest) -> ReconcilePage:
        query = contracts.running_leases_query(task_queue=self._task_queue)
        executions, next_cursor = await self._visibility_page(query, request)
        owners = {
            execution.id: owner
            for execution in executions
            if (owner := execution.typed_search_attributes.get(contracts.TELEPHONY_ROOM_ID))
        }
        started = {execution.id: execution.start_time for execution in executions}
        rooms = sorted({owner for owner in owners.values() if owner != contracts.SENTINEL_ROOM_ID})
        views = await self._views(rooms)
        settled = datetime.now(UTC) - self._lease_grace
        sentinel_lease = self._sentinel.lease_id if self._sentinel else None
        orphans = [
            lease_id
            for lease_id, owner in owners.items()
            if (
                lease_id != sentinel_lease
                if owner == contracts.SENTINEL_ROOM_ID
                else _orphan_lease(lease_id, views[owner], started[lease_id], settled)
            )
        ]
        released = await bounded(
            (self._release(lease_id, owners[lease_id]) for lease_id in orphans), self._concurrency
        )
        done = [lease for lease, ok in zip(orphans, released, strict=True) if ok]
        if done:
            activity.logger.info("released %d orphan PIN lease(s)", len(done))
        return ReconcilePage(
            report=ReconcileReport(
                leases_checked=len(executions),
                leases_released=len(done),
                pages=1,
                released_sample=done,
            ),
            next_cursor=next_cursor,
        )

    async def _release(self, lease_id: str, owner_room: str) -> bool:
        handle = self._client.get_workflow_handle(lease_id)
        try:
            # The lease accepts a release from its owner only: say it in the owner's name.
            await handle.signal(
                contracts.RELEASE_LEASE_SIGNAL, contracts.room_workflow_id(owner_room)
            )
        except Exception as exc:  # closed meanwhile: nothing left to release
            activity.logger.info("lease %s already closed (%s)", lease_id, type(exc).__name__)
            return False
        return True

    # --- plumbing -------------------------------------------------------------------------------

    async def _visibility_page(
        self, query: str, request: ReconcilePageRequest
    ) -> tuple[list[WorkflowExecution], str | None]:
        """One page of a visibility listing; the cursor is its page token (base64)."""
        try:
            token = base64.b64decode(request.cursor, validate=True) if request.cursor else None
        except binascii.Error:
            token = None  # not one of ours: start over rather than fail the pass
        iterator = self._client.list_workflows(
            query, page_size=request.page_size, next_page_token=token
        )
        await iterator.fetch_next_page()
        executions = list(iterator.current_page or [])
        following = iterator.next_page_token
        return executions, base64.b64encode(following).decode() if following else None


@dataclass(frozen=True)
class _Sentinel:
    pin: str
    lease_id: str

    @classmethod
    def of(cls, settings: Settings) -> _Sentinel | None:
        """The sentinel as configured; None when off (or without the PIN hash key, which
        telephony requires anyway)."""
        if not settings.room_telephony_sentinel_rule or not reveal(settings.telephony_pin_hash_key):
            return None
        pin = settings.sentinel_pin()
        return cls(pin=pin, lease_id=settings.pin_lease_id(pin))


def _memo_rules(view: RoomView) -> list[str]:
    return [view.memo.rule_id] if view.memo is not None and view.memo.rule_id else []


def _memo_session(view: RoomView) -> str | None:
    return view.memo.session_sid if view.memo is not None else None


async def _memo(execution: WorkflowExecution) -> RoomMemo | None:
    memo: RoomMemo | None = await execution.memo_value(
        contracts.ROOM_MEMO_KEY, None, type_hint=RoomMemo
    )
    return memo


def _orphan_lease(
    lease_id: str, owner: RoomView, started: datetime | None, settled: datetime
) -> bool:
    """No room holds this lease: its owner is closed, or (once past the grace period, so that a
    lease just started for a registration is not mistaken for one) its memo does not list it."""
    if not owner.open:
        return True
    if owner.memo is None or started is None or started > settled:
        return False
    return lease_id not in owner.memo.lease_ids
