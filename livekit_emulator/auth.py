"""LiveKit API authentication: the HTTP middleware step (plain-text 401) and grant checks
(Twirp `unauthenticated`), split exactly where LiveKit splits them."""

from __future__ import annotations

import contextlib
import time
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import jwt

from .twirp import TwirpError

BEARER = "Bearer "
# go-jose validates exp/nbf with a one-minute leeway; LiveKit inherits it.
LEEWAY_SECONDS = 60.0


class AuthRejected(Exception):
    """The token was refused by the HTTP middleware: answered as plain-text 401."""


@dataclass(frozen=True)
class Grants:
    """The grants of a verified token; `None` means no Authorization header was sent."""

    api_key: str
    video: Mapping[str, Any] = field(default_factory=dict)
    sip: Mapping[str, Any] = field(default_factory=dict)


# go-jwt's texts for the checks pyjwt also makes, as LiveKit prints them after "error: ".
_GO_JWT_ERRORS: tuple[tuple[type[jwt.PyJWTError], str], ...] = (
    (jwt.InvalidSignatureError, "token signature is invalid: signature is invalid"),
    (jwt.ExpiredSignatureError, "token has invalid claims: token is expired"),
    (jwt.ImmatureSignatureError, "token has invalid claims: token is not valid yet"),
)
MISSING_BEARER = "invalid authorization header. Must start with " + BEARER


def authenticate(
    header: str | None, keys: Mapping[str, str], query_token: str | None = None
) -> Grants | None:
    """Verify a request like LiveKit's API-key middleware. No token at all passes through (the
    handler then refuses it); anything malformed or unverifiable is rejected. Without an
    Authorization header, the `access_token` query parameter is used."""
    if header:
        # No trimming: Go already trimmed the header value, and "Bearer " + "  x" is a bad token.
        if not header.startswith(BEARER):
            raise AuthRejected(MISSING_BEARER)
        token = header[len(BEARER) :]
    else:
        token = query_token or ""
    if not token:
        return None
    try:
        unverified = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError as exc:
        raise AuthRejected("invalid authorization token") from exc
    issuer = unverified.get("iss")
    api_key = issuer if isinstance(issuer, str) else ""
    if not keys.get(api_key):
        raise AuthRejected(f"invalid API key: {api_key}")
    try:
        with _short_secrets_allowed():
            claims = jwt.decode(
                token,
                keys[api_key],
                algorithms=["HS256"],
                leeway=LEEWAY_SECONDS,
                options={"verify_aud": False},
            )
    except jwt.PyJWTError as exc:
        detail = next((text for kind, text in _GO_JWT_ERRORS if isinstance(exc, kind)), str(exc))
        # LiveKit echoes the whole token back (a real server's log and answer carry it too).
        raise AuthRejected(f"invalid token: {token}, error: {detail}") from exc
    video = claims.get("video") or {}
    sip = claims.get("sip") or {}
    return Grants(
        api_key=api_key,
        video=video if isinstance(video, dict) else {},
        sip=sip if isinstance(sip, dict) else {},
    )


def _denied() -> TwirpError:
    # LiveKit answers every missing grant with `unauthenticated`, never `permission_denied`.
    return TwirpError("unauthenticated", "permissions denied")


def require_sip_admin(grants: Grants | None) -> None:
    if grants is None or not grants.sip.get("admin"):
        raise _denied()


def require_room_list(grants: Grants | None) -> None:
    if grants is None or not grants.video.get("roomList"):
        raise _denied()


def require_room_create(grants: Grants | None) -> None:
    if grants is None or not grants.video.get("roomCreate"):
        raise _denied()


def require_room_admin(grants: Grants | None, room: str) -> None:
    if grants is None or not grants.video.get("roomAdmin") or grants.video.get("room") != room:
        raise _denied()


def sign(api_key: str, api_secret: str, claims: Mapping[str, Any], ttl: float) -> str:
    """An HS256 token issued by `api_key`, valid `ttl` seconds (used for webhooks)."""
    now = int(time.time())
    payload = {**claims, "iss": api_key, "nbf": now, "exp": now + int(ttl)}
    with _short_secrets_allowed():
        return jwt.encode(payload, api_secret, algorithm="HS256")


@contextlib.contextmanager
def _short_secrets_allowed() -> Iterator[None]:
    # LiveKit accepts any secret length (dev mode uses "secret"); pyjwt would warn on each call.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", jwt.InsecureKeyLengthWarning)
        yield
