"""Pure logic of the activities: LiveKit error classification, conflict parsing, PIN draws."""

from __future__ import annotations

import aiohttp
import pytest
from livekit.api import ServerError
from temporalio.exceptions import ApplicationError

from activities.dispatch_rules import create_request, is_ours_for, to_managed_rule
from activities.livekit_errors import (
    LIVEKIT_REQUEST_REJECTED,
    LIVEKIT_TRANSPORT_ERROR,
    LIVEKIT_UNAVAILABLE,
    classify,
    conflict_holder_id,
    is_not_found,
    is_rule_conflict,
    livekit_errors,
)
from activities.pins import INVALID_PIN_LENGTH, draw_pin, secret_pin
from telephony import contracts

PIN = "4815162342"
CONFLICT_MESSAGE = (
    "Dispatch rule for the same trunk, inbound number, number, and PIN combination already "
    'exists in dispatch rule "SDR_abc123XYZ" "telephony-room-r1"'
)


def classified(error: BaseException) -> ApplicationError:
    result = classify(error, "CreateSIPDispatchRule", secrets=(PIN,))
    assert result is not None
    return result


@pytest.mark.parametrize(
    ("code", "status"),
    [
        ("unknown", 401),  # LiveKit's middleware: bad token, plain-text body
        ("unauthenticated", 401),  # valid token without the grant
        ("permission_denied", 403),
        ("unknown", 403),
    ],
)
def test_http_401_and_403_are_non_retryable_credentials_rejections(code: str, status: int) -> None:
    error = classified(ServerError(code, "", status=status))
    assert (error.type, error.non_retryable) == (contracts.LIVEKIT_CREDENTIALS_REJECTED, True)


@pytest.mark.parametrize("code", ["invalid_argument", "malformed", "bad_route"])
def test_invalid_requests_are_non_retryable_invalid_arguments(code: str) -> None:
    error = classified(ServerError(code, "room name is required", status=400))
    assert (error.type, error.non_retryable) == (contracts.LIVEKIT_INVALID_ARGUMENT, True)


@pytest.mark.parametrize(
    ("code", "status"),
    [
        ("unavailable", 503),
        ("internal", 500),
        ("deadline_exceeded", 504),
        ("resource_exhausted", 429),
        ("unknown", 502),  # a proxy in front of LiveKit
        ("unimplemented", 501),
    ],
)
def test_transient_server_errors_are_retryable(code: str, status: int) -> None:
    error = classified(ServerError(code, "sip not connected (redis required)", status=status))
    assert (error.type, error.non_retryable) == (LIVEKIT_UNAVAILABLE, False)


@pytest.mark.parametrize(
    "error",
    [
        aiohttp.ClientConnectionError("Cannot connect to host 127.0.0.1:1"),
        aiohttp.ServerDisconnectedError(),
        TimeoutError(),
    ],
)
def test_transport_errors_and_timeouts_are_retryable(error: BaseException) -> None:
    result = classified(error)
    assert (result.type, result.non_retryable) == (LIVEKIT_TRANSPORT_ERROR, False)


def test_unexpected_client_errors_are_non_retryable_rejections() -> None:
    error = classified(ServerError("failed_precondition", "nope", status=412))
    assert (error.type, error.non_retryable) == (LIVEKIT_REQUEST_REJECTED, True)


def test_non_livekit_errors_are_not_classified() -> None:
    assert classify(ValueError("bug"), "ListRooms") is None


def test_pin_in_server_message_is_redacted() -> None:
    error = classified(ServerError("invalid_argument", f"bad pin {PIN}", status=400))
    assert PIN not in error.message
    assert "<redacted>" in error.message


def test_translated_error_does_not_chain_the_original() -> None:
    # Temporal serializes `__cause__` into the failure: the original text must not travel.
    with pytest.raises(ApplicationError) as caught, livekit_errors("ListRooms"):
        raise ServerError("unavailable", "down", status=503)
    assert caught.value.__cause__ is None


def test_conflict_message_is_recognised_and_names_the_holder() -> None:
    error = ServerError("invalid_argument", CONFLICT_MESSAGE, status=400)
    assert is_rule_conflict(error)
    assert conflict_holder_id(error) == "SDR_abc123XYZ"


def test_other_invalid_arguments_are_not_conflicts() -> None:
    assert not is_rule_conflict(ServerError("invalid_argument", "room name required", status=400))
    assert not is_rule_conflict(ServerError("already_exists", CONFLICT_MESSAGE, status=409))


def test_not_found_is_recognised() -> None:
    assert is_not_found(ServerError("not_found", "no such rule", status=404))
    assert not is_not_found(ServerError("unavailable", "", status=503))


def test_rule_built_for_a_room_is_recognised_as_ours_for_that_room_and_pin_only() -> None:
    info = create_request("room-1", PIN, trunk_ids=[], hide_phone_number=False).dispatch_rule
    assert is_ours_for(info, "room-1", PIN)
    assert not is_ours_for(info, "room-2", PIN)
    assert not is_ours_for(info, "room-1", "0000000000")


def test_managed_rule_carries_room_id_room_name_and_pin() -> None:
    info = create_request("room-1", PIN, trunk_ids=["ST_a"], hide_phone_number=True).dispatch_rule
    info.sip_dispatch_rule_id = "SDR_x"
    managed = to_managed_rule(info)
    assert (managed.rule_id, managed.room_id, managed.room_name, managed.pin) == (
        "SDR_x",
        "room-1",
        "room-1",
        PIN,
    )


@pytest.mark.parametrize("length", [4, 10, 16])
def test_secret_pins_are_digits_of_the_requested_length(length: int) -> None:
    pin = secret_pin(length)
    assert len(pin) == length
    assert pin.isdigit()


@pytest.mark.parametrize("length", [3, 17])
def test_pin_lengths_outside_livekit_limits_are_refused(length: int) -> None:
    with pytest.raises(ApplicationError) as caught:
        draw_pin(length)
    assert (caught.value.type, caught.value.non_retryable) == (INVALID_PIN_LENGTH, True)


def test_a_pin_source_returning_non_digits_is_refused_without_echoing_it() -> None:
    with pytest.raises(ApplicationError) as caught:
        draw_pin(6, lambda n: "12345x")
    assert "12345x" not in caught.value.message
