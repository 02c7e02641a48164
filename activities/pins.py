"""PIN draws. Cryptographic randomness (`secrets`): a PIN is the only thing between a caller
and a room, so it must not be predictable — which also rules out `workflow.random()`."""

from __future__ import annotations

import secrets
import string
from collections.abc import Callable

from temporalio.exceptions import ApplicationError

PinSource = Callable[[int], str]
"""Returns a PIN of the given number of digits. Tests inject deterministic sources."""

MIN_PIN_LENGTH = 4
MAX_PIN_LENGTH = 16  # LiveKit SIP accepts at most 16 typed digits
INVALID_PIN_LENGTH = "InvalidPinLength"


def secret_pin(length: int) -> str:
    return "".join(secrets.choice(string.digits) for _ in range(length))


def draw_pin(length: int, source: PinSource = secret_pin) -> str:
    if not MIN_PIN_LENGTH <= length <= MAX_PIN_LENGTH:
        raise ApplicationError(
            f"PIN length must be between {MIN_PIN_LENGTH} and {MAX_PIN_LENGTH}, got {length}",
            type=INVALID_PIN_LENGTH,
            non_retryable=True,
        )
    pin = source(length)
    if len(pin) != length or not pin.isdigit() or not pin.isascii():
        # Never echo the value: it may be a real PIN.
        raise ApplicationError(
            f"the PIN source returned something other than {length} digits",
            type=INVALID_PIN_LENGTH,
            non_retryable=True,
        )
    return pin
