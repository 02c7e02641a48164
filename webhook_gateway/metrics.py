"""Prometheus metrics on a registry of the app's own (several apps can live in one process)."""

from __future__ import annotations

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram
from prometheus_client.exposition import generate_latest

# Event names used as label values; anything else is counted as "other" so that a sender cannot
# grow the label set.
KNOWN_EVENTS = frozenset(
    {
        "room_started",
        "room_finished",
        "participant_joined",
        "participant_left",
        "participant_connection_aborted",
        "track_published",
        "track_unpublished",
        "egress_started",
        "egress_updated",
        "egress_ended",
        "ingress_started",
        "ingress_ended",
    }
)


class GatewayMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.webhooks = Counter(
            "telephony_gateway_webhooks",
            "LiveKit webhooks received, by event and outcome "
            "(processed, ignored, malformed, unauthorized, too_large, unavailable).",
            ["event", "outcome"],
            registry=self.registry,
        )
        self.webhook_latency = Histogram(
            "telephony_gateway_webhook_duration_seconds",
            "Time to answer a LiveKit webhook, by event.",
            ["event"],
            registry=self.registry,
        )
        self.requests = Counter(
            "telephony_gateway_http_requests",
            "HTTP requests answered, by route template, method and status.",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.request_latency = Histogram(
            "telephony_gateway_http_request_duration_seconds",
            "Time to answer an HTTP request, by route template and method.",
            ["route", "method"],
            registry=self.registry,
        )

    def webhook(self, event: str, outcome: str, seconds: float) -> None:
        label = event if event in KNOWN_EVENTS else ("none" if not event else "other")
        self.webhooks.labels(event=label, outcome=outcome).inc()
        self.webhook_latency.labels(event=label).observe(seconds)

    def request(self, route: str, method: str, status: int, seconds: float) -> None:
        self.requests.labels(route=route, method=method, status=str(status)).inc()
        self.request_latency.labels(route=route, method=method).observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)

    async def handle(self, request: web.Request) -> web.Response:
        """`GET /metrics`: the Prometheus text format."""
        response = web.Response(body=self.render())
        response.headers["Content-Type"] = CONTENT_TYPE_LATEST
        return response
