"""The backend HTTP API, `/api/v1`: the TelephonyClient over HTTP, behind a bearer token, with
JSON errors `{"error", "message"}` and no 500 for bad input."""

from __future__ import annotations

import secrets
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from temporalio.testing import WorkflowEnvironment

from livekit_emulator import LiveKitEmulator
from tests.fixtures.gateway import GatewayStack, gateway_stack, running_gateway
from tests.fixtures.stack import PHONE_NUMBER
from webhook_gateway import GatewayConfigError, create_app


def new_room() -> str:
    return str(uuid.uuid4())


def window(starts_in: timedelta, lasts: timedelta = timedelta(hours=1)) -> dict[str, str]:
    starts_at = datetime.now(UTC) + starts_in
    return {"starts_at": starts_at.isoformat(), "ends_at": (starts_at + lasts).isoformat()}


# --- rooms ------------------------------------------------------------------------------------


async def test_put_registers_a_room_and_answers_its_dial_in_info(gw: GatewayStack) -> None:
    room = new_room()

    reply = await gw.gateway.api("PUT", f"/rooms/{room}")

    assert reply.status == 200
    assert reply.json["room_id"] == room
    assert reply.json["state"] == "idle"
    assert len(reply.json["pin"]) == gw.stack.settings.room_telephony_pin_length
    assert reply.json["numbers"][0]["e164"] == PHONE_NUMBER


async def test_put_again_returns_the_same_pin(gw: GatewayStack) -> None:
    room = new_room()
    first = await gw.gateway.api("PUT", f"/rooms/{room}")

    second = await gw.gateway.api("PUT", f"/rooms/{room}")

    assert second.json["pin"] == first.json["pin"]


async def test_put_with_a_schedule_registers_the_room_with_it(gw: GatewayStack) -> None:
    slot = window(timedelta(days=1))

    reply = await gw.gateway.api("PUT", f"/rooms/{new_room()}", json={"schedule": [slot]})

    assert reply.status == 200
    assert len(reply.json["schedule"]) == 1


async def test_get_answers_the_dial_in_info_of_a_registered_room(gw: GatewayStack) -> None:
    room = new_room()
    registered = await gw.gateway.api("PUT", f"/rooms/{room}")

    reply = await gw.gateway.api("GET", f"/rooms/{room}")

    assert (reply.status, reply.json) == (200, registered.json)


async def test_rotate_gives_the_room_a_new_pin(gw: GatewayStack) -> None:
    room = new_room()
    before = await gw.gateway.api("PUT", f"/rooms/{room}")

    reply = await gw.gateway.api("POST", f"/rooms/{room}/pin/rotate")

    assert reply.status == 200
    assert reply.json["pin"] != before.json["pin"]
    assert (await gw.gateway.api("GET", f"/rooms/{room}")).json["pin"] == reply.json["pin"]


def requested_pin() -> str:
    # 9 digits: a length no random draw of the shared dev server uses.
    return "".join(secrets.choice("0123456789") for _ in range(9))


async def test_put_with_a_free_pin_registers_the_room_with_it(gw: GatewayStack) -> None:
    pin = requested_pin()

    reply = await gw.gateway.api("PUT", f"/rooms/{new_room()}", json={"pin": pin})

    assert (reply.status, reply.json["pin"]) == (200, pin)


async def test_put_again_with_the_pin_the_room_has_is_200_and_changes_nothing(
    gw: GatewayStack,
) -> None:
    pin, room = requested_pin(), new_room()
    first = await gw.gateway.api("PUT", f"/rooms/{room}", json={"pin": pin})

    again = await gw.gateway.api("PUT", f"/rooms/{room}", json={"pin": pin})

    assert (first.status, again.status) == (200, 200)
    assert again.json == first.json


async def test_put_with_another_rooms_pin_is_409_pin_taken(gw: GatewayStack) -> None:
    pin, holder = requested_pin(), new_room()
    await gw.gateway.api("PUT", f"/rooms/{holder}", json={"pin": pin})

    reply = await gw.gateway.api("PUT", f"/rooms/{new_room()}", json={"pin": pin})

    assert (reply.status, reply.json["error"]) == (409, "pin_taken")
    assert holder not in reply.json["message"] and pin not in reply.json["message"]


async def test_put_with_a_pin_other_than_the_rooms_is_409_pin_conflict(gw: GatewayStack) -> None:
    room = new_room()
    await gw.gateway.api("PUT", f"/rooms/{room}")

    reply = await gw.gateway.api("PUT", f"/rooms/{room}", json={"pin": requested_pin()})

    assert (reply.status, reply.json["error"]) == (409, "pin_conflict")


@pytest.mark.parametrize("pin", ["123", "12a456", 123456, "1" * 17])
async def test_put_with_a_pin_that_is_not_4_to_16_digits_is_400(
    gw: GatewayStack, pin: object
) -> None:
    reply = await gw.gateway.api("PUT", f"/rooms/{new_room()}", json={"pin": pin})

    assert (reply.status, reply.json["error"]) == (400, "invalid_pin")


async def test_rotate_with_a_requested_pin_gives_the_room_that_pin(gw: GatewayStack) -> None:
    room, pin = new_room(), requested_pin()
    await gw.gateway.api("PUT", f"/rooms/{room}")

    reply = await gw.gateway.api("POST", f"/rooms/{room}/pin/rotate", json={"pin": pin})

    assert (reply.status, reply.json["pin"]) == (200, pin)


async def test_put_schedule_replaces_the_rooms_windows(gw: GatewayStack) -> None:
    room = new_room()
    await gw.gateway.api("PUT", f"/rooms/{room}")
    slots = [window(timedelta(days=1)), window(timedelta(days=2))]

    reply = await gw.gateway.api("PUT", f"/rooms/{room}/schedule", json={"windows": slots})

    assert reply.status == 200
    assert len(reply.json["schedule"]) == 2


async def test_delete_unregisters_the_room_with_204(gw: GatewayStack) -> None:
    room = new_room()
    await gw.gateway.api("PUT", f"/rooms/{room}")

    reply = await gw.gateway.api("DELETE", f"/rooms/{room}")

    assert (reply.status, reply.json) == (204, None)
    assert (await gw.gateway.api("GET", f"/rooms/{room}")).status == 404


# --- errors -----------------------------------------------------------------------------------


async def test_an_unknown_room_is_404(gw: GatewayStack) -> None:
    reply = await gw.gateway.api("GET", f"/rooms/{new_room()}")

    assert (reply.status, reply.json["error"]) == (404, "not_registered")


async def test_rotating_the_pin_of_an_unknown_room_is_404(gw: GatewayStack) -> None:
    reply = await gw.gateway.api("POST", f"/rooms/{new_room()}/pin/rotate")

    assert (reply.status, reply.json["error"]) == (404, "not_registered")


async def test_a_bad_room_id_is_400(gw: GatewayStack) -> None:
    reply = await gw.gateway.api("PUT", "/rooms/-starts-with-a-dash")

    assert (reply.status, reply.json["error"]) == (400, "invalid_room_id")


async def test_a_schedule_window_ending_before_it_starts_is_400(gw: GatewayStack) -> None:
    room = new_room()
    await gw.gateway.api("PUT", f"/rooms/{room}")
    backwards = window(timedelta(days=1), lasts=timedelta(hours=-1))

    reply = await gw.gateway.api("PUT", f"/rooms/{room}/schedule", json={"windows": [backwards]})

    assert (reply.status, reply.json["error"]) == (400, "invalid_schedule")
    assert "ends_at must be after starts_at" in reply.json["message"]


ANCIENT_WINDOW = {"starts_at": "0001-01-01T00:00:00+14:00", "ends_at": "0001-01-01T23:59:59Z"}


@pytest.mark.parametrize(
    "bad",
    [
        ANCIENT_WINDOW,
        window(timedelta(days=-3)),
        window(timedelta(days=800)),
        {"starts_at": "9999-12-31T00:00:00Z", "ends_at": "9999-12-31T23:59:59+00:00"},
    ],
    ids=["year-1", "three-days-ago", "beyond-two-years", "year-9999"],
)
async def test_a_window_outside_now_minus_a_day_to_two_years_is_400_and_breaks_nothing(
    gw: GatewayStack, bad: dict[str, str]
) -> None:
    room = new_room()
    await gw.gateway.api("PUT", f"/rooms/{room}")

    on_schedule = await gw.gateway.api("PUT", f"/rooms/{room}/schedule", json={"windows": [bad]})
    on_register = await gw.gateway.api("PUT", f"/rooms/{new_room()}", json={"schedule": [bad]})
    after = await gw.gateway.api("GET", f"/rooms/{room}")

    assert (on_schedule.status, on_schedule.json["error"]) == (400, "invalid_schedule")
    assert (on_register.status, on_register.json["error"]) == (400, "invalid_schedule")
    assert after.status == 200 and after.json["schedule"] == []


async def test_a_body_that_is_not_json_is_400(gw: GatewayStack) -> None:
    reply = await gw.gateway.api("PUT", f"/rooms/{new_room()}", data=b"{schedule: soon")

    assert (reply.status, reply.json["error"]) == (400, "invalid_json")


async def test_a_request_without_api_token_is_401(gw: GatewayStack) -> None:
    reply = await gw.gateway.api("GET", f"/rooms/{new_room()}", token="")

    assert (reply.status, reply.json["error"]) == (401, "missing_token")
    assert reply.headers["WWW-Authenticate"].startswith("Bearer")


async def test_a_request_with_a_wrong_api_token_is_401(gw: GatewayStack) -> None:
    reply = await gw.gateway.api("PUT", f"/rooms/{new_room()}", token="not-the-token")

    assert (reply.status, reply.json["error"]) == (401, "invalid_token")


async def test_registering_while_telephony_is_disabled_is_409(
    temporal_env: WorkflowEnvironment, emulator: LiveKitEmulator
) -> None:
    async with gateway_stack(temporal_env, emulator, room_telephony_enabled=False) as gw:
        reply = await gw.gateway.api("PUT", f"/rooms/{new_room()}")

    assert (reply.status, reply.json["error"]) == (409, "telephony_disabled")


async def test_an_unknown_route_is_a_json_404(gw: GatewayStack) -> None:
    reply = await gw.gateway.api("GET", "/nothing-here")

    assert (reply.status, reply.json["error"]) == (404, "not_found")


async def test_a_wrong_method_is_a_json_405_naming_the_allowed_ones(gw: GatewayStack) -> None:
    reply = await gw.gateway.api("PATCH", f"/rooms/{new_room()}")

    assert (reply.status, reply.json["error"]) == (405, "method_not_allowed")
    assert "PUT" in reply.headers["Allow"]


# --- configuration and the token requirement ---------------------------------------------------


async def test_config_is_public_and_lists_the_formatted_numbers(gw: GatewayStack) -> None:
    reply = await gw.gateway.api("GET", "/config", token="")

    assert reply.status == 200
    assert reply.json["enabled"] is True
    assert reply.json["default_country"] == "FR"
    assert reply.json["numbers"][0]["international"] == "+33 1 23 45 67 89"


async def test_the_gateway_refuses_to_start_without_an_api_token(gw: GatewayStack) -> None:
    settings = gw.stack.settings.model_copy(update={"telephony_api_token": None})

    with pytest.raises(GatewayConfigError, match="TELEPHONY_API_TOKEN"):
        create_app(settings, gw.stack.client)


async def test_the_insecure_dev_flag_serves_the_api_without_a_token_and_warns(
    gw: GatewayStack, caplog: pytest.LogCaptureFixture
) -> None:
    settings = gw.stack.settings.model_copy(update={"telephony_api_token": None})
    async with running_gateway(settings, gw.stack.client, insecure_no_api_token=True) as open_gw:
        reply = await open_gw.api("PUT", f"/rooms/{new_room()}")

    assert reply.status == 200
    assert any(r.levelname == "WARNING" and "INSECURE" in r.getMessage() for r in caplog.records)
