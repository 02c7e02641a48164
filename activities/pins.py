"""PIN draws. Cryptographic randomness (`secrets`): a PIN is the only thing between a caller
and a room, so it must not be predictable — which also rules out `workflow.random()`."""

from __future__ import annotations

import secrets
import string
from collections.abc import Callable

from temporalio import activity
from temporalio.exceptions import ApplicationError

from telephony import contracts
from telephony.pins import PIN_RULE, is_valid_pin, is_valid_pin_length

PinSource = Callable[[int], str]
"""Returns a PIN of the given number of digits. Tests inject deterministic sources."""

INVALID_PIN_LENGTH = "InvalidPinLength"


def secret_pin(length: int) -> str:
    return "".join(secrets.choice(string.digits) for _ in range(length))


def draw_pin(length: int, source: PinSource = secret_pin) -> str:
    if not is_valid_pin_length(length):
        raise ApplicationError(
            f"PIN length must be {PIN_RULE}, got {length}",
            type=INVALID_PIN_LENGTH,
            non_retryable=True,
        )
    pin = source(length)
    if len(pin) != length or not is_valid_pin(pin):
        # Never echo the value: it may be a real PIN.
        raise ApplicationError(
            f"the PIN source returned something other than {length} digits",
            type=INVALID_PIN_LENGTH,
            non_retryable=True,
        )
    return pin


class PinActivities:
    """PIN draws; `source` lets tests force collisions."""

    def __init__(self, source: PinSource | None = None) -> None:
        self._source = source or secret_pin

    @activity.defn(name=contracts.DRAW_PIN)
    async def draw_pin(self, length: int) -> str:
        return draw_pin(length, self._source)
