"""Requests aiohttp cannot parse (a header over its 8 KiB limit, control characters in the
request line): answered with the gateway's JSON error body, logged as one line that quotes
nothing of the request.

aiohttp's default answer logs an ERROR traceback quoting the start of the offending line (an
`Authorization` header, token included) and sends that text back. Its parser refuses these
requests before any middleware runs, so the fix sits in the protocol: a `RequestHandler` whose
`handle_error` speaks for parse errors, installed by `GatewayRunner`.
"""

from __future__ import annotations

import logging

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError, InvalidURLError, LineTooLong
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest

from webhook_gateway.errors import ErrorCode, error_response

log = logging.getLogger(__name__)


def _parse_refusal(exc: HttpProcessingError) -> tuple[int, ErrorCode, str]:
    if isinstance(exc, LineTooLong):
        return 431, ErrorCode.HEADER_TOO_LARGE, "a request line or header is over 8 KiB"
    if isinstance(exc, InvalidURLError):
        return 400, ErrorCode.BAD_REQUEST, "the request path is not a valid URL path"
    return 400, ErrorCode.BAD_REQUEST, "the request is not valid HTTP"


class _GatewayRequestHandler(RequestHandler):
    def handle_error(
        self,
        request: BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if not isinstance(exc, HttpProcessingError):
            return super().handle_error(request, status, exc, message)
        status, code, reason = _parse_refusal(exc)
        # The exception's text quotes the request: only its kind is logged.
        log.warning(
            "refused a request from %s that could not be parsed: %s (%s)",
            request.remote,
            reason,
            type(exc).__name__,
        )
        response = error_response(status, code, reason)
        response.force_close()
        return response


class _GatewayServer(web.Server):
    def __call__(self) -> RequestHandler:
        return _GatewayRequestHandler(self, loop=self._loop, **self._kwargs)


class GatewayRunner(web.AppRunner):
    """An `AppRunner` whose connections answer unparseable requests as the gateway does."""

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        # aiohttp builds the Server itself (from the app) and has no hook for the protocol
        # class; the subclass only replaces the per-connection handler factory.
        server.__class__ = _GatewayServer
        return server
