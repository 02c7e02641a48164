"""Dial-in formatting: what an invitation prints (numbers, PIN read aloud, one-tap links)."""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import quote

import phonenumbers
from phonenumbers import PhoneNumber, PhoneNumberFormat

from telephony.models import DialInInfo, DialInNumber, RoomStatus, TelephonyState


def parse_phone_number(value: str, default_region: str) -> PhoneNumber:
    """Parse an international or national-format number; raise ValueError if it is not valid."""
    try:
        number = phonenumbers.parse(value, default_region)
    except phonenumbers.NumberParseException as exc:
        raise ValueError(f"{value!r} is not a phone number ({exc})") from None
    if not phonenumbers.is_valid_number(number):
        raise ValueError(f"{value!r} is not a valid phone number for region {default_region}")
    return number


def pin_display(pin: str) -> str:
    """Digits in groups of three or four, easier to read aloud: 1234567890 → 123 456 7890.

    Five digits or fewer stay one group (five cannot be split into threes and fours).
    """
    if len(pin) < 6:
        return pin
    count = -(-len(pin) // 4)  # as few groups as possible, none longer than four
    fours = len(pin) - 3 * count  # the rest are threes; fours go last
    sizes = [3] * (count - fours) + [4] * fours
    groups, start = [], 0
    for size in sizes:
        groups.append(pin[start : start + size])
        start += size
    return " ".join(groups)


def tel_uri(e164: str, pin: str) -> str:
    """One-tap link: dial, wait two pauses, type the PIN and `#` (RFC 3966, `#` escaped)."""
    return f"tel:{e164},,{pin}{quote('#')}"


def format_number(value: str, default_region: str, pin: str | None = None) -> DialInNumber:
    number = parse_phone_number(value, default_region)
    e164 = phonenumbers.format_number(number, PhoneNumberFormat.E164)
    return DialInNumber(
        e164=e164,
        international=phonenumbers.format_number(number, PhoneNumberFormat.INTERNATIONAL),
        national=phonenumbers.format_number(number, PhoneNumberFormat.NATIONAL),
        region=phonenumbers.region_code_for_number(number),
        tel_uri=tel_uri(e164, pin) if pin else f"tel:{e164}",
    )


def format_numbers(
    values: Iterable[str], default_region: str, pin: str | None = None
) -> list[DialInNumber]:
    """Format each number once (by E.164), in the order given."""
    numbers: dict[str, DialInNumber] = {}
    for value in values:
        formatted = format_number(value, default_region, pin)
        numbers.setdefault(formatted.e164, formatted)
    return list(numbers.values())


def valid_numbers(values: Iterable[str], default_region: str) -> list[str]:
    """The values `phonenumbers` accepts, in order (trunks may hold numbers we cannot show)."""
    valid = []
    for value in values:
        try:
            parse_phone_number(value, default_region)
        except ValueError:
            continue
        valid.append(value)
    return valid


def build_dial_in_info(
    status: RoomStatus, numbers: Iterable[str], default_region: str
) -> DialInInfo:
    if status.pin is None:
        raise ValueError(f"room {status.room_id} has no PIN")
    return DialInInfo(
        room_id=status.room_id,
        pin=status.pin,
        pin_display=pin_display(status.pin),
        state=status.state if status.registered else TelephonyState.CLOSED,
        numbers=[
            number
            for number in format_numbers(numbers, default_region, status.pin)
            if not status.numbers or number.e164 in status.numbers
        ],
        schedule=status.schedule,
    )
