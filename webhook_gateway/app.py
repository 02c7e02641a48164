"""`create_app(settings, client)`: the whole gateway as one stateless aiohttp application."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass
from datetime import timedelta
from importlib.metadata import PackageNotFoundError, version

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from telephony.client import TelephonyClient
from telephony.codec import EncryptionCodec
from telephony.settings import Settings, reveal
from webhook_gateway.api import Api
from webhook_gateway.codec import CodecEndpoint
from webhook_gateway.errors import RETRY_AFTER_SECONDS, ApiError, ErrorCode, error_response
from webhook_gateway.metrics import GatewayMetrics
from webhook_gateway.openapi import build_openapi
from webhook_gateway.schemas import HealthAnswer, ReadinessAnswer
from webhook_gateway.webhooks import WebhookHandler

log = logging.getLogger(__name__)
access_log = logging.getLogger("webhook_gateway.access")

METRICS_KEY = web.AppKey("metrics", GatewayMetrics)
CLIENT_KEY = web.AppKey("telephony_client", TelephonyClient)
READINESS_TIMEOUT_SECONDS = 2.0


class GatewayConfigError(Exception):
    """The gateway cannot start with these settings (one line, for the operator)."""


@dataclass(frozen=True)
class Deadlines:
    """How long a request waits on Temporal before answering 503 (the caller retries).

    A signal normally takes milliseconds; registration runs activities (PIN draw, lease start).
    """

    webhook_seconds: float = 5.0
    api_seconds: float = 30.0


def create_app(
    settings: Settings,
    client: TelephonyClient,
    *,
    insecure_no_api_token: bool = False,
    deadlines: Deadlines = Deadlines(),
) -> web.Application:
    """The gateway app. Refuses (`GatewayConfigError`) to build without `TELEPHONY_API_TOKEN`
    unless `insecure_no_api_token` is set, which turns the API token check off."""
    token = reveal(settings.telephony_api_token)
    if not token and not insecure_no_api_token:
        raise GatewayConfigError(
            "TELEPHONY_API_TOKEN is not set: the backend API would be open to anyone "
            "(start with --insecure-no-api-token to allow that in development)"
        )
    if insecure_no_api_token:
        log.warning(
            "INSECURE: the backend API token check is DISABLED (--insecure-no-api-token); "
            "anyone who can reach this port can register, read and delete rooms and their PINs"
        )
    if not (settings.livekit_api_key and settings.livekit_api_secret):
        log.warning("LIVEKIT_API_KEY / LIVEKIT_API_SECRET are not set: every webhook will be 401")

    metrics = GatewayMetrics()
    app = web.Application(middlewares=[_observe(metrics), _errors])
    app[METRICS_KEY] = metrics
    app[CLIENT_KEY] = client

    webhooks = WebhookHandler(settings, client, metrics, deadlines.webhook_seconds)
    app.router.add_post("/livekit/webhook", webhooks.handle)
    api_token = None if insecure_no_api_token else token
    Api(client, api_token, deadlines.api_seconds).add_routes(app)

    openapi_body = json.dumps(build_openapi(_version()))

    async def openapi(request: web.Request) -> web.Response:
        return web.json_response(text=openapi_body)

    app.router.add_get("/openapi.json", openapi)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics.handle)
    if settings.telephony_codec_token:
        codec_endpoint(settings).add_routes(app)
    return app


def codec_endpoint(settings: Settings) -> CodecEndpoint:
    """The codec endpoint of `TELEPHONY_CODEC_TOKEN` (webhook_gateway/codec.py)."""
    keys = settings.payload_keys
    if keys is None:
        raise GatewayConfigError(
            "TELEPHONY_CODEC_TOKEN is set but TELEPHONY_PAYLOAD_KEYS is not: nothing to decode"
        )
    return CodecEndpoint(
        EncryptionCodec(keys),
        reveal(settings.telephony_codec_token),
        settings.telephony_codec_cors_origins,
    )


async def healthz(request: web.Request) -> web.Response:
    """The process is up (no dependency is checked)."""
    return web.json_response(text=HealthAnswer().model_dump_json())


async def readyz(request: web.Request) -> web.Response:
    """Temporal answers a health check within `READINESS_TIMEOUT_SECONDS`."""
    temporal = request.app[CLIENT_KEY].temporal
    try:
        healthy = await asyncio.wait_for(
            temporal.service_client.check_health(
                timeout=timedelta(seconds=READINESS_TIMEOUT_SECONDS)
            ),
            READINESS_TIMEOUT_SECONDS + 0.5,
        )
        reason = "reachable" if healthy else "not serving"
    except TimeoutError:
        healthy, reason = False, "timed out"
    except Exception as exc:  # any failure to reach it means "not ready"
        healthy, reason = False, f"unreachable ({type(exc).__name__})"
    answer = ReadinessAnswer(status="ready" if healthy else "unavailable", temporal=reason)
    if healthy:
        return web.json_response(text=answer.model_dump_json())
    return web.json_response(
        text=answer.model_dump_json(),
        status=503,
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


# --- middlewares ----------------------------------------------------------------------------


# aiohttp's own refusals (routing, its body limit), in the gateway's codes.
_HTTP_EXCEPTION_CODES = {
    404: ErrorCode.NOT_FOUND,
    405: ErrorCode.METHOD_NOT_ALLOWED,
    413: ErrorCode.BODY_TOO_LARGE,
}


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every error is the JSON error body; unexpected ones are logged, never shown."""
    try:
        return await handler(request)
    except ApiError as exc:
        return exc.response()
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        headers = {k: v for k, v in exc.headers.items() if k.lower() in {"allow", "retry-after"}}
        return error_response(
            exc.status,
            _HTTP_EXCEPTION_CODES.get(exc.status, ErrorCode.BAD_REQUEST)
            if exc.status < 500
            else ErrorCode.INTERNAL_ERROR,
            exc.reason,
            headers,
        )
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("unexpected error on %s %s", request.method, printable(request.rel_url.path))
        return error_response(500, ErrorCode.INTERNAL_ERROR, "an unexpected error occurred")


def _observe(metrics: GatewayMetrics) -> Middleware:
    """Access log (method, path, status, duration: no headers, no query string, no bodies) and
    request metrics, labelled by route template so that room ids do not become labels."""

    @web.middleware
    async def observe(request: web.Request, handler: Handler) -> web.StreamResponse:
        started = time.perf_counter()
        status = 500
        try:
            response = await handler(request)
            status = response.status
            return response
        finally:
            elapsed = time.perf_counter() - started
            route = _route_template(request)
            metrics.request(route, request.method, status, elapsed)
            access_log.info(
                "%s %s %d %.1fms",
                request.method,
                printable(request.rel_url.path),
                status,
                elapsed * 1000,
            )

    return observe


def printable(text: str) -> str:
    """`text` with control and other unprintable characters escaped (`\\x1b`): a path is the
    client's to choose, and raw escapes in a log line can rewrite a terminal or forge lines."""
    return "".join(
        c if c.isprintable() else (f"\\x{ord(c):02x}" if ord(c) < 0x100 else f"\\u{ord(c):04x}")
        for c in text
    )


def _route_template(request: web.Request) -> str:
    info = request.match_info
    resource = info.route.resource if info.http_exception is None else None
    return resource.canonical if resource is not None else "unmatched"


def _version() -> str:
    try:
        return version("meet-telephony")
    except PackageNotFoundError:
        return "0.0.0"
