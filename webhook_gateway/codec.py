"""The codec endpoint: Temporal's codec-server protocol (`POST /codec/encode`, `POST /codec/decode`,
protobuf-JSON `Payloads` in and out) so that operators holding `TELEPHONY_CODEC_TOKEN` read the
encrypted payloads (telephony/codec.py) in the Temporal UI and the `temporal` CLI.

Served only when the token is set. Two ways to present it:
- `Authorization: Bearer <token>` (the CLI's `--codec-auth "Bearer …"`);
- a cookie set by `POST /codec/login` (form field `token`), for the Temporal UI with "include
  cross-origin credentials" on: the UI cannot send a static bearer token of its own.
Browsers may call it only from `TELEPHONY_CODEC_CORS_ORIGINS` (the UI's origin).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Awaitable, Callable, Sequence
from typing import Final

from aiohttp import web
from google.protobuf import json_format
from temporalio.api.common.v1 import Payload, Payloads
from temporalio.converter import PayloadCodec

from telephony.codec import PayloadDecryptionError
from webhook_gateway.authorization import bearer_problem
from webhook_gateway.bodies import read_body
from webhook_gateway.errors import ApiError, ErrorCode

PREFIX: Final = "/codec"
COOKIE: Final = "telephony_codec"
COOKIE_MAX_AGE_SECONDS: Final = 12 * 3600
# A history page of payloads can be larger than an API body.
MAX_CODEC_BODY_BYTES: Final = 8 * 1024 * 1024
_ALLOWED_HEADERS: Final = "Authorization, Content-Type, X-Namespace"

Transform = Callable[[Sequence[Payload]], Awaitable[list[Payload]]]
Route = Callable[[web.Request], Awaitable[web.Response]]

_LOGIN_FORM: Final = """<!doctype html>
<title>meet-telephony codec</title>
<form method="post" action="{prefix}/login">
<label>Codec token <input type="password" name="token" autocomplete="off"></label>
<button>Sign in</button>
</form>
<p>Then, in the Temporal UI's codec settings, turn on "include cross-origin credentials".</p>
"""


class CodecEndpoint:
    def __init__(self, codec: PayloadCodec, token: str, cors_origins: Sequence[str]) -> None:
        self._codec = codec
        self._token = token.encode()
        # What the cookie holds: derived from the token, so the token itself is never stored.
        self._session = hmac.new(self._token, b"codec-session", hashlib.sha256).hexdigest()
        self._origins = frozenset(cors_origins)

    def add_routes(self, app: web.Application) -> None:
        for name, transform in (("encode", self._codec.encode), ("decode", self._codec.decode)):
            app.router.add_post(f"{PREFIX}/{name}", self._transform_route(transform))
            app.router.add_route("OPTIONS", f"{PREFIX}/{name}", self.preflight)
        app.router.add_get(f"{PREFIX}/login", self.login_form)
        app.router.add_post(f"{PREFIX}/login", self.login)

    # --- routes -------------------------------------------------------------------------------

    def _transform_route(self, transform: Transform) -> Route:
        async def handle(request: web.Request) -> web.Response:
            cors = self._cors_headers(request)
            self._authenticate(request, cors)
            raw = await read_body(request, MAX_CODEC_BODY_BYTES)
            payloads = Payloads()
            try:
                json_format.Parse(raw or b"{}", payloads)
            except json_format.ParseError:
                raise ApiError(
                    400,
                    ErrorCode.INVALID_BODY,
                    'the body is not protobuf-JSON {"payloads": [...]}',
                    cors,
                ) from None
            try:
                result = await transform(list(payloads.payloads))
            except PayloadDecryptionError as exc:
                raise ApiError(400, ErrorCode.UNDECODABLE_PAYLOAD, str(exc), cors) from None
            body = json_format.MessageToJson(Payloads(payloads=result), indent=None)
            return web.json_response(text=body, headers=cors)

        return handle

    async def preflight(self, request: web.Request) -> web.Response:
        cors = self._cors_headers(request)
        if not cors:
            raise ApiError(
                403, ErrorCode.ORIGIN_NOT_ALLOWED, "this origin may not call the codec endpoint"
            )
        return web.Response(
            status=204,
            headers={
                **cors,
                "Access-Control-Allow-Methods": "POST, OPTIONS",
                "Access-Control-Allow-Headers": _ALLOWED_HEADERS,
                "Access-Control-Max-Age": "600",
            },
        )

    async def login_form(self, request: web.Request) -> web.Response:
        return web.Response(text=_LOGIN_FORM.format(prefix=PREFIX), content_type="text/html")

    async def login(self, request: web.Request) -> web.Response:
        form = await request.post()
        given = form.get("token")
        if not isinstance(given, str) or not hmac.compare_digest(given.encode(), self._token):
            raise ApiError(401, ErrorCode.INVALID_TOKEN, "the codec token is not valid")
        response = web.Response(
            text="Signed in: the Temporal UI can now decode payloads from this browser.",
            content_type="text/plain",
        )
        response.set_cookie(
            COOKIE,
            self._session,
            max_age=COOKIE_MAX_AGE_SECONDS,
            path=PREFIX,
            httponly=True,
            secure=True,  # browsers treat 127.0.0.1/localhost as secure, so dev works too
            samesite="None",  # sent by the UI's cross-origin fetch
        )
        return response

    # --- plumbing -----------------------------------------------------------------------------

    def _authenticate(self, request: web.Request, cors: dict[str, str]) -> None:
        cookie = request.cookies.get(COOKIE)
        if cookie is not None and hmac.compare_digest(cookie.encode(), self._session.encode()):
            return
        problem = bearer_problem(request.headers.get("Authorization"), self._token)
        if problem is not None:
            code, message = problem
            raise ApiError(
                401, code, message, {**cors, "WWW-Authenticate": 'Bearer realm="meet-telephony"'}
            )

    def _cors_headers(self, request: web.Request) -> dict[str, str]:
        origin = request.headers.get("Origin")
        if origin is None or origin not in self._origins:
            return {}
        return {
            "Access-Control-Allow-Origin": origin,
            "Access-Control-Allow-Credentials": "true",
            "Vary": "Origin",
        }
