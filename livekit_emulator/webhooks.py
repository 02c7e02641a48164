"""Signed webhook delivery: an ordered queue per URL, retries with backoff, injected faults."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import logging
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any

import aiohttp
from google.protobuf.json_format import MessageToDict
from livekit.protocol.webhook import WebhookEvent

from .auth import sign
from .faults import Faults

log = logging.getLogger("livekit_emulator.webhooks")

TOKEN_TTL_SECONDS = 300.0
# How long reordered events wait for the rest of their batch before going out anyway.
REORDER_FLUSH_SECONDS = 1.0
QUEUE_SIZE = 1000
# go-retryablehttp, as LiveKit's webhook notifier uses it: waits of min * 2^n, at most 30 s.
RETRY_WAIT_MAX_SECONDS = 30.0


def webhook_body(event: WebhookEvent) -> bytes:
    """protojson, as LiveKit sends it: compact, camelCase names, defaults left out, int64 values
    (`createdAt`, `creationTime`) as JSON strings."""
    return json.dumps(MessageToDict(event), separators=(",", ":"), ensure_ascii=False).encode()


def is_retryable_status(status: int) -> bool:
    """go-retryablehttp's default policy: 429 and 5xx (but 501) are retried, other answers not."""
    return status == 429 or (status >= 500 and status != 501)


def _retry_after(headers: Any) -> float | None:
    value = headers.get("Retry-After", "")
    return float(value) if value.isdigit() else None


@dataclass(frozen=True)
class Delivery:
    """A webhook the receiver accepted (2xx)."""

    url: str
    event: str
    event_id: str


class WebhookSender:
    def __init__(
        self,
        urls: list[str],
        api_key: str,
        api_secret: str,
        faults: Faults,
        *,
        max_attempts: int = 5,
        retry_backoff: float = 1.0,
    ) -> None:
        self.urls = list(urls)
        self._api_key = api_key
        self._api_secret = api_secret
        self._faults = faults
        self._max_attempts = max_attempts
        self._retry_backoff = retry_backoff
        self.events: list[WebhookEvent] = []
        self.deliveries: list[tuple[str, str, str]] = []
        self.failures: list[tuple[str, str, str]] = []
        self._queues: dict[str, asyncio.Queue[WebhookEvent]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._held: list[WebhookEvent] = []
        self._flush_handle: asyncio.TimerHandle | None = None
        self._session: aiohttp.ClientSession | None = None

    def start(self) -> None:
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5))
        for url in self.urls:
            self._open_queue(url)

    def add_url(self, url: str) -> None:
        """Deliver to one more URL from now on (earlier events are not replayed)."""
        self.urls.append(url)
        if self._session is not None:
            self._open_queue(url)

    def _open_queue(self, url: str) -> None:
        queue: asyncio.Queue[WebhookEvent] = asyncio.Queue(QUEUE_SIZE)
        self._queues[url] = queue
        self._spawn(self._worker(url, queue))

    async def stop(self) -> None:
        if self._flush_handle is not None:
            self._flush_handle.cancel()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._session is not None:
            await self._session.close()
            self._session = None

    def emit(self, event: WebhookEvent) -> None:
        """Queue an event for every URL, after any injected webhook fault."""
        self.events.append(event)
        faults = self._faults
        if faults.webhook_drop > 0:
            faults.webhook_drop -= 1
            log.info("webhook %s %s dropped (fault)", event.event, event.id)
            return
        copies = 1
        if faults.webhook_duplicate > 0:
            faults.webhook_duplicate -= 1
            copies = 2
        if faults.webhook_delay:
            delay = faults.webhook_delay.popleft()
            self._spawn(self._enqueue_later(event, copies, delay))
            return
        if faults.webhook_reorder > 0:
            faults.webhook_reorder -= 1
            self._held.extend([event] * copies)
            if faults.webhook_reorder == 0:
                self._flush_held()
            elif self._flush_handle is None:
                loop = asyncio.get_running_loop()
                self._flush_handle = loop.call_later(REORDER_FLUSH_SECONDS, self._flush_held)
            return
        for _ in range(copies):
            self._enqueue(event)

    def _flush_held(self) -> None:
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        held, self._held = self._held, []
        for event in reversed(held):
            self._enqueue(event)

    async def _enqueue_later(self, event: WebhookEvent, copies: int, delay: float) -> None:
        await asyncio.sleep(delay)
        for _ in range(copies):
            self._enqueue(event)

    def _enqueue(self, event: WebhookEvent) -> None:
        for url, queue in self._queues.items():
            try:
                queue.put_nowait(event)
            except asyncio.QueueFull:
                # LiveKit drops events when the sender's queue is full.
                log.warning("webhook queue for %s full, %s %s dropped", url, event.event, event.id)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _worker(self, url: str, queue: asyncio.Queue[WebhookEvent]) -> None:
        while True:
            event = await queue.get()
            await self._deliver(url, event)

    async def _deliver(self, url: str, event: WebhookEvent) -> None:
        body = webhook_body(event)
        digest = base64.b64encode(hashlib.sha256(body).digest()).decode()
        for attempt in range(1, self._max_attempts + 1):
            # A fresh token per attempt, so a late retry is still within its 5 minutes.
            token = sign(self._api_key, self._api_secret, {"sha256": digest}, TOKEN_TTL_SECONDS)
            headers = {"Content-Type": "application/webhook+json", "Authorization": token}
            outcome: str
            wait = min(self._retry_backoff * 2 ** (attempt - 1), RETRY_WAIT_MAX_SECONDS)
            try:
                assert self._session is not None
                async with self._session.post(url, data=body, headers=headers) as resp:
                    await resp.read()
                    if 200 <= resp.status < 300:
                        self.deliveries.append((url, event.event, event.id))
                        log.info("webhook %s %s -> %s %d", event.event, event.id, url, resp.status)
                        return
                    outcome = f"HTTP {resp.status}"
                    if not is_retryable_status(resp.status):
                        log.info(
                            "webhook %s %s -> %s %s, not retried",
                            event.event,
                            event.id,
                            url,
                            outcome,
                        )
                        break
                    if resp.status in (429, 503):
                        wait = _retry_after(resp.headers) or wait
            except (TimeoutError, aiohttp.ClientError) as exc:
                outcome = type(exc).__name__
            log.info(
                "webhook %s %s -> %s failed (%s), attempt %d/%d",
                event.event,
                event.id,
                url,
                outcome,
                attempt,
                self._max_attempts,
            )
            if attempt < self._max_attempts:
                await asyncio.sleep(wait)
        self.failures.append((url, event.event, event.id))
