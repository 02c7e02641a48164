"""Twirp wire format: error codes and statuses, request decoding, response encoding."""

from __future__ import annotations

import json
from typing import Any, TypeVar

from aiohttp import web
from google.protobuf import json_format
from google.protobuf.message import DecodeError, Message

# Twirp code -> HTTP status, as the Go twirp library maps them
# (scripts/LIVEKIT_FINDINGS.md lists the ones seen).
STATUS_BY_CODE: dict[str, int] = {
    "canceled": 408,
    "unknown": 500,
    "invalid_argument": 400,
    "malformed": 400,
    "deadline_exceeded": 504,
    "not_found": 404,
    "bad_route": 404,
    "already_exists": 409,
    "permission_denied": 403,
    "unauthenticated": 401,
    "resource_exhausted": 429,
    "failed_precondition": 412,
    "aborted": 409,
    "out_of_range": 400,
    "unimplemented": 501,
    "internal": 500,
    "unavailable": 503,
    "dataloss": 500,
}

JSON = "application/json"
PROTOBUF = "application/protobuf"

M = TypeVar("M", bound=Message)


class TwirpError(Exception):
    """An error answered as Twirp JSON `{"code", "msg", "meta"}`."""

    def __init__(self, code: str, msg: str, meta: dict[str, str] | None = None) -> None:
        if code not in STATUS_BY_CODE:
            raise ValueError(f"unknown Twirp error code {code!r}")
        super().__init__(f"{code}: {msg}")
        self.code = code
        self.msg = msg
        self.meta = meta or {}

    @property
    def status(self) -> int:
        return STATUS_BY_CODE[self.code]

    def response(self) -> web.Response:
        body: dict[str, object] = {"code": self.code, "msg": self.msg}
        if self.meta:
            body["meta"] = self.meta
        text = json.dumps(body, separators=(",", ":"), ensure_ascii=False)
        return web.Response(status=self.status, text=text, content_type=JSON)


def bad_route(request: web.Request, msg: str) -> TwirpError:
    """twirp-go's bad_route: 404, with the method and path in `meta.twirp_invalid_route`."""
    return TwirpError("bad_route", msg, {"twirp_invalid_route": f"{request.method} {request.path}"})


def encoding_of(request: web.Request) -> str:
    """The body encoding of a Twirp request; anything else is a bad route, as in twirp-go."""
    raw = request.headers.get("Content-Type", "")
    ctype = raw.split(";", 1)[0].strip().lower()
    if ctype in (PROTOBUF, "application/x-protobuf"):
        return PROTOBUF
    if ctype == JSON:
        return JSON
    raise bad_route(request, f"unexpected Content-Type: {json.dumps(ctype)}")


def decode(body: bytes, encoding: str, message_type: type[M]) -> M:
    msg = message_type()
    try:
        if encoding == JSON:
            # twirp-go discards unknown JSON fields.
            json_format.Parse(body.decode() or "{}", msg, ignore_unknown_fields=True)
        else:
            msg.ParseFromString(body)
    except (DecodeError, json_format.ParseError, UnicodeDecodeError) as exc:
        kind = "json" if encoding == JSON else "protobuf"
        raise TwirpError("malformed", f"the {kind} request could not be decoded") from exc
    return msg


def _json_value(msg: Message) -> dict[str, Any]:
    """`msg` as twirp-go's JSON: fields in descriptor order, unset singular messages as null."""
    plain: dict[str, Any] = json_format.MessageToDict(
        msg, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )
    result: dict[str, Any] = {}
    for field in msg.DESCRIPTOR.fields:
        name = field.name
        kind = field.message_type
        # Maps, scalars and well-known types (Timestamp...) as json_format writes them.
        is_message = (
            kind is not None
            and not kind.GetOptions().map_entry
            and not kind.full_name.startswith("google.protobuf.")
        )
        if is_message and field.is_repeated:
            result[name] = [_json_value(item) for item in getattr(msg, name)]
        elif is_message:
            if msg.HasField(name):
                result[name] = _json_value(getattr(msg, name))
            elif field.containing_oneof is None:
                result[name] = None
        elif name in plain:
            result[name] = plain[name]
        elif field.containing_oneof is None:
            result[name] = None  # an unset well-known type
    return result


def encode(msg: Message, encoding: str) -> web.Response:
    if encoding == JSON:
        # twirp-go (protojson, EmitUnpopulated): proto field names, every field in field order,
        # unset messages as null. That build of protojson puts a space after each comma.
        text = json.dumps(_json_value(msg), separators=(", ", ":"), ensure_ascii=False)
        return web.Response(status=200, text=text, content_type=JSON)
    return web.Response(status=200, body=msg.SerializeToString(), content_type=PROTOBUF)
