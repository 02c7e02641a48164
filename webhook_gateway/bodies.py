"""Reading request bodies with a hard cap, before anything parses them."""

from __future__ import annotations

from aiohttp import web

from webhook_gateway.errors import ApiError, ErrorCode

MAX_BODY_BYTES = 1024 * 1024  # 1 MiB
_CHUNK = 64 * 1024


def too_large(limit: int) -> ApiError:
    return ApiError(413, ErrorCode.BODY_TOO_LARGE, f"the request body is over {limit} bytes")


async def read_body(request: web.Request, limit: int = MAX_BODY_BYTES) -> bytes:
    """The body, or `ApiError(413)` as soon as it is known to exceed `limit` bytes.

    A declared Content-Length over the limit is refused without reading; a chunked or lying body
    is read at most `limit + 1` bytes far.
    """
    declared = request.content_length
    if declared is not None and declared > limit:
        raise too_large(limit)
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = await request.content.read(_CHUNK)
        if not chunk:
            break
        size += len(chunk)
        if size > limit:
            raise too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)
