"""What a hostile or careless client can send the gateway: refused with its JSON error body,
with nothing of the request (a token, raw control characters) in the logs."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any
from urllib.parse import urlsplit

import pytest

from telephony.client import TelephonyError
from tests.fixtures.gateway import API_TOKEN, GatewayStack
from webhook_gateway.schemas import ErrorCode

TOKEN_MARK = "tok3n-that-must-not-be-logged-"


async def raw_request(url: str, request: bytes) -> tuple[int, dict[str, Any]]:
    """Send bytes no HTTP client library would send; the status and JSON body of the answer."""
    parts = urlsplit(url)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    try:
        writer.write(request)
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(), 10)
    finally:
        writer.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


def logged(caplog: pytest.LogCaptureFixture) -> str:
    return "\n".join(
        f"{record.getMessage()} {record.exc_info!r} {record.exc_text}" for record in caplog.records
    )


async def test_a_header_over_8_kib_is_a_json_431_and_nothing_of_it_is_logged(
    gw: GatewayStack, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    token = TOKEN_MARK + "x" * 9000
    request = (
        f"GET /api/v1/rooms/r HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer {token}\r\n\r\n"
    ).encode()

    status, body = await raw_request(gw.gateway.url, request)

    assert (status, body["error"]) == (431, "header_too_large")
    assert TOKEN_MARK not in json.dumps(body)
    assert TOKEN_MARK not in logged(caplog)
    assert all(record.exc_info is None for record in caplog.records), "a traceback was logged"


async def test_control_characters_in_the_request_line_are_a_json_400_without_traceback(
    gw: GatewayStack, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)

    status, body = await raw_request(
        gw.gateway.url, b"GET /probe\x1b\x01 HTTP/1.1\r\nHost: gw\r\n\r\n"
    )

    assert (status, body["error"]) == (400, "bad_request")
    assert "\x1b" not in logged(caplog)
    assert all(record.exc_info is None for record in caplog.records), "a traceback was logged"


async def test_encoded_control_characters_reach_the_access_log_escaped(
    gw: GatewayStack, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="webhook_gateway.access")

    reply = await gw.gateway.get("/probe%1b%01%0aforged")

    assert reply.status == 404
    lines = [r.getMessage() for r in caplog.records if r.name == "webhook_gateway.access"]
    assert any("/probe\\x1b\\x01\\x0aforged" in line for line in lines), lines
    assert not any(ch in line for line in lines for ch in "\x1b\x01\n")


@pytest.mark.parametrize(
    ("authorization", "code"),
    [
        (None, "missing_token"),
        ("", "missing_token"),
        ("Bearer ", "missing_token"),
        ("Bearer not-the-token", "invalid_token"),
        (f"Basic {API_TOKEN}", "invalid_token"),
        (f"Bearer {API_TOKEN}x", "invalid_token"),
    ],
)
async def test_the_api_refuses_a_missing_empty_or_wrong_token(
    gw: GatewayStack, authorization: str | None, code: str
) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}

    reply = await gw.gateway.get("/api/v1/rooms/some-room", headers=headers)

    assert (reply.status, reply.json["error"]) == (401, code)
    assert reply.headers["WWW-Authenticate"].startswith("Bearer")


async def test_the_api_accepts_its_token(gw: GatewayStack) -> None:
    reply = await gw.gateway.get("/api/v1/rooms/some-room", headers=gw.gateway.auth())

    assert (reply.status, reply.json["error"]) == (404, "not_registered")


# --- the OpenAPI document says what the gateway answers ----------------------------------------


async def openapi(gw: GatewayStack) -> dict[str, Any]:
    reply = await gw.gateway.get("/openapi.json")
    assert reply.status == 200
    document: dict[str, Any] = reply.json
    return document


async def test_openapi_lists_every_error_code_as_an_enum(gw: GatewayStack) -> None:
    schema = (await openapi(gw))["components"]["schemas"]

    codes = schema["ErrorCode"]["enum"]

    assert set(codes) == {code.value for code in ErrorCode}


def test_every_client_error_has_an_error_code() -> None:
    def subclasses(kind: type[TelephonyError]) -> list[type[TelephonyError]]:
        return [kind, *(s for sub in kind.__subclasses__() for s in subclasses(sub))]

    assert {kind.code for kind in subclasses(TelephonyError)} <= {c.value for c in ErrorCode}


async def test_openapi_lists_413_only_where_a_body_is_read(gw: GatewayStack) -> None:
    paths = (await openapi(gw))["paths"]

    with_413 = {
        (method, path)
        for path, operations in paths.items()
        for method, operation in operations.items()
        if "413" in operation["responses"]
    }

    assert with_413 and all(method in {"put", "post"} for method, _ in with_413)
    assert all("requestBody" in paths[path][method] for method, path in with_413)


async def test_openapi_names_its_server(gw: GatewayStack) -> None:
    assert (await openapi(gw))["servers"] == [{"url": "/", "description": "this gateway"}]
