"""One place that decides what a failed LiveKit call means for Temporal's retry loop.

LiveKit answers over Twirp; `livekit-api` raises `ServerError(code, message, status)` for any
non-200 answer and lets transport errors (`aiohttp.ClientError`, timeouts) through. What matters:

- HTTP 401/403 is a credentials problem whatever the Twirp code (LiveKit's middleware answers a
  bad token with a plain-text 401, surfaced as code `unknown`): retrying cannot help.
- `invalid_argument` / `malformed` / `bad_route` are our mistake: retrying cannot help.
- Everything transient (5xx, 429, transport, timeout) is retried by Temporal with backoff.

Messages built here never contain the API secret, a token or a PIN: values the caller knows to be
secret are scrubbed from the server's text, and the original exception is not chained (Temporal
would serialize the chain into the failure).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Final, TypeGuard

import aiohttp
from livekit.api import ServerError
from temporalio.exceptions import ApplicationError

from telephony import contracts

# Retryable failure types: informative in the Temporal UI, never matched by workflows.
LIVEKIT_UNAVAILABLE: Final = "LiveKitUnavailable"
LIVEKIT_TRANSPORT_ERROR: Final = "LiveKitTransportError"
# A 4xx that is neither credentials nor an invalid argument (not_found, already_exists, ...) where
# the caller did not expect it: the same request would get the same answer.
LIVEKIT_REQUEST_REJECTED: Final = "LiveKitRequestRejected"

# What a `livekit-api` call raises when LiveKit fails or cannot be reached.
LiveKitFailure = ServerError | aiohttp.ClientError | TimeoutError
LIVEKIT_FAILURES: Final = (ServerError, aiohttp.ClientError, TimeoutError)

_INVALID_ARGUMENT_CODES: Final = frozenset({"invalid_argument", "malformed", "bad_route"})
# Twirp codes whose HTTP status is 4xx but which describe a passing condition.
_TRANSIENT_4XX_CODES: Final = frozenset({"resource_exhausted", "aborted", "canceled"})
_CREDENTIAL_CODES: Final = frozenset({"unauthenticated", "permission_denied"})

# `... already exists in dispatch rule "SDR_xxx" "name"` (LiveKit SIP's create/update validation).
_CONFLICT_HOLDER = re.compile(r"already exists in dispatch rule \"?(SDR_[A-Za-z0-9_-]+)")
_CONFLICT_MARKER: Final = "already exists in dispatch rule"

_REDACTED: Final = "<redacted>"
_MAX_SERVER_MESSAGE: Final = 300


def redact(text: str, secrets: Iterable[str]) -> str:
    """`text` with every non-empty secret replaced, so server messages can be quoted safely."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, _REDACTED)
    return text


def is_credentials_error(error: ServerError) -> bool:
    return error.status in (401, 403) or error.code in _CREDENTIAL_CODES


def is_not_found(error: BaseException) -> TypeGuard[ServerError]:
    return isinstance(error, ServerError) and (error.code == "not_found" or error.status == 404)


def is_rule_conflict(error: BaseException) -> TypeGuard[ServerError]:
    """LiveKit's "same trunk + PIN already exists" answer (an `invalid_argument`, not a 409)."""
    return (
        isinstance(error, ServerError)
        and error.code == "invalid_argument"
        and _CONFLICT_MARKER in error.message
    )


def conflict_holder_id(error: ServerError) -> str | None:
    """The rule id a conflict message names, or None (e.g. `"<new>"`). Not necessarily the
    holder: LiveKit names the earlier rule of the first colliding pair it meets, which is often
    the rule being created (`"<new>"`), the rule being updated, or two other rules."""
    match = _CONFLICT_HOLDER.search(error.message)
    return match.group(1) if match else None


def classify(
    error: BaseException, operation: str, *, secrets: Iterable[str] = ()
) -> ApplicationError | None:
    """The `ApplicationError` to raise for a failed LiveKit call, or None if `error` is not one.

    `operation` names the Twirp method (e.g. `CreateSIPDispatchRule`); `secrets` are values that
    must not appear in the message (the PIN of the request, typically).
    """
    secrets = tuple(secrets)
    if isinstance(error, ServerError):
        detail = _server_detail(error, secrets)
        if is_credentials_error(error):
            return ApplicationError(
                f"LiveKit rejected the API credentials on {operation} (HTTP {error.status}): "
                "check LIVEKIT_API_KEY / LIVEKIT_API_SECRET and the key's grants",
                type=contracts.LIVEKIT_CREDENTIALS_REJECTED,
                non_retryable=True,
            )
        if error.code in _INVALID_ARGUMENT_CODES:
            return ApplicationError(
                f"LiveKit refused {operation} as invalid: {detail}",
                type=contracts.LIVEKIT_INVALID_ARGUMENT,
                non_retryable=True,
            )
        if error.status >= 500 or error.code in _TRANSIENT_4XX_CODES:
            return ApplicationError(
                f"LiveKit could not serve {operation} right now: {detail}",
                type=LIVEKIT_UNAVAILABLE,
                non_retryable=False,
            )
        return ApplicationError(
            f"LiveKit rejected {operation}: {detail}",
            type=LIVEKIT_REQUEST_REJECTED,
            non_retryable=True,
        )
    if isinstance(error, aiohttp.ClientError | TimeoutError):
        # str() of aiohttp errors names the URL and the OS error, never headers (the token).
        reason = redact(str(error), secrets) or type(error).__name__
        return ApplicationError(
            f"LiveKit unreachable on {operation}: {type(error).__name__}: {reason}",
            type=LIVEKIT_TRANSPORT_ERROR,
            non_retryable=False,
        )
    return None


def translate(
    error: LiveKitFailure, operation: str, *, secrets: Iterable[str] = ()
) -> ApplicationError:
    """`classify` for an error known to come from a LiveKit call. Raise it `from None`."""
    translated = classify(error, operation, secrets=secrets)
    if translated is None:  # pragma: no cover - every LIVEKIT_FAILURES type is classified
        raise TypeError(f"not a LiveKit failure: {type(error).__name__}")
    return translated


@contextmanager
def livekit_errors(operation: str, *, secrets: Iterable[str] = ()) -> Iterator[None]:
    """Translate LiveKit failures raised inside the block into classified `ApplicationError`s."""
    try:
        yield
    except LIVEKIT_FAILURES as error:
        # `from None`: the original's text could carry a secret, and Temporal serializes a
        # failure's `__cause__` along with it.
        raise translate(error, operation, secrets=secrets) from None


def _server_detail(error: ServerError, secrets: tuple[str, ...]) -> str:
    message = redact(error.message, secrets)[:_MAX_SERVER_MESSAGE] or "(no message)"
    return f"twirp code {error.code}, HTTP {error.status}: {message}"
