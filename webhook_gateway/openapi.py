"""`GET /openapi.json`: OpenAPI 3.1, its schemas generated from the same pydantic models the
handlers read and write."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from telephony.models import ROOM_ID_PATTERN, DialInInfo, TelephonyConfig
from webhook_gateway.bodies import MAX_BODY_BYTES
from webhook_gateway.schemas import (
    ErrorBody,
    HealthAnswer,
    ReadinessAnswer,
    RegisterRoomBody,
    RotatePinBody,
    SetScheduleBody,
    WebhookAnswer,
)

REF = "#/components/schemas/{model}"
_MODELS: list[tuple[type[BaseModel], JsonSchemaMode]] = [
    (RegisterRoomBody, "validation"),
    (RotatePinBody, "validation"),
    (SetScheduleBody, "validation"),
    (DialInInfo, "serialization"),
    (TelephonyConfig, "serialization"),
    (ErrorBody, "serialization"),
    (WebhookAnswer, "serialization"),
    (HealthAnswer, "serialization"),
    (ReadinessAnswer, "serialization"),
]


def build_openapi(version: str) -> dict[str, Any]:
    refs, definitions = models_json_schema(_MODELS, ref_template=REF)
    schemas: dict[str, Any] = definitions.get("$defs", {})

    def ref(model: type[BaseModel], mode: JsonSchemaMode) -> dict[str, Any]:
        return dict(refs[(model, mode)])

    def json_content(model: type[BaseModel], mode: JsonSchemaMode) -> dict[str, Any]:
        return {"application/json": {"schema": ref(model, mode)}}

    def error(description: str, retry_after: bool = False) -> dict[str, Any]:
        answer: dict[str, Any] = {
            "description": description,
            "content": json_content(ErrorBody, "serialization"),
        }
        if retry_after:
            answer["headers"] = {
                "Retry-After": {
                    "description": "seconds to wait before retrying",
                    "schema": {"type": "string"},
                }
            }
        return answer

    def ok(model: type[BaseModel], description: str) -> dict[str, Any]:
        return {"description": description, "content": json_content(model, "serialization")}

    room_errors = {
        "400": error("invalid room id, schedule, PIN or JSON body"),
        "401": error("missing or invalid API token"),
        "404": error("the room is not registered"),
        "409": error(
            "telephony is disabled, the PIN space is exhausted, the requested PIN is another "
            "room's (`pin_taken`), or the room has another PIN (`pin_conflict`)"
        ),
        "502": error("Temporal refused the call for an unclassified reason"),
        "503": error("Temporal is unreachable; retry later", retry_after=True),
    }
    room_id = {
        "name": "room_id",
        "in": "path",
        "required": True,
        "description": "the LiveKit room name (a UUID in La Suite Meet)",
        "schema": {"type": "string", "pattern": ROOM_ID_PATTERN, "maxLength": 128},
    }
    secured: list[dict[str, list[str]]] = [{"bearerAuth": []}]

    def room_operation(
        operation_id: str,
        summary: str,
        success: dict[str, Any],
        body: type[BaseModel] | None = None,
        body_required: bool = False,
        success_status: str = "200",
    ) -> dict[str, Any]:
        operation: dict[str, Any] = {
            "operationId": operation_id,
            "summary": summary,
            "tags": ["rooms"],
            "security": secured,
            "parameters": [room_id],
            "responses": {success_status: success, **room_errors},
        }
        if body is not None:
            operation["responses"]["413"] = error(f"body over {MAX_BODY_BYTES} bytes")
            operation["requestBody"] = {
                "required": body_required,
                "content": json_content(body, "validation"),
            }
        return operation

    dial_in = ok(DialInInfo, "the room's dial-in info")
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "meet-telephony gateway",
            "version": version,
            "description": "LiveKit webhooks in, the backend telephony API, and operations.",
        },
        # Relative: the gateway that serves this document.
        "servers": [{"url": "/", "description": "this gateway"}],
        "paths": {
            "/api/v1/rooms/{room_id}": {
                "put": room_operation(
                    "registerRoom",
                    "Register a room (idempotent): allocates its PIN on the first call",
                    dial_in,
                    RegisterRoomBody,
                ),
                "get": room_operation("getRoom", "A registered room's dial-in info", dial_in),
                "delete": room_operation(
                    "unregisterRoom",
                    "Unregister: removes the dispatch rule and releases the PIN",
                    {"description": "unregistered"},
                    success_status="204",
                ),
            },
            "/api/v1/rooms/{room_id}/pin/rotate": {
                "post": room_operation(
                    "rotatePin",
                    "Give the room a new PIN: the requested one if free, else a drawn one",
                    dial_in,
                    RotatePinBody,
                ),
            },
            "/api/v1/rooms/{room_id}/schedule": {
                "put": room_operation(
                    "setSchedule",
                    "Replace the windows in which phone access opens early",
                    dial_in,
                    SetScheduleBody,
                    body_required=True,
                ),
            },
            "/api/v1/config": {
                "get": {
                    "operationId": "getConfig",
                    "summary": "Public telephony configuration (no token needed)",
                    "tags": ["config"],
                    "security": [],
                    "responses": {"200": ok(TelephonyConfig, "the telephony configuration")},
                }
            },
            "/livekit/webhook": {
                "post": {
                    "operationId": "livekitWebhook",
                    "summary": "LiveKit webhook receiver (signed by LiveKit, no API token)",
                    "tags": ["livekit"],
                    "security": [],
                    "parameters": [
                        {
                            "name": "Authorization",
                            "in": "header",
                            "required": True,
                            "description": "the LiveKit webhook JWT, bare or as `Bearer <jwt>`",
                            "schema": {"type": "string"},
                        }
                    ],
                    "requestBody": {
                        "required": True,
                        "description": "a LiveKit `WebhookEvent` as JSON",
                        "content": {
                            "application/webhook+json": {"schema": {"type": "object"}},
                            "application/json": {"schema": {"type": "object"}},
                        },
                    },
                    "responses": {
                        "200": ok(WebhookAnswer, "processed, or ignored with a reason"),
                        "400": error("not a usable WebhookEvent"),
                        "401": error("missing, invalid or expired signature, or body mismatch"),
                        "413": error(f"body over {MAX_BODY_BYTES} bytes"),
                        "503": error("Temporal is unreachable; LiveKit retries", retry_after=True),
                    },
                }
            },
            "/healthz": {
                "get": {
                    "operationId": "health",
                    "summary": "The process is up",
                    "tags": ["operations"],
                    "security": [],
                    "responses": {"200": ok(HealthAnswer, "up")},
                }
            },
            "/readyz": {
                "get": {
                    "operationId": "ready",
                    "summary": "Temporal is reachable",
                    "tags": ["operations"],
                    "security": [],
                    "responses": {
                        "200": ok(ReadinessAnswer, "ready"),
                        "503": {
                            **ok(ReadinessAnswer, "Temporal is unreachable"),
                            "headers": {
                                "Retry-After": {
                                    "description": "seconds to wait before retrying",
                                    "schema": {"type": "string"},
                                }
                            },
                        },
                    },
                }
            },
            "/metrics": {
                "get": {
                    "operationId": "metrics",
                    "summary": "Prometheus metrics",
                    "tags": ["operations"],
                    "security": [],
                    "responses": {
                        "200": {
                            "description": "Prometheus text exposition format",
                            "content": {"text/plain": {"schema": {"type": "string"}}},
                        }
                    },
                }
            },
        },
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearerAuth": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "TELEPHONY_API_TOKEN",
                }
            },
        },
    }
