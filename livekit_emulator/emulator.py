"""`LiveKitEmulator`: the state, the server's life, and the Python API tests drive it with."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any

from aiohttp import web
from google.protobuf.json_format import MessageToDict
from livekit.protocol.models import ParticipantInfo, Room
from livekit.protocol.sip import (
    CreateSIPDispatchRuleRequest,
    CreateSIPInboundTrunkRequest,
    SIPDispatchRuleInfo,
    SIPInboundTrunkInfo,
)
from livekit.protocol.webhook import WebhookEvent

from .api import Method, build_methods
from .app import build_app
from .calls import CallResult, simulate_call
from .faults import Faults
from .ids import new_id
from .rooms import RoomManager
from .sip import SipStore
from .webhooks import WebhookSender

log = logging.getLogger("livekit_emulator")


class LiveKitEmulator:
    """A LiveKit server + SIP stand-in speaking the real Twirp protocol over HTTP."""

    def __init__(
        self,
        api_key: str = "devkey",
        api_secret: str = "secret",  # noqa: S107 - the well-known dev secret, as in livekit-server --dev
        webhook_urls: Sequence[str] = (),
        empty_timeout: float = 300.0,
        extra_keys: Mapping[str, str] | None = None,
        *,
        faults: Faults | None = None,
        latency: float = 0.0,
        webhook_max_attempts: int = 5,
        webhook_retry_backoff: float = 1.0,
    ) -> None:
        self.api_key = api_key
        self.api_secret = api_secret
        self.keys: dict[str, str] = {api_key: api_secret, **(extra_keys or {})}
        # A Faults object may be prepared before start-up (e.g. an outage from the first call).
        self.faults = faults or Faults()
        if latency > 0:
            self.faults.set_latency(latency)
        self.sip = SipStore()
        self.room_manager = RoomManager(self._emit, empty_timeout)
        self.webhooks = WebhookSender(
            list(webhook_urls),
            api_key,
            api_secret,
            self.faults,
            max_attempts=webhook_max_attempts,
            retry_backoff=webhook_retry_backoff,
        )
        self.methods: dict[tuple[str, str], Method] = build_methods(self.sip, self.room_manager)
        self.services: frozenset[str] = frozenset(service for service, _ in self.methods)
        self._runner: web.AppRunner | None = None
        self.host = ""
        self.port = 0

    # --- server life ---------------------------------------------------------------------------
    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        """Serve on host:port; port 0 picks a free port (read it back from `url`)."""
        self._runner = web.AppRunner(build_app(self), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        self.host = host
        self.port = int(self._runner.addresses[0][1])
        self.webhooks.start()
        log.info("LiveKit emulator listening on %s", self.url)

    async def stop(self) -> None:
        self.room_manager.shutdown()
        await self.webhooks.stop()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> LiveKitEmulator:
        await self.start()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.stop()

    @property
    def url(self) -> str:
        if not self.port:
            raise RuntimeError("the emulator is not started")
        return f"http://{self.host}:{self.port}"

    def add_webhook_url(self, url: str) -> None:
        """Send webhooks to one more URL from now on."""
        self.webhooks.add_url(url)

    # --- reading state -------------------------------------------------------------------------
    def dispatch_rules(self) -> list[SIPDispatchRuleInfo]:
        return self.sip.sorted_rules()

    def inbound_trunks(self) -> list[SIPInboundTrunkInfo]:
        return self.sip.sorted_trunks()

    def rooms(self) -> list[Room]:
        return self.room_manager.open_rooms()

    def participants(self, room: str) -> list[ParticipantInfo]:
        return self.room_manager.participants(room)

    @property
    def webhook_deliveries(self) -> list[tuple[str, str, str]]:
        """(url, event name, event id) of every webhook a receiver accepted, in arrival order."""
        return self.webhooks.deliveries

    @property
    def webhook_failures(self) -> list[tuple[str, str, str]]:
        """(url, event name, event id) of webhooks given up on after every retry."""
        return self.webhooks.failures

    @property
    def webhook_events(self) -> list[WebhookEvent]:
        """Every event emitted, delivered or not (faults included)."""
        return self.webhooks.events

    async def wait_for_webhooks(
        self, event: str, count: int = 1, within: float = 5.0
    ) -> list[tuple[str, str, str]]:
        """Poll until `count` deliveries of `event` have arrived; TimeoutError otherwise."""
        deadline = time.monotonic() + within
        while True:
            found = [d for d in self.webhook_deliveries if d[1] == event]
            if len(found) >= count:
                return found
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(found)}/{count} {event} webhooks after {within}s")
            await asyncio.sleep(0.01)

    def state(self) -> dict[str, Any]:
        """Everything, as JSON-ready dicts (proto field names), for debugging."""

        def as_dict(msg: Any) -> dict[str, Any]:
            result: dict[str, Any] = MessageToDict(msg, preserving_proto_field_name=True)
            return result

        return {
            "url": self.url if self.port else None,
            "inbound_trunks": [as_dict(t) for t in self.inbound_trunks()],
            "dispatch_rules": [as_dict(r) for r in self.dispatch_rules()],
            "rooms": [
                {**as_dict(r), "participants": [as_dict(p) for p in self.participants(r.name)]}
                for r in self.rooms()
            ],
            "webhook_urls": self.webhooks.urls,
            "webhook_deliveries": [list(d) for d in self.webhook_deliveries],
            "faults": self.faults.snapshot(),
        }

    # --- driving it ----------------------------------------------------------------------------
    async def create_inbound_trunk(self, numbers: Sequence[str], name: str = "") -> str:
        req = CreateSIPInboundTrunkRequest(
            trunk=SIPInboundTrunkInfo(name=name, numbers=list(numbers))
        )
        return self.sip.create_inbound_trunk(req).sip_trunk_id

    async def create_dispatch_rule(
        self, info: SIPDispatchRuleInfo, *, rule_id: str | None = None
    ) -> SIPDispatchRuleInfo:
        """Create a rule as CreateSIPDispatchRule would (validated), optionally with a chosen id:
        e.g. `SDR_000000000000` sorts first, so conflict messages stop naming other holders."""
        return self.sip.create_dispatch_rule(
            CreateSIPDispatchRuleRequest(dispatch_rule=info), rule_id=rule_id
        )

    async def create_room(self, name: str, empty_timeout: float | None = None) -> Room:
        return self.room_manager.create(name, empty_timeout=empty_timeout)

    async def delete_room(self, name: str) -> None:
        self.room_manager.delete(name)

    async def join_participant(self, room: str, identity: str, name: str = "") -> ParticipantInfo:
        """A web participant joins (opening the room if needed)."""
        return self.room_manager.join(room, identity, name=name)

    async def leave_participant(self, room: str, identity: str) -> None:
        """A participant (web or phone) leaves; KeyError if not in the room."""
        self.room_manager.leave(room, identity)

    async def simulate_call(
        self,
        pin: str,
        *,
        number: str | None = None,
        trunk_id: str | None = None,
        caller: str = "+15550100",
    ) -> CallResult:
        """A phone call to `number` (or straight to `trunk_id`) from `caller`, typing `pin`."""
        result = simulate_call(
            self.sip, self.room_manager, pin, number=number, trunk_id=trunk_id, caller=caller
        )
        log.info(
            "call to %s: %s",
            number or trunk_id,
            f"joined {result.room_name} by {result.rule_id}" if result.accepted else result.reason,
        )
        return result

    # --- events --------------------------------------------------------------------------------
    def _emit(self, event: str, room: Room, participant: ParticipantInfo | None) -> None:
        message = WebhookEvent(
            event=event, room=room, id=new_id("EV_"), created_at=int(time.time())
        )
        if participant is not None:
            message.participant.CopyFrom(participant)
        self.webhooks.emit(message)
