"""The `Authorization` header, read one way for the API (a bearer token) and for LiveKit's
webhooks (its JWT, bare or as a bearer token)."""

from __future__ import annotations

import re
from dataclasses import dataclass

_BEARER = re.compile(r"^\s*bearer(?:\s+(?P<token>.*)|\s*)$", re.IGNORECASE | re.DOTALL)


@dataclass(frozen=True)
class Credential:
    bearer: bool  # given as `Bearer <token>` (else the header's whole value)
    token: str  # "" when the header holds nothing after the scheme


def read_authorization(header: str | None) -> Credential | None:
    """The credential in an `Authorization` header; None when the header is absent or blank."""
    if header is None or not header.strip():
        return None
    match = _BEARER.match(header)
    if match is not None:
        return Credential(bearer=True, token=(match.group("token") or "").strip())
    return Credential(bearer=False, token=header.strip())
