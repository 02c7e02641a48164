"""The PIN rule, defined once: what a room PIN may be.

LiveKit stores any string as a dispatch-rule PIN, but a caller can only type digits, and LiveKit
SIP ends the entry at the 17th: so 4 to 16 ASCII digits. Settings, payloads, PIN draws and the
dispatch-rule activity all check against this module.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Annotated, Final

from pydantic import Field

from telephony.contracts import PIN_LEASE_WORKFLOW_ID_PREFIX

MIN_PIN_LENGTH: Final = 4
MAX_PIN_LENGTH: Final = 16  # LiveKit SIP accepts at most 16 typed digits

PinLength = Annotated[int, Field(ge=MIN_PIN_LENGTH, le=MAX_PIN_LENGTH)]

PIN_RULE: Final = f"{MIN_PIN_LENGTH} to {MAX_PIN_LENGTH} digits"


def is_valid_pin_length(length: int) -> bool:
    return MIN_PIN_LENGTH <= length <= MAX_PIN_LENGTH


def is_valid_pin(pin: str) -> bool:
    return pin.isascii() and pin.isdigit() and is_valid_pin_length(len(pin))


def normalized_pin(text: str) -> str:
    """A PIN as people write it ("841 451 6303", "841-451-6303") as the digits alone; what is
    left still has to pass `is_valid_pin`."""
    return "".join(text.split()).replace("-", "")


MIN_PIN_HASH_KEY_LENGTH: Final = 32
# 128 bits of HMAC-SHA256: ids of two different PINs never collide in practice, so Temporal's
# one-open-workflow-per-id rule still makes the lease a PIN's unique reservation.
_LEASE_ID_HEX_DIGITS: Final = 32


def lease_workflow_id(pin: str, key: str) -> str:
    """The lease workflow id of `pin`: a keyed hash (`TELEPHONY_PIN_HASH_KEY`), so that the
    workflow list, which shows every id, reveals no PIN, and nobody without the key can tell
    which id belongs to a PIN."""
    if not key:
        raise ValueError("TELEPHONY_PIN_HASH_KEY is not set")
    digest = hmac.new(key.encode(), pin.encode(), hashlib.sha256).hexdigest()
    return f"{PIN_LEASE_WORKFLOW_ID_PREFIX}{digest[:_LEASE_ID_HEX_DIGITS]}"


def sentinel_pin(key: str) -> str:
    """The sentinel rule's PIN (docs/ARCHITECTURE.md, "The sentinel rule"): 16 digits derived
    from `TELEPHONY_PIN_HASH_KEY`, so it is the same on every worker and known to nobody. Its
    lease keeps every draw and import off it."""
    if not key:
        raise ValueError("TELEPHONY_PIN_HASH_KEY is not set")
    digest = hmac.new(key.encode(), b"meet-telephony sentinel rule", hashlib.sha256).digest()
    return str(int.from_bytes(digest, "big") % 10**MAX_PIN_LENGTH).zfill(MAX_PIN_LENGTH)
