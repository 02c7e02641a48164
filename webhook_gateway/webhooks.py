"""`POST /livekit/webhook`: verify, parse, filter, and signal the room workflow.

Order of checks: the Authorization header (401), the body size (413), the signature and body hash
(401), then the payload (400). Events that are not ours to act on are acknowledged with 200 and a
reason, so that LiveKit does not retry them; only a Temporal outage answers 503 (LiveKit retries).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import logging
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime

import jwt
from aiohttp import web
from livekit.api import TokenVerifier, WebhookReceiver
from livekit.protocol.webhook import WebhookEvent
from pydantic import ValidationError

from telephony.client import (
    InvalidRoomId,
    TelephonyClient,
    TelephonyError,
    TelephonyUnavailable,
)
from telephony.models import LiveKitEvent, LiveKitEventKind, incarnation_time
from telephony.settings import Settings, reveal
from webhook_gateway.authorization import read_authorization
from webhook_gateway.bodies import read_body
from webhook_gateway.errors import ApiError, ErrorCode, unavailable
from webhook_gateway.metrics import GatewayMetrics
from webhook_gateway.schemas import WebhookAnswer, WebhookStatus

log = logging.getLogger(__name__)

EVENT_KINDS: dict[str, LiveKitEventKind] = {
    "room_started": LiveKitEventKind.STARTED,
    "room_finished": LiveKitEventKind.FINISHED,
    "participant_joined": LiveKitEventKind.ACTIVITY,
    "participant_left": LiveKitEventKind.ACTIVITY,
    "track_published": LiveKitEventKind.ACTIVITY,
}


class Malformed(Exception):
    """The payload is not a usable WebhookEvent (400)."""


@dataclass(frozen=True)
class Outcome:
    status: WebhookStatus
    reason: str | None = None


class WebhookHandler:
    def __init__(
        self,
        settings: Settings,
        client: TelephonyClient,
        metrics: GatewayMetrics,
        deadline_seconds: float,
    ) -> None:
        """`deadline_seconds`: past this wait on Temporal, the answer is 503 (LiveKit retries)."""
        self._client = client
        self._deadline = deadline_seconds
        self._metrics = metrics
        key = settings.livekit_api_key
        secret = reveal(settings.livekit_api_secret)
        # Without credentials nothing can be verified: every webhook is refused (401).
        self._verifier = TokenVerifier(key, secret) if key and secret else None
        self._receiver = WebhookReceiver(self._verifier) if self._verifier else None
        regex = settings.livekit_webhook_events_filter_regex
        self._filter = re.compile(regex) if regex else None

    async def handle(self, request: web.Request) -> web.Response:
        started = time.perf_counter()
        event_name = ""
        try:
            event = await self._verified_event(request)
            event_name = event.event
            outcome = await self._dispatch(event)
        except Malformed as exc:
            self._metrics.webhook(event_name, "malformed", time.perf_counter() - started)
            raise ApiError(400, ErrorCode.MALFORMED_WEBHOOK, str(exc)) from None
        except ApiError as exc:
            outcome_label = {401: "unauthorized", 413: "too_large", 503: "unavailable"}.get(
                exc.status, "error"
            )
            self._metrics.webhook(event_name, outcome_label, time.perf_counter() - started)
            raise
        self._metrics.webhook(event_name, outcome.status.value, time.perf_counter() - started)
        answer = WebhookAnswer(status=outcome.status, reason=outcome.reason)
        return web.json_response(text=answer.model_dump_json())

    # --- verification -------------------------------------------------------------------------

    async def _verified_event(self, request: web.Request) -> WebhookEvent:
        credential = read_authorization(request.headers.get("Authorization"))
        token = credential.token if credential is not None else ""
        if not token:
            raise ApiError(401, ErrorCode.MISSING_SIGNATURE, "the Authorization header is missing")
        body = await read_body(request)
        if self._verifier is None or self._receiver is None:
            raise ApiError(
                401,
                ErrorCode.BAD_SIGNATURE,
                "webhooks cannot be verified: LIVEKIT_API_KEY / LIVEKIT_API_SECRET are not set",
            )
        self._check_signature(token, body)
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            raise Malformed("the body is not UTF-8") from None
        try:
            # The signature was checked above; here WebhookReceiver checks it again and parses.
            return self._receiver.receive(text, token)
        except Exception as exc:  # protobuf's json_format raises several kinds
            reason = type(exc).__name__
            raise Malformed(f"the body is not a LiveKit WebhookEvent ({reason})") from None

    def _check_signature(self, token: str, body: bytes) -> None:
        assert self._verifier is not None
        try:
            claims = self._verifier.verify(token)
        except jwt.ExpiredSignatureError:
            raise ApiError(
                401, ErrorCode.EXPIRED_SIGNATURE, "the webhook token has expired"
            ) from None
        except jwt.PyJWTError:
            raise ApiError(401, ErrorCode.BAD_SIGNATURE, "the webhook token is not valid") from None
        try:
            expected = base64.b64decode(claims.sha256 or "", validate=True)
        except (binascii.Error, ValueError):
            raise ApiError(
                401, ErrorCode.BAD_SIGNATURE, "the token's sha256 claim is invalid"
            ) from None
        if not expected or not hmac.compare_digest(expected, hashlib.sha256(body).digest()):
            raise ApiError(401, ErrorCode.BODY_MISMATCH, "the body does not match the signed hash")

    # --- mapping ------------------------------------------------------------------------------

    async def _dispatch(self, event: WebhookEvent) -> Outcome:
        if not event.event:
            raise Malformed("the event has no `event` name")
        kind = EVENT_KINDS.get(event.event)
        if kind is None:
            return Outcome(WebhookStatus.IGNORED, f"event {event.event!r} is not handled")
        if not event.HasField("room") or not event.room.name:
            raise Malformed(f"{event.event} without a room name")
        room_id = event.room.name
        if self._filter is not None and not self._filter.search(room_id):
            reason = "room name does not match LIVEKIT_WEBHOOK_EVENTS_FILTER_REGEX"
            return Outcome(WebhookStatus.IGNORED, reason)
        signal = _livekit_event(event, kind)
        try:
            delivered = await asyncio.wait_for(
                self._client.send_event(room_id, signal), self._deadline
            )
        except InvalidRoomId:
            return Outcome(WebhookStatus.IGNORED, "room name is not a valid room id")
        except TimeoutError:
            raise unavailable("Temporal did not answer in time") from None
        except TelephonyError as exc:
            if not isinstance(exc, TelephonyUnavailable):
                log.warning("webhook %s %s not delivered: %s", event.event, event.id, exc)
            # Any failure to deliver is answered 503, so LiveKit retries rather than loses it.
            raise unavailable(str(exc), ErrorCode(exc.code)) from None
        if not delivered:
            return Outcome(WebhookStatus.IGNORED, "room is not registered")
        return Outcome(WebhookStatus.PROCESSED)


def _livekit_event(event: WebhookEvent, kind: LiveKitEventKind) -> LiveKitEvent:
    if not event.room.sid:
        raise Malformed(f"{event.event} without room.sid")
    if not event.id:
        raise Malformed(f"{event.event} without an event id")
    if event.created_at <= 0:
        raise Malformed(f"{event.event} without created_at")
    try:
        created_at = datetime.fromtimestamp(event.created_at, UTC)
        return LiveKitEvent(
            kind=kind,
            room_sid=event.room.sid,
            event_id=event.id,
            created_at=created_at,
            room_created_at=incarnation_time(event.room.creation_time_ms, event.room.creation_time),
        )
    except (OverflowError, OSError, ValueError, ValidationError) as exc:
        raise Malformed(f"{event.event} has an invalid field ({type(exc).__name__})") from None
