"""The LiveKit emulator with a clock on it: when each webhook was emitted and when each dispatch
rule was stored or deleted, on this process's `time.perf_counter()` — one clock for both ends
of "webhook → callable", whatever the processes in between do.

Webhooks go out as LiveKit sends them (livekit-server keeps one ordered queue per room and
delivers rooms concurrently), not through the emulator's single queue per URL, which would make
a burst of rooms wait for each other and time the emulator instead of the service.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass

import aiohttp
from livekit.protocol.models import ParticipantInfo, Room
from livekit.protocol.sip import (
    CreateSIPDispatchRuleRequest,
    DeleteSIPDispatchRuleRequest,
    SIPDispatchRuleInfo,
    UpdateSIPDispatchRuleRequest,
)
from livekit.protocol.webhook import WebhookEvent

from livekit_emulator import LiveKitEmulator
from livekit_emulator.api import build_methods
from livekit_emulator.auth import sign
from livekit_emulator.sip import SipStore
from livekit_emulator.webhooks import is_retryable_status, webhook_body

WEBHOOK_TOKEN_TTL = 300.0
WEBHOOK_ATTEMPTS = 5
# LiveKit waits 1 s, 2 s, ... between attempts; shorter here so a retried event still shows
# up within a phase (retries are counted and reported either way).
WEBHOOK_RETRY_WAIT = 0.2


def signed_headers(body: bytes, api_key: str, api_secret: str) -> dict[str, str]:
    """LiveKit's webhook headers: a bare JWT (no `Bearer`) carrying the body's sha256."""
    digest = base64.b64encode(hashlib.sha256(body).digest()).decode()
    token = sign(api_key, api_secret, {"sha256": digest}, WEBHOOK_TOKEN_TTL)
    return {"Content-Type": "application/webhook+json", "Authorization": token}


class TimedSipStore(SipStore):
    """The emulator's rule store, noting when each rule of a room was stored and deleted, and
    which rules each room has now (`room_rules`, `wait_rules`: no scan of every rule)."""

    def __init__(self) -> None:
        super().__init__()
        self.created_at: dict[str, list[float]] = defaultdict(list)
        self.deleted_at: dict[str, list[float]] = defaultdict(list)
        self._room_rules: dict[str, set[str]] = defaultdict(set)
        self._rule_room: dict[str, str] = {}
        self._waiters: dict[str, list[asyncio.Future[None]]] = defaultdict(list)

    def create_dispatch_rule(
        self, req: CreateSIPDispatchRuleRequest, *, rule_id: str | None = None
    ) -> SIPDispatchRuleInfo:
        info = super().create_dispatch_rule(req, rule_id=rule_id)
        self.created_at[info.rule.dispatch_rule_direct.room_name].append(time.perf_counter())
        self._track(info)
        return info

    def update_dispatch_rule(self, req: UpdateSIPDispatchRuleRequest) -> SIPDispatchRuleInfo:
        info = super().update_dispatch_rule(req)
        self._track(info)  # a replace may name another room
        return info

    def delete_dispatch_rule(self, req: DeleteSIPDispatchRuleRequest) -> SIPDispatchRuleInfo:
        rule = super().delete_dispatch_rule(req)
        self.deleted_at[rule.rule.dispatch_rule_direct.room_name].append(time.perf_counter())
        self._untrack(rule.sip_dispatch_rule_id)
        return rule

    def forget_times(self) -> None:
        self.created_at.clear()
        self.deleted_at.clear()

    def room_rules(self, room: str) -> set[str]:
        """The ids of the rules stored now that route to `room`."""
        return set(self._room_rules.get(room, ()))

    async def wait_rules(self, room: str, ready: Callable[[set[str]], bool], within: float) -> bool:
        """Wait until `ready(room's rule ids)` holds (woken by each change of the room's rules);
        False if it still does not after `within` seconds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while not ready(self.room_rules(room)):
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            changed = loop.create_future()
            self._waiters[room].append(changed)
            try:
                await asyncio.wait_for(changed, remaining)
            except TimeoutError:
                return ready(self.room_rules(room))
            finally:
                waiters = self._waiters.get(room)
                if waiters is not None and changed in waiters:
                    waiters.remove(changed)
                if not waiters:
                    self._waiters.pop(room, None)
        return True

    def _track(self, info: SIPDispatchRuleInfo) -> None:
        rule_id = info.sip_dispatch_rule_id
        self._untrack(rule_id)
        room = info.rule.dispatch_rule_direct.room_name
        self._room_rules[room].add(rule_id)
        self._rule_room[rule_id] = room
        self._wake(room)

    def _untrack(self, rule_id: str) -> None:
        room = self._rule_room.pop(rule_id, None)
        if room is None:
            return
        rules = self._room_rules.get(room)
        if rules is not None:
            rules.discard(rule_id)
            if not rules:
                del self._room_rules[room]
        self._wake(room)

    def _wake(self, room: str) -> None:
        for waiter in self._waiters.pop(room, []):
            if not waiter.done():
                waiter.set_result(None)


@dataclass
class Delivery:
    event: str
    room: str
    event_id: str
    emitted: float
    answered: float | None = None
    status: int | None = None
    attempts: int = 0


class RoomQueues:
    """Signed webhook delivery with one ordered queue per room, rooms concurrently."""

    def __init__(self, url: str, api_key: str, api_secret: str) -> None:
        self.url = url
        self._key = api_key
        self._secret = api_secret
        self._session: aiohttp.ClientSession | None = None
        self._tails: dict[str, asyncio.Task[None]] = {}
        self._pending: set[asyncio.Task[None]] = set()
        self.deliveries: list[Delivery] = []

    async def start(self) -> None:
        # No per-host connection cap: LiveKit opens as many connections as rooms in flight.
        connector = aiohttp.TCPConnector(limit=0)
        self._session = aiohttp.ClientSession(
            connector=connector, timeout=aiohttp.ClientTimeout(total=30)
        )

    async def stop(self) -> None:
        for task in list(self._pending):
            task.cancel()
        for task in list(self._pending):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._session is not None:
            await self._session.close()

    def send(self, event: WebhookEvent, emitted: float) -> None:
        record = Delivery(event.event, event.room.name, event.id, emitted)
        self.deliveries.append(record)
        previous = self._tails.get(record.room)
        task = asyncio.get_running_loop().create_task(self._after(previous, event, record))
        self._tails[record.room] = task
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def drain(self, within: float) -> None:
        if self._pending:
            await asyncio.wait(list(self._pending), timeout=within)

    async def _after(
        self, previous: asyncio.Task[None] | None, event: WebhookEvent, record: Delivery
    ) -> None:
        if previous is not None and not previous.done():
            with contextlib.suppress(Exception):
                await asyncio.shield(previous)
        await self._deliver(event, record)

    async def _deliver(self, event: WebhookEvent, record: Delivery) -> None:
        assert self._session is not None
        body = webhook_body(event)
        for attempt in range(1, WEBHOOK_ATTEMPTS + 1):
            record.attempts = attempt
            try:
                headers = signed_headers(body, self._key, self._secret)
                async with self._session.post(self.url, data=body, headers=headers) as response:
                    await response.read()
                    record.status = response.status
            except (TimeoutError, aiohttp.ClientError):
                record.status = None
            if record.status is not None and not is_retryable_status(record.status):
                break
            await asyncio.sleep(WEBHOOK_RETRY_WAIT * attempt)
        record.answered = time.perf_counter()


class TimedEmulator(LiveKitEmulator):
    """`LiveKitEmulator` whose rule store and webhook emission are timed (see module doc)."""

    def __init__(self, api_key: str, api_secret: str) -> None:
        # No webhook URL: the base sender only records events; `delivery` sends them.
        super().__init__(api_key=api_key, api_secret=api_secret, empty_timeout=3600.0)
        self.sip = TimedSipStore()
        self.methods = build_methods(self.sip, self.room_manager)
        self.emitted: dict[tuple[str, str], list[float]] = defaultdict(list)
        self.delivery: RoomQueues | None = None

    @property
    def timed_sip(self) -> TimedSipStore:
        assert isinstance(self.sip, TimedSipStore)
        return self.sip

    def _emit(self, event: str, room: Room, participant: ParticipantInfo | None) -> None:
        emitted = time.perf_counter()
        self.emitted[(event, room.name)].append(emitted)
        super()._emit(event, room, participant)
        message = self.webhooks.events.pop()  # built by the base class; not kept (memory)
        if self.delivery is not None:
            self.delivery.send(message, emitted)
