"""The webhook gateway: one stateless aiohttp app for LiveKit webhooks, the backend HTTP API,
health, readiness, metrics and the OpenAPI document. See README.md beside this file."""

from webhook_gateway.app import Deadlines, GatewayConfigError, create_app

__all__ = ["Deadlines", "GatewayConfigError", "create_app"]
