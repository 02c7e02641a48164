"""PINs at rest: what an operator sees of a full scenario in Temporal, through the `temporal` CLI,
without the payload key (ids and ciphertext only) and with the gateway's codec endpoint
(the decoded history); the codec endpoint's protocol and its guard."""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from temporalio.api.common.v1 import Payload
from temporalio.api.sdk.v1 import WorkflowMetadata
from temporalio.testing import WorkflowEnvironment

from livekit_emulator import LiveKitEmulator
from telephony.codec import EncryptionCodec, PayloadKeys
from telephony.contracts import room_workflow_id
from tests.fixtures import keys
from tests.fixtures.gateway import GatewayStack, gateway_stack
from tests.fixtures.polling import eventually
from tests.fixtures.processes import installed_binary
from tests.fixtures.stack import PHONE_NUMBER

CODEC_TOKEN = "codec-test-token-0123456789abcdef"
UI_ORIGIN = "http://127.0.0.1:8233"
PIN_LENGTH = 10  # long enough that no id or hex digest holds a PIN's digits by chance


@pytest.fixture
async def gw(
    temporal_env: WorkflowEnvironment, emulator: LiveKitEmulator
) -> AsyncIterator[GatewayStack]:
    async with gateway_stack(
        temporal_env,
        emulator,
        telephony_codec_token=CODEC_TOKEN,
        telephony_codec_cors_origins=[UI_ORIGIN],
        room_telephony_pin_length=PIN_LENGTH,
    ) as running:
        running.emulator.add_webhook_url(f"{running.gateway.url}/livekit/webhook")
        yield running


# --- what the `temporal` CLI shows -----------------------------------------------------------


async def temporal_cli(gw: GatewayStack, *args: str, codec: bool = False) -> Any:
    address = gw.stack.env.client.service_client.config.target_host
    command = [installed_binary("temporal"), *args, "--address", address, "-o", "json"]
    environment = dict(os.environ)
    if codec:
        command += ["--codec-endpoint", f"{gw.gateway.url}/codec"]
        # Through the environment: a command line would show the token to `ps`.
        environment["TEMPORAL_CODEC_AUTH"] = f"Bearer {CODEC_TOKEN}"
    process = await asyncio.create_subprocess_exec(
        *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=environment
    )
    out, err = await process.communicate()
    assert process.returncode == 0, err.decode()
    text = out.decode()
    return (
        json.loads(text)
        if text.lstrip().startswith(("{", "["))
        else [json.loads(line) for line in text.splitlines() if line.strip()]
    )


def strings(value: Any) -> Iterator[str]:
    """Every string in a JSON value, and the text of every string that is base64 (payload data
    and search attribute values are base64 in the CLI's JSON)."""
    if isinstance(value, str):
        yield value
        decoded = _base64_text(value)
        if decoded is not None:
            yield decoded
    elif isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings(item)


def _base64_text(value: str) -> str | None:
    if len(value) % 4 or len(value) < 8:
        return None
    try:
        return base64.b64decode(value, validate=True).decode("latin-1")
    except (binascii.Error, ValueError):
        return None


def shows(value: Any, secret: str) -> bool:
    return any(secret in text for text in strings(value))


async def full_scenario(gw: GatewayStack) -> tuple[str, list[str]]:
    """A room registered, live with a rule, called, rotated, scheduled, ended; another
    registered and unregistered. Returns the first room and every PIN handed out."""
    room, other = str(uuid.uuid4()), str(uuid.uuid4())
    emulator = gw.emulator
    first_pin = (await gw.gateway.api("PUT", f"/rooms/{room}")).json["pin"]
    await emulator.create_room(room, empty_timeout=600)
    await emulator.join_participant(room, "web-alice")
    await eventually(lambda: gw.stack.rules_for(room), message="dispatch rule created")
    assert (await emulator.simulate_call(first_pin, number=PHONE_NUMBER)).accepted
    rotated_pin = (await gw.gateway.api("POST", f"/rooms/{room}/pin/rotate")).json["pin"]
    start = (datetime.now(UTC) + timedelta(days=30)).replace(microsecond=0)
    window = {"starts_at": start.isoformat(), "ends_at": (start + timedelta(hours=1)).isoformat()}
    windows = {"windows": [window]}
    assert (await gw.gateway.api("PUT", f"/rooms/{room}/schedule", json=windows)).status == 200
    await emulator.delete_room(room)
    await eventually(lambda: not gw.stack.rules_for(room), message="dispatch rule deleted")
    other_pin = (await gw.gateway.api("PUT", f"/rooms/{other}")).json["pin"]
    assert (await gw.gateway.api("DELETE", f"/rooms/{other}")).status == 204
    return room, [first_pin, rotated_pin, other_pin]


async def test_no_pin_appears_in_workflow_ids_search_attributes_or_raw_history(
    gw: GatewayStack,
) -> None:
    room, pins = await full_scenario(gw)
    query = f"TaskQueue = '{gw.stack.settings.telephony_task_queue}'"
    listed = await temporal_cli(gw, "workflow", "list", "--query", query)
    ids = [execution["execution"]["workflowId"] for execution in listed]
    assert room_workflow_id(room) in ids
    assert [i for i in ids if i.startswith("telephony-pin-")], "no lease listed"
    for pin in pins:
        assert not shows(listed, pin), f"a PIN shows in the workflow list: {listed}"
    for workflow_id in ids:
        history = await temporal_cli(gw, "workflow", "show", "--workflow-id", workflow_id)
        for pin in pins:
            assert not shows(history, pin), f"a PIN shows in the raw history of {workflow_id}"


async def test_the_codec_endpoint_lets_the_temporal_cli_read_the_history(
    gw: GatewayStack,
) -> None:
    room, pins = await full_scenario(gw)
    history = await temporal_cli(
        gw, "workflow", "show", "--workflow-id", room_workflow_id(room), codec=True
    )
    # The current run (continued as new when the session ended) holds the rotated PIN.
    assert shows(history, pins[1])


async def test_a_registered_room_shows_its_summary_in_the_ui(gw: GatewayStack) -> None:
    room = str(uuid.uuid4())
    assert (await gw.gateway.api("PUT", f"/rooms/{room}")).status == 200
    description = await gw.stack.env.client.get_workflow_handle(room_workflow_id(room)).describe()
    # Set at start only: a continued-as-new run has none (the SDK cannot carry it over).
    assert await description.static_summary() == f"phone access of room {room}"


async def test_the_room_keeps_pin_free_details_for_the_ui_up_to_date(gw: GatewayStack) -> None:
    room, pins = await full_scenario(gw)
    handle = gw.stack.env.client.get_workflow_handle(room_workflow_id(room))
    metadata = await handle.query("__temporal_workflow_metadata", result_type=WorkflowMetadata)
    details = metadata.current_details
    assert "**idle** (registered)" in details
    assert "live session: none" in details
    assert "window: " in details
    assert not any(pin in details for pin in pins), details


# --- the codec endpoint ----------------------------------------------------------------------


def payload_json(payloads: list[Payload]) -> dict[str, Any]:
    return {
        "payloads": [
            {
                "metadata": {k: base64.b64encode(v).decode() for k, v in p.metadata.items()},
                "data": base64.b64encode(p.data).decode(),
            }
            for p in payloads
        ]
    }


def from_json(body: dict[str, Any]) -> list[Payload]:
    return [
        Payload(
            metadata={k: base64.b64decode(v) for k, v in p.get("metadata", {}).items()},
            data=base64.b64decode(p.get("data", "")),
        )
        for p in body["payloads"]
    ]


PLAIN = Payload(metadata={"encoding": b"json/plain"}, data=b'{"pin": "8412003919"}')


async def codec_call(
    gw: GatewayStack, name: str, body: Any, headers: dict[str, str] | None = None
) -> Any:
    given = headers if headers is not None else {"Authorization": f"Bearer {CODEC_TOKEN}"}
    url = f"{gw.gateway.url}/codec/{name}"
    async with gw.gateway.session.post(
        url, json=body, headers={"X-Namespace": "default", **given}
    ) as response:
        return response.status, await response.json(), response.headers


async def test_the_codec_endpoint_encrypts_and_decrypts_a_payload(gw: GatewayStack) -> None:
    status, encoded, _ = await codec_call(gw, "encode", payload_json([PLAIN]))
    assert status == 200
    sealed = from_json(encoded)
    assert sealed[0].metadata["encoding"] == b"binary/encrypted"
    assert b"8412003919" not in sealed[0].data
    status, decoded, _ = await codec_call(gw, "decode", encoded)
    assert (status, from_json(decoded)) == (200, [PLAIN])


async def test_a_payload_written_with_an_old_key_still_decodes_after_rotation(
    gw: GatewayStack,
) -> None:
    # Written when `k0` was the only key; the gateway now encrypts with `k1` and keeps `k0`.
    written = await EncryptionCodec(PayloadKeys.parse(keys.OLD_KEY)).encode([PLAIN])
    assert written[0].metadata["encryption-key-id"] == b"k0"
    status, decoded, _ = await codec_call(gw, "decode", payload_json(written))
    assert (status, from_json(decoded)) == (200, [PLAIN])


async def test_a_payload_of_a_key_no_longer_held_is_a_clear_400(gw: GatewayStack) -> None:
    retired = PayloadKeys.parse(f"k9:{base64.b64encode(bytes(32)).decode()}")
    written = await EncryptionCodec(retired).encode([PLAIN])
    status, body, _ = await codec_call(gw, "decode", payload_json(written))
    assert (status, body["error"]) == (400, "undecodable_payload")
    assert "k9" in body["message"]


@pytest.mark.parametrize(
    ("headers", "code"),
    [
        ({}, "missing_token"),
        ({"Authorization": "Bearer "}, "missing_token"),
        ({"Authorization": "Bearer not-the-codec-token"}, "invalid_token"),
        ({"Authorization": f"Bearer {keys.PIN_HASH_KEY}"}, "invalid_token"),
    ],
)
async def test_the_codec_endpoint_refuses_a_missing_or_wrong_token(
    gw: GatewayStack, headers: dict[str, str], code: str
) -> None:
    encoded = payload_json(
        await EncryptionCodec(PayloadKeys.parse(keys.CURRENT_KEY)).encode([PLAIN])
    )
    status, body, _ = await codec_call(gw, "decode", encoded, headers)
    assert (status, body["error"]) == (401, code)
    assert "8412003919" not in json.dumps(body)


async def test_the_api_token_does_not_open_the_codec_endpoint(gw: GatewayStack) -> None:
    assert gw.gateway.token is not None
    headers = {"Authorization": f"Bearer {gw.gateway.token}"}
    status, body, _ = await codec_call(gw, "decode", payload_json([PLAIN]), headers)
    assert (status, body["error"]) == (401, "invalid_token")


async def test_a_signed_in_browser_decodes_with_its_cookie_alone(gw: GatewayStack) -> None:
    url = f"{gw.gateway.url}/codec/login"
    async with gw.gateway.session.post(url, data={"token": "wrong"}) as refused:
        assert refused.status == 401
    async with gw.gateway.session.post(url, data={"token": CODEC_TOKEN}) as signed_in:
        assert signed_in.status == 200
        cookie = signed_in.cookies["telephony_codec"]
    assert cookie["httponly"] and cookie["secure"] and cookie["samesite"] == "None"
    assert CODEC_TOKEN not in cookie.value
    headers = {"Cookie": f"telephony_codec={cookie.value}", "Origin": UI_ORIGIN}
    status, decoded, response_headers = await codec_call(
        gw, "decode", payload_json([PLAIN]), headers
    )
    assert (status, from_json(decoded)) == (200, [PLAIN])
    assert response_headers["Access-Control-Allow-Origin"] == UI_ORIGIN
    assert response_headers["Access-Control-Allow-Credentials"] == "true"


async def test_the_ui_origin_passes_the_cors_preflight_and_another_does_not(
    gw: GatewayStack,
) -> None:
    url = f"{gw.gateway.url}/codec/decode"
    preflight = {"Access-Control-Request-Method": "POST"}
    async with gw.gateway.session.options(url, headers={**preflight, "Origin": UI_ORIGIN}) as ok:
        assert ok.status == 204
        assert ok.headers["Access-Control-Allow-Origin"] == UI_ORIGIN
        assert "X-Namespace" in ok.headers["Access-Control-Allow-Headers"]
    evil = {**preflight, "Origin": "https://evil.example"}
    async with gw.gateway.session.options(url, headers=evil) as refused:
        assert refused.status == 403
        assert "Access-Control-Allow-Origin" not in refused.headers


async def test_without_a_codec_token_there_is_no_codec_endpoint(
    temporal_env: WorkflowEnvironment, emulator: LiveKitEmulator
) -> None:
    async with gateway_stack(temporal_env, emulator) as running:
        url = f"{running.gateway.url}/codec/decode"
        headers = {"Authorization": f"Bearer {CODEC_TOKEN}"}
        async with running.gateway.session.post(url, json={"payloads": []}, headers=headers) as r:
            assert r.status == 404
