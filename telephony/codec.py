"""Payloads encrypted at rest: every payload the service hands Temporal (workflow inputs and
results, updates, signals, activity arguments and results, memos) is AES-256-GCM ciphertext, so
the PIN in a room's state is unreadable to anyone with only the Temporal UI or database.

Keys come from `TELEPHONY_PAYLOAD_KEYS`: `id:base64key` pairs, comma-separated. The first key
encrypts; every listed key decrypts (its id travels in the payload's metadata), so keys rotate by
putting a new one first and keeping the old ones until every history that used them is gone.
Search attributes are not payloads: they stay readable (and never hold a PIN).
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.converter import PayloadCodec

ENCODING: Final = b"binary/encrypted"
ENCODING_KEY: Final = "encoding"
KEY_ID_KEY: Final = "encryption-key-id"
KEY_BYTES: Final = 32  # AES-256
NONCE_BYTES: Final = 12
_KEY_ID = re.compile(r"^[A-Za-z0-9_.-]{1,32}$")


class PayloadKeyError(ValueError):
    """`TELEPHONY_PAYLOAD_KEYS` is malformed (the message never quotes a key)."""


class PayloadDecryptionError(ValueError):
    """A payload cannot be decrypted with the keys at hand."""


@dataclass(frozen=True)
class PayloadKeys:
    current_id: str
    keys: Mapping[str, bytes]

    @classmethod
    def parse(cls, text: str) -> PayloadKeys:
        keys: dict[str, bytes] = {}
        order: list[str] = []
        for position, item in enumerate(part.strip() for part in text.split(",")):
            if not item:
                continue
            key_id, sep, encoded = item.partition(":")
            if not sep or not _KEY_ID.match(key_id):
                raise PayloadKeyError(
                    f"entry {position + 1} is not `id:base64key` (id: 1-32 of A-Z a-z 0-9 _ . -)"
                )
            if key_id in keys:
                raise PayloadKeyError(f"key id {key_id!r} is listed twice")
            try:
                key = base64.b64decode(encoded, validate=True)
            except (binascii.Error, ValueError):
                raise PayloadKeyError(f"key {key_id!r} is not base64") from None
            if len(key) != KEY_BYTES:
                raise PayloadKeyError(
                    f"key {key_id!r} is {len(key)} bytes; AES-256 needs {KEY_BYTES} "
                    "(e.g. `openssl rand -base64 32`)"
                )
            keys[key_id] = key
            order.append(key_id)
        if not order:
            raise PayloadKeyError("no key given")
        return cls(current_id=order[0], keys=keys)

    @staticmethod
    def generate(key_id: str = "k1") -> str:
        """A fresh `id:base64key` entry (for `meet-telephony dev` and operators)."""
        return f"{key_id}:{base64.b64encode(os.urandom(KEY_BYTES)).decode()}"


class EncryptionCodec(PayloadCodec):
    def __init__(self, keys: PayloadKeys) -> None:
        self._keys = keys
        self._ciphers = {key_id: AESGCM(key) for key_id, key in keys.keys.items()}

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        key_id = self._keys.current_id
        cipher = self._ciphers[key_id]
        encoded = []
        for payload in payloads:
            nonce = os.urandom(NONCE_BYTES)
            # The key id is bound to the ciphertext: a payload cannot be replayed under another.
            sealed = cipher.encrypt(nonce, payload.SerializeToString(), key_id.encode())
            encoded.append(
                Payload(
                    metadata={ENCODING_KEY: ENCODING, KEY_ID_KEY: key_id.encode()},
                    data=nonce + sealed,
                )
            )
        return encoded

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        decoded = []
        for payload in payloads:
            if payload.metadata.get(ENCODING_KEY) != ENCODING:
                decoded.append(payload)  # not ours (written before encryption, or by Temporal)
                continue
            key_id = payload.metadata.get(KEY_ID_KEY, b"").decode(errors="replace")
            cipher = self._ciphers.get(key_id)
            if cipher is None:
                raise PayloadDecryptionError(
                    f"payload encrypted with key {key_id!r}, which TELEPHONY_PAYLOAD_KEYS "
                    "does not hold"
                )
            nonce, sealed = payload.data[:NONCE_BYTES], payload.data[NONCE_BYTES:]
            try:
                plain = cipher.decrypt(nonce, sealed, key_id.encode())
            except InvalidTag:
                raise PayloadDecryptionError(
                    f"payload does not decrypt with key {key_id!r} (altered or wrong key)"
                ) from None
            original = Payload()
            original.ParseFromString(plain)
            decoded.append(original)
        return decoded
