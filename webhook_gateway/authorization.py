"""The `Authorization` header, read one way for the API (a bearer token) and for LiveKit's
webhooks (its JWT, bare or as a bearer token)."""

from __future__ import annotations

import hmac
import re
from dataclasses import dataclass

from webhook_gateway.errors import ErrorCode

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


def bearer_problem(header: str | None, expected: bytes) -> tuple[ErrorCode, str] | None:
    """Why `header` does not carry `Bearer <expected>`, as (error code, message); None if it
    does. The comparison takes the same time whatever the given token."""
    credential = read_authorization(header)
    if credential is None or (credential.bearer and not credential.token):
        return ErrorCode.MISSING_TOKEN, "Authorization: Bearer <token> is required"
    if not credential.bearer:
        return ErrorCode.INVALID_TOKEN, "the Authorization header is not a bearer token"
    if not hmac.compare_digest(credential.token.encode(errors="replace"), expected):
        return ErrorCode.INVALID_TOKEN, "the token is not valid"
    return None
