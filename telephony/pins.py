"""The PIN rule, defined once: what a room PIN may be.

LiveKit stores any string as a dispatch-rule PIN, but a caller can only type digits, and LiveKit
SIP ends the entry at the 17th: so 4 to 16 ASCII digits. Settings, payloads, PIN draws and the
dispatch-rule activity all check against this module.
"""

from __future__ import annotations

from typing import Annotated, Final

from pydantic import Field

MIN_PIN_LENGTH: Final = 4
MAX_PIN_LENGTH: Final = 16  # LiveKit SIP accepts at most 16 typed digits

PinLength = Annotated[int, Field(ge=MIN_PIN_LENGTH, le=MAX_PIN_LENGTH)]

PIN_RULE: Final = f"{MIN_PIN_LENGTH} to {MAX_PIN_LENGTH} digits"


def is_valid_pin_length(length: int) -> bool:
    return MIN_PIN_LENGTH <= length <= MAX_PIN_LENGTH


def is_valid_pin(pin: str) -> bool:
    return pin.isascii() and pin.isdigit() and is_valid_pin_length(len(pin))
