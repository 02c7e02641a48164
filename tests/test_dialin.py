"""Dial-in info: what an invitation prints (docs/ARCHITECTURE.md, "Dial-in info")."""

from __future__ import annotations

from datetime import UTC, datetime

import phonenumbers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from telephony.dialin import (
    build_dial_in_info,
    format_number,
    format_numbers,
    parse_phone_number,
    pin_display,
    tel_uri,
)
from telephony.models import DialInInfo, DispatchMode, RoomStatus, ScheduleWindow, TelephonyState

PIN = "1234567890"

# (input as an operator writes it, default country, e164, international, national, region).
# Inputs are national-format, resolved with the default country.
REAL_NUMBERS = [
    ("01 23 45 67 89", "FR", "+33123456789", "+33 1 23 45 67 89", "01 23 45 67 89", "FR"),
    ("(415) 555-2671", "US", "+14155552671", "+1 415-555-2671", "(415) 555-2671", "US"),
    ("020 7946 0958", "GB", "+442079460958", "+44 20 7946 0958", "020 7946 0958", "GB"),
    ("030 901820", "DE", "+4930901820", "+49 30 901820", "030 901820", "DE"),
    ("02 555 12 12", "BE", "+3225551212", "+32 2 555 12 12", "02 555 12 12", "BE"),
    ("044 668 18 00", "CH", "+41446681800", "+41 44 668 18 00", "044 668 18 00", "CH"),
    ("(416) 555-0123", "CA", "+14165550123", "+1 416-555-0123", "(416) 555-0123", "CA"),
]
COLUMNS = "raw,default,e164,international,national,region"
ROW_IDS = [row[1] for row in REAL_NUMBERS]


@pytest.mark.parametrize(COLUMNS, REAL_NUMBERS, ids=ROW_IDS)
def test_example_number_is_valid_for_phonenumbers(
    raw: str, default: str, e164: str, international: str, national: str, region: str
) -> None:
    assert phonenumbers.is_valid_number(phonenumbers.parse(raw, default))


@pytest.mark.parametrize(COLUMNS, REAL_NUMBERS, ids=ROW_IDS)
def test_national_input_is_formatted_in_every_form(
    raw: str, default: str, e164: str, international: str, national: str, region: str
) -> None:
    number = format_number(raw, default, PIN)
    assert number.e164 == e164
    assert number.international == international
    assert number.national == national
    assert number.region == region


@pytest.mark.parametrize(COLUMNS, REAL_NUMBERS, ids=ROW_IDS)
def test_tel_uri_dials_pauses_twice_then_types_pin_and_escaped_hash(
    raw: str, default: str, e164: str, international: str, national: str, region: str
) -> None:
    assert format_number(raw, default, PIN).tel_uri == f"tel:{e164},,{PIN}%23"


@pytest.mark.parametrize(COLUMNS, REAL_NUMBERS, ids=ROW_IDS)
def test_international_input_gives_the_same_result_whatever_the_default_country(
    raw: str, default: str, e164: str, international: str, national: str, region: str
) -> None:
    other_default = "JP"
    assert format_number(international, other_default, PIN) == format_number(raw, default, PIN)


def test_tel_uri_matches_the_documented_example() -> None:
    assert format_number("+33 1 23 45 67 89", "US", PIN).tel_uri == (
        "tel:+33123456789,,1234567890%23"
    )


def test_tel_uri_helper() -> None:
    assert tel_uri("+14155552671", "4321") == "tel:+14155552671,,4321%23"


def test_number_without_pin_gets_a_plain_tel_uri() -> None:
    assert format_number("+1 415 555 2671", "US").tel_uri == "tel:+14155552671"


def test_region_follows_the_number_not_the_default_country() -> None:
    # +1 is shared by the US and Canada: Toronto's 416 is Canadian.
    assert format_number("+1 416 555 0123", "US").region == "CA"


@pytest.mark.parametrize(
    ("raw", "default"),
    [
        ("01 23 45 67 89", "US"),  # French national format read as a US number
        ("12345", "FR"),
        ("call us", "FR"),
        ("", "FR"),
    ],
)
def test_invalid_number_is_a_value_error(raw: str, default: str) -> None:
    with pytest.raises(ValueError, match=repr(raw)):
        parse_phone_number(raw, default)


# --- PIN display ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pin", "shown"),
    [
        ("1234567890", "123 456 7890"),  # the documented example
        ("1234", "1234"),
        ("12345", "12345"),  # five digits cannot be split into threes and fours
        ("123456", "123 456"),
        ("1234567", "123 4567"),
        ("12345678", "1234 5678"),
        ("1234567890123456", "1234 5678 9012 3456"),
    ],
)
def test_pin_display_examples(pin: str, shown: str) -> None:
    assert pin_display(pin) == shown


@pytest.mark.parametrize("length", range(6, 17))
def test_pin_display_groups_every_length_into_threes_and_fours(length: int) -> None:
    pin = "".join(str(i % 10) for i in range(length))
    groups = pin_display(pin).split(" ")
    assert "".join(groups) == pin
    assert all(len(group) in (3, 4) for group in groups)


@settings(database=None)
@given(st.text(alphabet="0123456789", min_size=6, max_size=16))
def test_pin_display_groups_join_back_to_the_pin(pin: str) -> None:
    groups = pin_display(pin).split(" ")
    assert "".join(groups) == pin
    assert all(len(group) in (3, 4) for group in groups)


@settings(database=None)
@given(st.text(alphabet="0123456789", min_size=4, max_size=5))
def test_pin_display_keeps_short_pins_as_one_group(pin: str) -> None:
    assert pin_display(pin) == pin


# --- lists of numbers -------------------------------------------------------------------------


def test_format_numbers_keeps_the_given_order() -> None:
    numbers = format_numbers(["+1 415 555 2671", "01 23 45 67 89", "+44 20 7946 0958"], "FR")
    assert [n.e164 for n in numbers] == ["+14155552671", "+33123456789", "+442079460958"]


def test_format_numbers_dedupes_by_e164_keeping_the_first() -> None:
    numbers = format_numbers(
        ["01 23 45 67 89", "+1 415 555 2671", "+33123456789", "+33 (0)1 23 45 67 89"], "FR", PIN
    )
    assert [n.e164 for n in numbers] == ["+33123456789", "+14155552671"]


def test_format_numbers_of_nothing_is_empty() -> None:
    assert format_numbers([], "FR") == []


def test_format_numbers_rejects_an_invalid_entry() -> None:
    with pytest.raises(ValueError):
        format_numbers(["+1 415 555 2671", "12345"], "US")


# --- dial-in info from a room status ----------------------------------------------------------

WINDOW = ScheduleWindow(
    starts_at=datetime(2030, 1, 1, 9, tzinfo=UTC),
    ends_at=datetime(2030, 1, 1, 10, tzinfo=UTC),
)


def room_status(
    *,
    registered: bool = True,
    state: TelephonyState = TelephonyState.OPEN,
    pin: str | None = PIN,
) -> RoomStatus:
    return RoomStatus(
        room_id="6f1c1d0e-7a0b-4a3c-9d5e-1f2a3b4c5d6e",
        registered=registered,
        state=state,
        pin=pin,
        rule_id="SDR_abc" if state is TelephonyState.OPEN else None,
        session=None,
        schedule=[WINDOW],
        dispatch_mode=DispatchMode.WHILE_ACTIVE,
    )


def dial_in(status: RoomStatus) -> DialInInfo:
    return build_dial_in_info(status, ["+33 1 23 45 67 89", "(415) 555-2671"], "US")


def test_dial_in_info_carries_room_pin_and_grouped_pin() -> None:
    info = dial_in(room_status())
    assert info.room_id == "6f1c1d0e-7a0b-4a3c-9d5e-1f2a3b4c5d6e"
    assert info.pin == PIN
    assert info.pin_display == "123 456 7890"


def test_dial_in_info_numbers_have_one_tap_links_with_the_rooms_pin() -> None:
    info = dial_in(room_status())
    assert [n.tel_uri for n in info.numbers] == [
        "tel:+33123456789,,1234567890%23",
        "tel:+14155552671,,1234567890%23",
    ]


def test_dial_in_info_carries_the_schedule() -> None:
    assert dial_in(room_status()).schedule == [WINDOW]


@pytest.mark.parametrize("state", [TelephonyState.IDLE, TelephonyState.OPEN])
def test_dial_in_info_state_is_the_rooms_while_registered(state: TelephonyState) -> None:
    assert dial_in(room_status(state=state)).state is state


def test_dial_in_info_of_an_unregistered_room_is_closed() -> None:
    assert dial_in(room_status(registered=False, state=TelephonyState.IDLE)).state is (
        TelephonyState.CLOSED
    )


def test_dial_in_info_needs_a_pin() -> None:
    with pytest.raises(ValueError, match="no PIN"):
        dial_in(room_status(pin=None))


def test_dial_in_info_is_built_at_read_time_from_the_numbers_given() -> None:
    status = room_status()
    assert build_dial_in_info(status, [], "US").numbers == []
    later = build_dial_in_info(status, ["(416) 555-0123"], "CA")
    assert [n.e164 for n in later.numbers] == ["+14165550123"]
