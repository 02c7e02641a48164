"""Operations: the OpenAPI document, health, readiness, metrics, the access log, and the
`meet-telephony gateway` process (token requirement, graceful stop)."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import socket
import sys
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import jsonschema_rs
import pytest
import schemathesis
from temporalio.testing import WorkflowEnvironment

from telephony.client import TelephonyClient
from tests.fixtures.gateway import API_TOKEN, GatewayStack, running_gateway, webhook_body
from webhook_gateway.server import lazy_temporal_client

CLI = str(Path(sys.executable).parent / "meet-telephony")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def refs_in(node: Any) -> list[str]:
    if isinstance(node, dict):
        own = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return own + [ref for value in node.values() for ref in refs_in(value)]
    if isinstance(node, list):
        return [ref for value in node for ref in refs_in(value)]
    return []


# --- OpenAPI ----------------------------------------------------------------------------------


async def test_openapi_document_is_valid_openapi_3_1(gw: GatewayStack) -> None:
    spec = (await gw.gateway.get("/openapi.json")).json

    assert spec["openapi"] == "3.1.0"
    # Schemathesis checks the document against the OpenAPI 3.1 meta-schema.
    schemathesis.openapi.from_dict(spec).validate()
    for name, schema in spec["components"]["schemas"].items():
        assert jsonschema_rs.meta.is_valid(schema), name
    for ref in refs_in(spec):
        assert ref.startswith("#/components/schemas/"), ref
        assert ref.rsplit("/", 1)[1] in spec["components"]["schemas"], ref


async def test_openapi_documents_every_route_the_app_serves(gw: GatewayStack) -> None:
    spec = (await gw.gateway.get("/openapi.json")).json
    documented = {(method.upper(), path) for path, item in spec["paths"].items() for method in item}

    assert documented == {
        ("PUT", "/api/v1/rooms/{room_id}"),
        ("GET", "/api/v1/rooms/{room_id}"),
        ("DELETE", "/api/v1/rooms/{room_id}"),
        ("POST", "/api/v1/rooms/{room_id}/pin/rotate"),
        ("PUT", "/api/v1/rooms/{room_id}/schedule"),
        ("GET", "/api/v1/config"),
        ("POST", "/livekit/webhook"),
        ("GET", "/healthz"),
        ("GET", "/readyz"),
        ("GET", "/metrics"),
    }


async def test_openapi_schemas_come_from_the_pydantic_models(gw: GatewayStack) -> None:
    schemas = (await gw.gateway.get("/openapi.json")).json["components"]["schemas"]

    assert set(schemas["DialInInfo"]["required"]) >= {"room_id", "pin", "numbers", "state"}
    assert schemas["ScheduleWindow"]["properties"]["starts_at"]["format"] == "date-time"


# --- health, readiness ------------------------------------------------------------------------


async def test_healthz_answers_200_while_the_process_is_up(gw: GatewayStack) -> None:
    reply = await gw.gateway.get("/healthz")

    assert (reply.status, reply.json) == (200, {"status": "ok"})


async def test_readyz_answers_200_when_temporal_is_reachable(gw: GatewayStack) -> None:
    reply = await gw.gateway.get("/readyz")

    assert (reply.status, reply.json) == (200, {"status": "ready", "temporal": "reachable"})


async def test_readyz_answers_503_with_retry_after_when_temporal_is_unreachable(
    gw: GatewayStack,
) -> None:
    nowhere = gw.stack.settings.model_copy(update={"temporal_address": f"127.0.0.1:{free_port()}"})
    client = TelephonyClient(await lazy_temporal_client(nowhere), nowhere)
    async with running_gateway(nowhere, client) as gateway:
        reply = await gateway.get("/readyz")

    assert (reply.status, reply.json["status"]) == (503, "unavailable")
    assert int(reply.headers["Retry-After"]) > 0


async def test_api_calls_answer_503_with_retry_after_when_temporal_is_unreachable(
    gw: GatewayStack,
) -> None:
    nowhere = gw.stack.settings.model_copy(update={"temporal_address": f"127.0.0.1:{free_port()}"})
    client = TelephonyClient(await lazy_temporal_client(nowhere), nowhere)
    async with running_gateway(nowhere, client) as gateway:
        reply = await gateway.api("GET", f"/rooms/{uuid.uuid4()}")

    assert (reply.status, reply.json["error"]) == (503, "temporal_unavailable")
    assert int(reply.headers["Retry-After"]) > 0


# --- metrics and the access log ---------------------------------------------------------------


async def test_metrics_count_webhooks_by_event_and_outcome(gw: GatewayStack) -> None:
    await gw.gateway.signed_webhook(webhook_body("room_started", str(uuid.uuid4())))

    text = (await gw.gateway.get("/metrics")).json

    assert 'telephony_gateway_webhooks_total{event="room_started",outcome="ignored"} 1.0' in text
    assert "telephony_gateway_webhook_duration_seconds_bucket" in text


async def test_metrics_count_api_requests_by_route_template_and_status(gw: GatewayStack) -> None:
    await gw.gateway.api("GET", f"/rooms/{uuid.uuid4()}")

    text = (await gw.gateway.get("/metrics")).json

    assert (
        'telephony_gateway_http_requests_total{method="GET",'
        'route="/api/v1/rooms/{room_id}",status="404"} 1.0'
    ) in text
    assert "telephony_gateway_http_request_duration_seconds_bucket" in text


async def test_access_log_has_method_path_and_status_but_no_token_or_pin(
    gw: GatewayStack, caplog: pytest.LogCaptureFixture
) -> None:
    room = str(uuid.uuid4())
    caplog.set_level(logging.DEBUG)
    pin = (await gw.gateway.api("PUT", f"/rooms/{room}")).json["pin"]
    await gw.gateway.api("GET", f"/rooms/{room}")
    await gw.gateway.signed_webhook(webhook_body("room_started", room))

    access = [r.getMessage() for r in caplog.records if r.name == "webhook_gateway.access"]
    assert any(line.startswith(f"GET /api/v1/rooms/{room} 200 ") for line in access)
    assert any(line.startswith("POST /livekit/webhook 200 ") for line in access)
    gateway_lines = [
        r.getMessage() for r in caplog.records if r.name.startswith(("webhook_gateway", "aiohttp"))
    ]
    assert API_TOKEN not in "\n".join(gateway_lines)
    assert pin not in "\n".join(gateway_lines)


# --- the process ------------------------------------------------------------------------------


def gateway_env(temporal_env: WorkflowEnvironment, port: int, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEPHONY_", "ROOM_"))}
    env.update(
        TEMPORAL_ADDRESS=temporal_env.client.service_client.config.target_host,
        TELEPHONY_GATEWAY_HOST="127.0.0.1",
        TELEPHONY_GATEWAY_PORT=str(port),
        **extra,
    )
    return env


async def test_the_gateway_command_refuses_to_start_without_an_api_token(
    temporal_env: WorkflowEnvironment,
) -> None:
    process = await asyncio.create_subprocess_exec(
        CLI,
        "gateway",
        env=gateway_env(temporal_env, free_port()),
        stderr=asyncio.subprocess.PIPE,
    )
    _, stderr = await asyncio.wait_for(process.communicate(), 30)

    assert process.returncode == 2, stderr.decode()
    assert b"TELEPHONY_API_TOKEN is not set" in stderr


async def test_the_gateway_command_serves_until_sigterm_then_exits_cleanly(
    temporal_env: WorkflowEnvironment,
) -> None:
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        CLI,
        "gateway",
        env=gateway_env(temporal_env, port, TELEPHONY_API_TOKEN=API_TOKEN),
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with aiohttp.ClientSession() as session:
            ready = await _poll_ready(session, f"http://127.0.0.1:{port}/readyz")
        assert ready == {"status": "ready", "temporal": "reachable"}
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(process.communicate(), 30)

    assert process.returncode == 0
    assert b"gateway stopped" in stderr


async def _poll_ready(session: aiohttp.ClientSession, url: str) -> Any:
    for _ in range(300):
        try:
            async with session.get(url) as response:
                if response.status == 200:
                    return json.loads(await response.text())
        except aiohttp.ClientConnectionError:
            pass
        await asyncio.sleep(0.05)
    pytest.fail(f"{url} never became ready")


async def test_the_gateway_imports_no_workflow_activity_or_worker_code() -> None:
    probe = (
        "import sys, webhook_gateway.server\n"
        "engine = {'workflows', 'activities', 'worker'}\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & engine))"
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", probe, stdout=asyncio.subprocess.PIPE
    )
    stdout, _ = await asyncio.wait_for(process.communicate(), 30)

    assert stdout.decode().strip() == "[]"
