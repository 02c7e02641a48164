#!/usr/bin/env python3
"""Probe a real LiveKit server (v1.13.5, built by `scripts/livekit-real.sh install`) on every
behaviour the service relies on and print what it actually does (recorded in LIVEKIT_FINDINGS.md).

    .venv/bin/python scripts/probe_livekit.py     # starts its own servers, prints the findings

It starts, through scripts/livekit-real.sh, one server with Redis (webhooks pointed at a receiver
in this process) and one without Redis, all on 127.0.0.1, and stops them at the end. Calls go
through the official `livekit-api` client and through raw aiohttp (to see statuses, content types
and bodies). The curated conclusions live in scripts/LIVEKIT_FINDINGS.md.
"""

from __future__ import annotations

import asyncio
import base64
import datetime
import hashlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import jwt
from aiohttp import web
from google.protobuf.json_format import MessageToDict
from google.protobuf.message import Message
from livekit import api
from livekit.protocol.models import ListUpdate, Pagination
from livekit.protocol.room import CreateRoomRequest, DeleteRoomRequest, ListRoomsRequest
from livekit.protocol.sip import (
    CreateSIPDispatchRuleRequest,
    CreateSIPInboundTrunkRequest,
    DeleteSIPDispatchRuleRequest,
    DeleteSIPTrunkRequest,
    ListSIPDispatchRuleRequest,
    ListSIPInboundTrunkRequest,
    SIPDispatchRule,
    SIPDispatchRuleDirect,
    SIPDispatchRuleInfo,
    SIPDispatchRuleUpdate,
    SIPInboundTrunkInfo,
    UpdateSIPDispatchRuleRequest,
)

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "scripts" / "livekit-real.sh"


# --- output --------------------------------------------------------------------------------------
def section(title: str) -> None:
    print(f"\n## {title}", flush=True)


def out(label: str, value: Any) -> None:
    if not isinstance(value, str):
        value = json.dumps(value, sort_keys=True, default=str)
    print(f"- {label}: {value}", flush=True)


def as_dict(message: Message) -> dict[str, Any]:
    return MessageToDict(message, preserving_proto_field_name=True)


# --- servers -------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(run_dir: Path, **env: str) -> dict[str, str]:
    full_env = {
        **os.environ,
        "LIVEKIT_REAL_DIR": str(run_dir),
        "LIVEKIT_REAL_WATCH_PID": str(os.getpid()),
    }
    full_env.update(env)
    t0 = time.monotonic()
    subprocess.run([str(SCRIPT), "start"], env=full_env, check=True, stdout=subprocess.DEVNULL)  # noqa: S603
    elapsed = time.monotonic() - t0
    info = dict(
        line.split("=", 1)
        for line in (run_dir / "livekit.env").read_text().splitlines()
        if "=" in line
    )
    info["_script_seconds"] = f"{elapsed:.2f}"
    return info


def stop_server(run_dir: Path) -> None:
    subprocess.run(  # noqa: S603
        [str(SCRIPT), "stop"],
        env={**os.environ, "LIVEKIT_REAL_DIR": str(run_dir)},
        check=False,
        stderr=subprocess.DEVNULL,
    )


# --- tokens --------------------------------------------------------------------------------------
def token(
    key: str,
    secret: str,
    *,
    video: api.VideoGrants | None = None,
    sip: api.SIPGrants | None = None,
    ttl: datetime.timedelta | None = None,
) -> str:
    tok = api.AccessToken(key, secret)
    if video is not None:
        tok.with_grants(video)
    if sip is not None:
        tok.with_sip_grants(sip)
    if ttl is not None:
        tok.with_ttl(ttl)
    return tok.to_jwt()


# --- raw Twirp -------------------------------------------------------------------------------
async def raw(
    session: aiohttp.ClientSession,
    url: str,
    service: str,
    method: str,
    body: Message | dict[str, Any] | bytes | None,
    headers: dict[str, str],
    *,
    http_method: str = "POST",
    content_type: str | None = None,
) -> dict[str, Any]:
    if isinstance(body, Message):
        data: bytes = body.SerializeToString()
        content_type = content_type or "application/protobuf"
    elif isinstance(body, dict):
        data = json.dumps(body).encode()
        content_type = content_type or "application/json"
    else:
        data = body or b""
    hdrs = dict(headers)
    if content_type:
        hdrs["Content-Type"] = content_type
    async with session.request(
        http_method, f"{url}/twirp/livekit.{service}/{method}", data=data, headers=hdrs
    ) as resp:
        text = await resp.read()
        try:
            shown: Any = json.loads(text)
        except ValueError:
            shown = text.decode(errors="replace")[:3000]
        return {
            "status": resp.status,
            "content_type": resp.headers.get("Content-Type"),
            "body": shown,
        }


async def client_error(call: Awaitable[Any]) -> Any:
    try:
        result = await call
    except api.ServerError as e:  # TwirpError is an alias
        return {
            "ServerError.code": e.code,
            "status": e.status,
            "message": e.message,
            "metadata": e.metadata,
        }
    except Exception as e:
        return {"exception": f"{type(e).__name__}: {e}"}
    return {"ok": as_dict(result) if isinstance(result, Message) else repr(result)}


# --- webhook receiver ----------------------------------------------------------------------------
class Receiver:
    def __init__(self, key: str, secret: str) -> None:
        self.events: list[dict[str, Any]] = []
        self.key, self.secret = key, secret
        self.fail_first_for_room: str | None = None
        self._failed: set[str] = set()

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.text()
        auth = request.headers.get("Authorization", "")
        record: dict[str, Any] = {
            "t": time.monotonic(),
            "method": request.method,
            "path": request.path,
            "content_type": request.headers.get("Content-Type"),
            "auth": auth,
            "auth_prefix": auth[:7],
            "auth_is_bearer": auth.startswith("Bearer "),
            "headers": sorted(request.headers.keys()),
            "user_agent": request.headers.get("User-Agent"),
            "body": json.loads(body),
            "raw_body": body,
        }
        try:
            claims = jwt.decode(auth.removeprefix("Bearer "), options={"verify_signature": False})
            record["claims"] = claims
            record["sha256_ok"] = (
                claims.get("sha256")
                == base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()
            )
        except Exception as e:
            record["claims"] = f"undecodable: {e}"
        try:
            event = api.WebhookReceiver(api.TokenVerifier(self.key, self.secret)).receive(
                body, auth
            )
            record["receiver"] = f"ok: {event.event} {event.room.name} {event.room.sid}"
        except Exception as e:
            record["receiver"] = f"rejected: {type(e).__name__}: {e}"
        self.events.append(record)
        room = record["body"].get("room", {}).get("name")
        if (
            room
            and room == self.fail_first_for_room
            and record["body"]["event"] not in self._failed
        ):
            self._failed.add(record["body"]["event"])
            record["answered"] = 500
            return web.Response(status=500, text="fail once")
        record["answered"] = 200
        return web.Response(text="ok")


async def wait_for(predicate: Callable[[], bool], within: float) -> bool:
    t0 = time.monotonic()
    while time.monotonic() - t0 < within:
        if predicate():
            return True
        await asyncio.sleep(0.1)
    return predicate()


# --- the probe -----------------------------------------------------------------------------------
def direct(
    room: str, pin: str = "", *, trunk_ids: list[str] | None = None, name: str = "", **extra: Any
) -> CreateSIPDispatchRuleRequest:
    return CreateSIPDispatchRuleRequest(
        dispatch_rule=SIPDispatchRuleInfo(
            name=name or f"rule {room}",
            rule=SIPDispatchRule(
                dispatch_rule_direct=SIPDispatchRuleDirect(room_name=room, pin=pin)
            ),
            trunk_ids=trunk_ids or [],
            **extra,
        )
    )


async def probe(tmp: Path) -> None:
    key, secret = "APIprobe" + uuid.uuid4().hex[:8], uuid.uuid4().hex + uuid.uuid4().hex
    receiver = Receiver(key, secret)
    app = web.Application()
    app.router.add_post("/{tail:.*}", receiver.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    hook_port = free_port()
    await web.TCPSite(runner, "127.0.0.1", hook_port).start()

    section("Servers")
    main_dir, bare_dir = tmp / "with-redis", tmp / "no-redis"
    srv = start_server(
        main_dir,
        LIVEKIT_REAL_API_KEY=key,
        LIVEKIT_REAL_API_SECRET=secret,
        LIVEKIT_REAL_WEBHOOK_URLS=f"http://127.0.0.1:{hook_port}/livekit/webhook",
        LIVEKIT_REAL_EMPTY_TIMEOUT="5",
        LIVEKIT_REAL_DEPARTURE_TIMEOUT="2",
    )
    out(
        "with redis",
        {
            k: srv[k]
            for k in (
                "LIVEKIT_URL",
                "LIVEKIT_REAL_REDIS_ADDR",
                "LIVEKIT_REAL_STARTUP_SECONDS",
                "_script_seconds",
            )
        },
    )
    try:
        bare = start_server(
            bare_dir,
            LIVEKIT_REAL_API_KEY=key,
            LIVEKIT_REAL_API_SECRET=secret,
            LIVEKIT_REAL_NO_REDIS="1",
        )
        out(
            "without redis",
            {
                k: bare[k]
                for k in ("LIVEKIT_URL", "LIVEKIT_REAL_STARTUP_SECONDS", "_script_seconds")
            },
        )
        try:
            async with aiohttp.ClientSession() as session:
                await run_probes(
                    session, srv["LIVEKIT_URL"], bare["LIVEKIT_URL"], key, secret, receiver
                )
        finally:
            stop_server(bare_dir)
    finally:
        stop_server(main_dir)
        await runner.cleanup()


async def run_probes(
    session: aiohttp.ClientSession,
    url: str,
    bare_url: str,
    key: str,
    secret: str,
    receiver: Receiver,
) -> None:
    lk = api.LiveKitAPI(url, key, secret, session=session)
    admin = token(
        key,
        secret,
        sip=api.SIPGrants(admin=True),
        video=api.VideoGrants(room_list=True, room_create=True),
    )
    bearer = {"Authorization": f"Bearer {admin}"}

    # ---------------------------------------------------------------- transport
    section("Transport (Twirp)")
    r = await raw(session, url, "SIP", "ListSIPDispatchRule", ListSIPDispatchRuleRequest(), bearer)
    out("protobuf POST ListSIPDispatchRule", {k: r[k] for k in ("status", "content_type")})
    r = await raw(session, url, "SIP", "ListSIPDispatchRule", {}, bearer)
    out("JSON POST ListSIPDispatchRule", r)
    r = await raw(session, url, "SIP", "NoSuchMethod", {}, bearer)
    out("unknown method", r)
    r = await raw(
        session, url, "SIP", "ListSIPDispatchRule", b"{}", bearer, content_type="text/plain"
    )
    out("Content-Type text/plain", r)
    r = await raw(session, url, "SIP", "ListSIPDispatchRule", None, bearer, http_method="GET")
    out("GET instead of POST", r)
    r = await raw(
        session,
        url,
        "SIP",
        "ListSIPDispatchRule",
        b"\xff\xff\xff",
        bearer,
        content_type="application/protobuf",
    )
    out("garbage protobuf body", r)
    r = await raw(
        session,
        url,
        "SIP",
        "ListSIPDispatchRule",
        b"{not json",
        bearer,
        content_type="application/json",
    )
    out("garbage JSON body", r)

    # 5xx single attempt? count requests on a local stub that always answers 500.
    hits: list[str] = []

    async def five_hundred(request: web.Request) -> web.Response:
        hits.append(request.path)
        return web.json_response({"code": "internal", "msg": "boom"}, status=500)

    stub = web.Application()
    stub.router.add_route("*", "/{tail:.*}", five_hundred)
    stub_runner = web.AppRunner(stub, access_log=None)
    await stub_runner.setup()
    stub_port = free_port()
    await web.TCPSite(stub_runner, "127.0.0.1", stub_port).start()
    try:
        stub_api = api.LiveKitAPI(f"http://127.0.0.1:{stub_port}", key, secret, session=session)
        err = await client_error(stub_api.sip.list_dispatch_rule(ListSIPDispatchRuleRequest()))
        out(
            "livekit-api against a self-hosted URL answering 500: requests made",
            {"hits": hits, "error": err},
        )
    finally:
        await stub_runner.cleanup()

    # ---------------------------------------------------------------- auth
    section("Authentication")
    no_sip = token(
        key, secret, video=api.VideoGrants(room_list=True, room_create=True, room_admin=True)
    )
    no_video = token(key, secret, sip=api.SIPGrants(admin=True))
    sip_call_only = token(key, secret, sip=api.SIPGrants(call=True))
    cases = {
        "valid admin token": {"Authorization": f"Bearer {admin}"},
        "wrong secret": {
            "Authorization": f"Bearer {token(key, 'x' * 40, sip=api.SIPGrants(admin=True))}"
        },
        "unknown key": {
            "Authorization": f"Bearer {token('APIunknown', secret, sip=api.SIPGrants(admin=True))}"
        },
        "expired token": {
            "Authorization": "Bearer "
            + token(
                key,
                secret,
                sip=api.SIPGrants(admin=True),
                video=api.VideoGrants(room_list=True),
                ttl=datetime.timedelta(seconds=-120),
            )
        },
        "garbage token": {"Authorization": "Bearer not-a-jwt"},
        "header without 'Bearer ' (bare JWT)": {"Authorization": admin},
        "header 'Token <jwt>'": {"Authorization": f"Token {admin}"},
        "header 'bearer <jwt>' (lowercase)": {"Authorization": f"bearer {admin}"},
        "no Authorization header": {},
        "valid token without sip grant": {"Authorization": f"Bearer {no_sip}"},
        "valid token with sip.call only": {"Authorization": f"Bearer {sip_call_only}"},
        "valid token without video grant (sip.admin only)": {"Authorization": f"Bearer {no_video}"},
    }
    for name, hdrs in cases.items():
        for service, method in (("SIP", "ListSIPDispatchRule"), ("RoomService", "ListRooms")):
            r = await raw(session, url, service, method, {}, hdrs)
            body = r["body"]
            if isinstance(body, str) and len(body) > 160:
                jwt_end = body.find(", error")
                body = (
                    body[:40] + "…<the JWT>" + body[jwt_end:] if jwt_end > 0 else body[:160] + "…"
                )
            out(f"{name} → {method} (raw)", {**r, "body": body})
    # Query-string token (access_token=) instead of a header.
    r = await raw(session, url + "", "SIP", "ListSIPDispatchRule?access_token=" + admin, {}, {})
    out(
        "no header, ?access_token=<admin jwt> → ListSIPDispatchRule",
        {**r, "body": str(r["body"])[:120]},
    )

    # What livekit-api reports.
    async def with_token(tok: str) -> api.LiveKitAPI:
        return api.LiveKitAPI.with_token(tok, url, session=session)

    client_cases = {
        "wrong secret": api.LiveKitAPI(url, key, "y" * 40, session=session),
        "unknown key": api.LiveKitAPI(url, "APIunknown", secret, session=session),
        "expired token": await with_token(
            token(
                key,
                secret,
                sip=api.SIPGrants(admin=True),
                video=api.VideoGrants(room_list=True, room_create=True),
                ttl=datetime.timedelta(seconds=-120),
            )
        ),
        "valid token without sip grant": await with_token(no_sip),
        "valid token without video grants": await with_token(no_video),
        "token with sip.admin only, for rooms": await with_token(no_video),
    }
    for name, client in client_cases.items():
        out(
            f"livekit-api, {name}, list_dispatch_rule",
            await client_error(client.sip.list_dispatch_rule(ListSIPDispatchRuleRequest())),
        )
        out(
            f"livekit-api, {name}, list_rooms",
            await client_error(client.room.list_rooms(ListRoomsRequest())),
        )
    room_list_only = await with_token(token(key, secret, video=api.VideoGrants(room_list=True)))
    out(
        "livekit-api, video.roomList only, create_room",
        await client_error(room_list_only.room.create_room(CreateRoomRequest(name="grant-probe"))),
    )
    out(
        "livekit-api, video.roomList only, delete_room",
        await client_error(room_list_only.room.delete_room(DeleteRoomRequest(room="grant-probe"))),
    )
    room_create_only = await with_token(token(key, secret, video=api.VideoGrants(room_create=True)))
    out(
        "livekit-api, video.roomCreate only, list_rooms",
        await client_error(room_create_only.room.list_rooms(ListRoomsRequest())),
    )
    out(
        "livekit-api, video.roomCreate only, delete_room (unknown room)",
        await client_error(
            room_create_only.room.delete_room(DeleteRoomRequest(room="grant-probe-none"))
        ),
    )
    out(
        "livekit-api, video.roomAdmin only (no room), list_rooms",
        await client_error(
            (
                await with_token(token(key, secret, video=api.VideoGrants(room_admin=True)))
            ).room.list_rooms(ListRoomsRequest())
        ),
    )
    # no header at all through the client is not possible (it always signs); raw above covers it.

    # ---------------------------------------------------------------- trunks
    section("Inbound trunks")
    t1 = await lk.sip.create_inbound_trunk(
        CreateSIPInboundTrunkRequest(
            trunk=SIPInboundTrunkInfo(name="probe t1", numbers=["+15550000001"])
        )
    )
    t2 = await lk.sip.create_inbound_trunk(
        CreateSIPInboundTrunkRequest(
            trunk=SIPInboundTrunkInfo(name="probe t2", numbers=["+15550000002", "+15550000003"])
        )
    )
    out("create inbound trunk → returned", as_dict(t1))
    out("second trunk id", t2.sip_trunk_id)
    out(
        "create trunk with the same number as t1 (no other distinguishing field)",
        await client_error(
            lk.sip.create_inbound_trunk(
                CreateSIPInboundTrunkRequest(
                    trunk=SIPInboundTrunkInfo(name="dup", numbers=["+15550000001"])
                )
            )
        ),
    )
    out(
        "create trunk with no numbers",
        await client_error(
            lk.sip.create_inbound_trunk(
                CreateSIPInboundTrunkRequest(trunk=SIPInboundTrunkInfo(name="no numbers"))
            )
        ),
    )
    lst = await lk.sip.list_inbound_trunk(ListSIPInboundTrunkRequest())
    out("list inbound trunks (all) ids", [t.sip_trunk_id for t in lst.items])
    lst = await lk.sip.list_inbound_trunk(ListSIPInboundTrunkRequest(trunk_ids=[t2.sip_trunk_id]))
    out("list inbound trunks trunk_ids=[t2]", [t.sip_trunk_id for t in lst.items])
    lst = await lk.sip.list_inbound_trunk(ListSIPInboundTrunkRequest(numbers=["+15550000003"]))
    out("list inbound trunks numbers=[t2's 2nd number]", [t.sip_trunk_id for t in lst.items])
    lst = await lk.sip.list_inbound_trunk(ListSIPInboundTrunkRequest(numbers=["+19999999999"]))
    out("list inbound trunks numbers=[unknown]", [t.sip_trunk_id for t in lst.items])
    lst = await lk.sip.list_inbound_trunk(ListSIPInboundTrunkRequest(trunk_ids=["ST_unknown"]))
    out("list inbound trunks trunk_ids=[unknown]", [as_dict(t) for t in lst.items])
    r = await raw(session, url, "SIP", "ListSIPInboundTrunk", {}, bearer)
    out(
        "raw JSON ListSIPInboundTrunk response (field naming)",
        r["body"]["items"][0] if r["body"].get("items") else r,
    )

    # ---------------------------------------------------------------- dispatch rules
    section("Dispatch rules: create")
    created = await lk.sip.create_dispatch_rule(
        direct(
            "room-a",
            "1234",
            attributes={"telephony.managed_by": "meet-telephony", "telephony.room_id": "room-a"},
            hide_phone_number=True,
            metadata="m",
        )
    )
    out(
        "create direct {room_name, pin} wildcard + attributes + hide_phone_number → returned",
        as_dict(created),
    )
    out(
        "same, through the deprecated flat request fields",
        await client_error(
            lk.sip.create_dispatch_rule(
                CreateSIPDispatchRuleRequest(
                    rule=SIPDispatchRule(
                        dispatch_rule_direct=SIPDispatchRuleDirect(
                            room_name="room-flat", pin="7777"
                        )
                    ),
                    name="flat",
                    trunk_ids=[t1.sip_trunk_id],
                )
            )
        ),
    )
    out(
        "create with both dispatch_rule and flat fields",
        await client_error(
            lk.sip.create_dispatch_rule(
                CreateSIPDispatchRuleRequest(
                    dispatch_rule=SIPDispatchRuleInfo(
                        name="both",
                        rule=SIPDispatchRule(
                            dispatch_rule_direct=SIPDispatchRuleDirect(
                                room_name="room-both", pin="7778"
                            )
                        ),
                        trunk_ids=[t1.sip_trunk_id],
                    ),
                    name="both-flat",
                )
            )
        ),
    )
    out(
        "create with no rule kind",
        await client_error(
            lk.sip.create_dispatch_rule(
                CreateSIPDispatchRuleRequest(dispatch_rule=SIPDispatchRuleInfo(name="norule"))
            )
        ),
    )
    out(
        "create direct with empty room_name",
        await client_error(lk.sip.create_dispatch_rule(direct("", "8881"))),
    )
    out(
        "create direct with non-digit pin '12ab'",
        await client_error(
            lk.sip.create_dispatch_rule(
                direct("room-pin-letters", "12ab", trunk_ids=[t1.sip_trunk_id])
            )
        ),
    )
    out(
        "create direct with 20-digit pin",
        await client_error(
            lk.sip.create_dispatch_rule(
                direct("room-pin-long", "1" * 20, trunk_ids=[t1.sip_trunk_id])
            )
        ),
    )
    out(
        "create with unknown trunk id ST_doesnotexist",
        await client_error(
            lk.sip.create_dispatch_rule(
                direct("room-unknown-trunk", "8882", trunk_ids=["ST_doesnotexist"])
            )
        ),
    )

    section("Dispatch rules: conflicts")

    async def pair(
        label: str, first: CreateSIPDispatchRuleRequest, second: CreateSIPDispatchRuleRequest
    ) -> None:
        a = await client_error(lk.sip.create_dispatch_rule(first))
        b = await client_error(lk.sip.create_dispatch_rule(second))
        a_id = a.get("ok", {}).get("sip_dispatch_rule_id")
        out(label, {"first": a_id or a, "second": b.get("ok", {}).get("sip_dispatch_rule_id") or b})

    T1, T2 = t1.sip_trunk_id, t2.sip_trunk_id
    await pair("same PIN, both wildcard", direct("room-c1", "1111"), direct("room-c1b", "1111"))
    await pair(
        "same PIN, both wildcard, same room", direct("room-c1s", "1112"), direct("room-c1s", "1112")
    )
    await pair(
        "same PIN, [T1] then [T1,T2] (shared trunk)",
        direct("room-c2", "2222", trunk_ids=[T1]),
        direct("room-c2b", "2222", trunk_ids=[T1, T2]),
    )
    await pair(
        "same PIN, [T1] then [T1] (same trunk)",
        direct("room-c2s", "2223", trunk_ids=[T1]),
        direct("room-c2t", "2223", trunk_ids=[T1]),
    )
    await pair(
        "same PIN, wildcard then [T1]",
        direct("room-c3", "3333"),
        direct("room-c3b", "3333", trunk_ids=[T1]),
    )
    await pair(
        "same PIN, [T1] then wildcard",
        direct("room-c4", "4444", trunk_ids=[T1]),
        direct("room-c4b", "4444"),
    )
    await pair(
        "same PIN, [T1] then [T2] (disjoint trunks)",
        direct("room-c5", "5555", trunk_ids=[T1]),
        direct("room-c5b", "5555", trunk_ids=[T2]),
    )
    await pair(
        "different PINs, both wildcard", direct("room-c6", "6661"), direct("room-c6b", "6662")
    )
    await pair(
        "no PIN wildcard, then PIN wildcard", direct("room-c7", ""), direct("room-c7b", "7771")
    )
    await pair(
        "no PIN wildcard twice",
        direct("room-c8", "", name="open 1"),
        direct("room-c8b", "", name="open 2"),
    )
    await pair(
        "same PIN wildcard, different inbound_numbers",
        direct("room-c9", "9991", inbound_numbers=["+33100000001"]),
        direct("room-c9b", "9991", inbound_numbers=["+33100000002"]),
    )
    await pair(
        "same PIN wildcard, one with inbound_numbers one without",
        direct("room-c10", "9992"),
        direct("room-c10b", "9992", inbound_numbers=["+33100000001"]),
    )
    await pair(
        "same PIN wildcard, different numbers",
        direct("room-c11", "9993", numbers=["+15550000001"]),
        direct("room-c11b", "9993", numbers=["+15550000002"]),
    )
    await pair(
        "PIN '0123' vs PIN '123' wildcard", direct("room-c12", "0123"), direct("room-c12b", "123")
    )
    r = await raw(session, url, "SIP", "CreateSIPDispatchRule", direct("room-c1c", "1111"), bearer)
    out("conflict, raw", r)

    # Does the server deduplicate a repeated request (same X-Livekit-Request-Id)?
    req_id = str(uuid.uuid4())
    dd = direct("room-dedup", "4321", trunk_ids=[T2])
    r1 = await raw(
        session, url, "SIP", "CreateSIPDispatchRule", dd, {**bearer, "X-Livekit-Request-Id": req_id}
    )
    r2 = await raw(
        session, url, "SIP", "CreateSIPDispatchRule", dd, {**bearer, "X-Livekit-Request-Id": req_id}
    )
    out(
        "same create twice, same X-Livekit-Request-Id",
        {
            "first": r1["status"],
            "second": {k: r2[k] for k in ("status", "body")}
            if r2["status"] != 200
            else "200 (new rule created)",
        },
    )
    r1 = await raw(
        session,
        url,
        "SIP",
        "CreateSIPDispatchRule",
        as_dict(direct("room-dedup3", "4331", trunk_ids=[T2])),
        {**bearer, "X-Livekit-Request-Id": req_id + "y"},
    )
    r2 = await raw(
        session,
        url,
        "SIP",
        "CreateSIPDispatchRule",
        as_dict(direct("room-dedup3", "4332", trunk_ids=[T2])),
        {**bearer, "X-Livekit-Request-Id": req_id + "y"},
    )
    out(
        "two different creates with the same X-Livekit-Request-Id",
        {
            "first": r1["body"].get("sip_dispatch_rule_id"),
            "second": r2["body"].get("sip_dispatch_rule_id") or r2["body"],
        },
    )
    dd2 = direct("room-dedup2", "", trunk_ids=[T2], name="dedup pinless")
    r1 = await raw(
        session,
        url,
        "SIP",
        "CreateSIPDispatchRule",
        dd2,
        {**bearer, "X-Livekit-Request-Id": req_id + "x"},
    )
    r2 = await raw(
        session,
        url,
        "SIP",
        "CreateSIPDispatchRule",
        dd2,
        {**bearer, "X-Livekit-Request-Id": req_id + "x"},
    )
    out(
        "same PIN-less [T2] create twice (same request id)",
        {
            "first": r1["status"],
            "second": r2["status"],
            "second_body": r2["body"] if r2["status"] != 200 else "-",
        },
    )

    section("Dispatch rules: list")
    everything = await lk.sip.list_dispatch_rule(ListSIPDispatchRuleRequest())
    ids = [x.sip_dispatch_rule_id for x in everything.items]
    out("list all: count", len(ids))
    out("list all: sorted by id?", ids == sorted(ids))
    out("list all: ids", ids)
    sub = await lk.sip.list_dispatch_rule(
        ListSIPDispatchRuleRequest(dispatch_rule_ids=[ids[2], ids[0], "SDR_unknown"])
    )
    out(
        "dispatch_rule_ids=[ids[2], ids[0], SDR_unknown] →",
        [x.sip_dispatch_rule_id or "<empty item>" for x in sub.items],
    )
    sub = await lk.sip.list_dispatch_rule(
        ListSIPDispatchRuleRequest(dispatch_rule_ids=["SDR_unknown"])
    )
    out("dispatch_rule_ids=[SDR_unknown] →", [as_dict(x) for x in sub.items])
    by_trunk = await lk.sip.list_dispatch_rule(ListSIPDispatchRuleRequest(trunk_ids=[T2]))
    kinds = {x.sip_dispatch_rule_id: (list(x.trunk_ids) or "wildcard") for x in by_trunk.items}
    out("trunk_ids=[T2] → (trunk_ids of each item)", kinds)
    out("trunk_ids=[T2] includes wildcard rules?", any(v == "wildcard" for v in kinds.values()))
    by_both = await lk.sip.list_dispatch_rule(
        ListSIPDispatchRuleRequest(trunk_ids=[T2], dispatch_rule_ids=[ids[0], ids[1]])
    )
    out(
        "trunk_ids=[T2] + dispatch_rule_ids=[ids[0], ids[1]]",
        [x.sip_dispatch_rule_id for x in by_both.items],
    )
    page1 = await lk.sip.list_dispatch_rule(ListSIPDispatchRuleRequest(page=Pagination(limit=3)))
    p1 = [x.sip_dispatch_rule_id for x in page1.items]
    page2 = await lk.sip.list_dispatch_rule(
        ListSIPDispatchRuleRequest(page=Pagination(after_id=p1[-1], limit=3))
    )
    p2 = [x.sip_dispatch_rule_id for x in page2.items]
    out("page limit=3", p1)
    out("page after_id=<last of page 1>, limit=3", p2)
    out("pages equal the first 6 of the full sorted list?", p1 + p2 == ids[:6])
    mid = await lk.sip.list_dispatch_rule(
        ListSIPDispatchRuleRequest(page=Pagination(after_id=ids[5], limit=3))
    )
    m = [x.sip_dispatch_rule_id for x in mid.items]
    out(
        "page after_id=ids[5], limit=3: count, equals ids[6:]?",
        {"count": len(m), "equals_rest": m == ids[6:]},
    )
    mid = await lk.sip.list_dispatch_rule(
        ListSIPDispatchRuleRequest(page=Pagination(after_id="SDR_M", limit=2))
    )
    m = [x.sip_dispatch_rule_id for x in mid.items]
    out(
        "page after_id='SDR_M' (not an existing id), limit=2: equals ids > 'SDR_M'?",
        {"count": len(m), "equals": m == [i for i in ids if i > "SDR_M"]},
    )
    page_x = await lk.sip.list_dispatch_rule(
        ListSIPDispatchRuleRequest(page=Pagination(after_id="SDR_zzzz", limit=3))
    )
    out("after_id beyond the last id", [x.sip_dispatch_rule_id for x in page_x.items])
    page_ids = await lk.sip.list_dispatch_rule(
        ListSIPDispatchRuleRequest(
            dispatch_rule_ids=[ids[0], ids[1], ids[2]], page=Pagination(limit=1)
        )
    )
    out("dispatch_rule_ids (3) with page limit=1", [x.sip_dispatch_rule_id for x in page_ids.items])
    page_trunk = await lk.sip.list_dispatch_rule(
        ListSIPDispatchRuleRequest(trunk_ids=[T2], page=Pagination(limit=2))
    )
    out("trunk_ids=[T2] with page limit=2", [x.sip_dispatch_rule_id for x in page_trunk.items])
    r = await raw(
        session,
        url,
        "SIP",
        "ListSIPDispatchRule",
        {"dispatch_rule_ids": [created.sip_dispatch_rule_id]},
        bearer,
    )
    out("raw JSON list response for the first rule (field naming, int64 encoding)", r["body"])
    page0 = await lk.sip.list_dispatch_rule(ListSIPDispatchRuleRequest(page=Pagination(limit=0)))
    out("page limit=0 (explicit Pagination message): items returned", len(page0.items))

    section("Dispatch rules: delete")
    out(
        "delete unknown id SDR_doesnotexist",
        await client_error(
            lk.sip.delete_dispatch_rule(
                DeleteSIPDispatchRuleRequest(sip_dispatch_rule_id="SDR_doesnotexist")
            )
        ),
    )
    out(
        "delete empty id",
        await client_error(
            lk.sip.delete_dispatch_rule(DeleteSIPDispatchRuleRequest(sip_dispatch_rule_id=""))
        ),
    )
    victim = await lk.sip.create_dispatch_rule(direct("room-del", "5678"))
    out(
        "delete existing → returns",
        await client_error(
            lk.sip.delete_dispatch_rule(
                DeleteSIPDispatchRuleRequest(sip_dispatch_rule_id=victim.sip_dispatch_rule_id)
            )
        ),
    )
    out(
        "delete it again",
        await client_error(
            lk.sip.delete_dispatch_rule(
                DeleteSIPDispatchRuleRequest(sip_dispatch_rule_id=victim.sip_dispatch_rule_id)
            )
        ),
    )
    r = await raw(
        session,
        url,
        "SIP",
        "DeleteSIPDispatchRule",
        {"sip_dispatch_rule_id": "SDR_doesnotexist"},
        bearer,
    )
    out("delete unknown, raw", r)
    out(
        "PIN reusable right after delete",
        await client_error(lk.sip.create_dispatch_rule(direct("room-del2", "5678"))),
    )

    section("Dispatch rules: update")
    u = await lk.sip.create_dispatch_rule(
        direct("room-u", "2468", trunk_ids=[T1], attributes={"a": "1"})
    )
    uid = u.sip_dispatch_rule_id
    out(
        "update field-wise: name + attributes",
        await client_error(
            lk.sip.update_dispatch_rule_fields(uid, name="renamed", attributes={"b": "2"})
        ),
    )
    out(
        "update field-wise: trunk_ids add T2",
        await client_error(lk.sip.update_dispatch_rule_fields(uid, trunk_ids=ListUpdate(add=[T2]))),
    )
    out(
        "update field-wise: rule → pin 1111 (a wildcard 1111 exists; this rule is on T1,T2)",
        await client_error(
            lk.sip.update_dispatch_rule_fields(
                uid,
                rule=SIPDispatchRule(
                    dispatch_rule_direct=SIPDispatchRuleDirect(room_name="room-u", pin="1111")
                ),
            )
        ),
    )
    out(
        "update field-wise: rule → pin 2222 (a [T1] rule with 2222 exists; this rule is on T1,T2)",
        await client_error(
            lk.sip.update_dispatch_rule_fields(
                uid,
                rule=SIPDispatchRule(
                    dispatch_rule_direct=SIPDispatchRuleDirect(room_name="room-u", pin="2222")
                ),
            )
        ),
    )
    out(
        "update field-wise: trunk_ids set [T2]",
        await client_error(lk.sip.update_dispatch_rule_fields(uid, trunk_ids=ListUpdate(set=[T2]))),
    )
    out(
        "update field-wise: trunk_ids remove [T2] (→ wildcard)",
        await client_error(
            lk.sip.update_dispatch_rule_fields(uid, trunk_ids=ListUpdate(remove=[T2]))
        ),
    )
    out(
        "update field-wise: trunk_ids set [] (→ wildcard)",
        await client_error(lk.sip.update_dispatch_rule_fields(uid, trunk_ids=ListUpdate(set=[]))),
    )
    out(
        "replace whole rule (pin 2469, wildcard)",
        await client_error(
            lk.sip.update_dispatch_rule(
                uid,
                direct("room-u", "2469", name="replaced").dispatch_rule,
            )
        ),
    )
    out(
        "replace with a conflicting pin (1111 wildcard)",
        await client_error(
            lk.sip.update_dispatch_rule(
                uid,
                direct("room-u", "1111", name="replaced").dispatch_rule,
            )
        ),
    )
    out(
        "replace with itself unchanged (self-conflict?)",
        await client_error(
            lk.sip.update_dispatch_rule(
                uid,
                direct("room-u", "2469", name="replaced").dispatch_rule,
            )
        ),
    )
    out(
        "replace without a rule kind",
        await client_error(lk.sip.update_dispatch_rule(uid, SIPDispatchRuleInfo(name="empty"))),
    )
    out(
        "update unknown id (field-wise)",
        await client_error(lk.sip.update_dispatch_rule_fields("SDR_doesnotexist", name="x")),
    )
    out(
        "update unknown id (replace)",
        await client_error(
            lk.sip.update_dispatch_rule(
                "SDR_doesnotexist",
                direct("r", "1357", name="x").dispatch_rule,
            )
        ),
    )
    out(
        "update with neither replace nor update",
        await client_error(
            lk.sip._client.request(
                "SIP",
                "UpdateSIPDispatchRule",
                UpdateSIPDispatchRuleRequest(sip_dispatch_rule_id=uid),
                lk.sip._admin_headers(),
                SIPDispatchRuleInfo,
            )
        ),
    )
    out(
        "update with empty id", await client_error(lk.sip.update_dispatch_rule_fields("", name="x"))
    )
    out(
        "update field-wise with nothing set",
        await client_error(
            lk.sip._client.request(
                "SIP",
                "UpdateSIPDispatchRule",
                UpdateSIPDispatchRuleRequest(
                    sip_dispatch_rule_id=uid, update=SIPDispatchRuleUpdate()
                ),
                lk.sip._admin_headers(),
                SIPDispatchRuleInfo,
            )
        ),
    )

    section("Inbound trunks: delete")
    t3 = await lk.sip.create_inbound_trunk(
        CreateSIPInboundTrunkRequest(
            trunk=SIPInboundTrunkInfo(name="probe t3", numbers=["+15550000009"])
        )
    )
    ref = await lk.sip.create_dispatch_rule(direct("room-t3", "1212", trunk_ids=[t3.sip_trunk_id]))
    out(
        "delete a trunk still referenced by a rule",
        await client_error(
            lk.sip.delete_trunk(DeleteSIPTrunkRequest(sip_trunk_id=t3.sip_trunk_id))
        ),
    )
    after = await lk.sip.list_dispatch_rule(
        ListSIPDispatchRuleRequest(dispatch_rule_ids=[ref.sip_dispatch_rule_id])
    )
    out("…the rule afterwards", [as_dict(x) for x in after.items])
    out(
        "delete unknown trunk",
        await client_error(
            lk.sip.delete_trunk(DeleteSIPTrunkRequest(sip_trunk_id="ST_doesnotexist"))
        ),
    )

    # ---------------------------------------------------------------- rooms + webhooks
    section("Rooms")
    receiver.events.clear()
    name = "probe-room-" + uuid.uuid4().hex[:6]
    t_create = time.monotonic()
    room1 = await lk.room.create_room(CreateRoomRequest(name=name))
    out("CreateRoom → returned", as_dict(room1))
    again = await lk.room.create_room(CreateRoomRequest(name=name))
    out("CreateRoom same name again → same sid?", again.sid == room1.sid)
    listed = await lk.room.list_rooms(ListRoomsRequest(names=[name, "no-such-room"]))
    out("ListRooms names=[room, no-such-room]", [(x.name, x.sid) for x in listed.rooms])
    listed_all = await lk.room.list_rooms(ListRoomsRequest())
    out("ListRooms no names: count", len(listed_all.rooms))
    out("DeleteRoom →", await client_error(lk.room.delete_room(DeleteRoomRequest(room=name))))
    listed = await lk.room.list_rooms(ListRoomsRequest(names=[name]))
    out("ListRooms after DeleteRoom", [(x.name, x.sid) for x in listed.rooms])
    out(
        "DeleteRoom unknown/closed room",
        await client_error(lk.room.delete_room(DeleteRoomRequest(room=name))),
    )
    out(
        "DeleteRoom empty name", await client_error(lk.room.delete_room(DeleteRoomRequest(room="")))
    )
    room2 = await lk.room.create_room(CreateRoomRequest(name=name))
    out(
        "CreateRoom same name after delete: new sid?",
        {"first": room1.sid, "second": room2.sid, "different": room1.sid != room2.sid},
    )
    out(
        "CreateRoom empty name", await client_error(lk.room.create_room(CreateRoomRequest(name="")))
    )
    out("waiting for the empty_timeout close of incarnation 2 (config 5 s)…", "")
    closed = await wait_for(
        lambda: any(
            e["body"].get("event") == "room_finished" and e["body"]["room"].get("sid") == room2.sid
            for e in receiver.events
        ),
        40,
    )
    t_closed = next(
        (
            e["t"]
            for e in receiver.events
            if e["body"].get("event") == "room_finished"
            and e["body"]["room"].get("sid") == room2.sid
        ),
        None,
    )
    t_created2 = next(
        (
            e["t"]
            for e in receiver.events
            if e["body"].get("event") == "room_started"
            and e["body"]["room"].get("sid") == room2.sid
        ),
        None,
    )
    out(
        "room_finished for an empty CreateRoom'd room arrived?",
        {
            "arrived": closed,
            "seconds_after_room_started": round(t_closed - t_created2, 1)
            if t_closed and t_created2
            else None,
        },
    )
    listed = await lk.room.list_rooms(ListRoomsRequest(names=[name]))
    out("ListRooms after empty timeout", [(x.name, x.sid) for x in listed.rooms])
    # CreateRoom with an explicit empty_timeout
    name3 = name + "-t"
    room3 = await lk.room.create_room(CreateRoomRequest(name=name3, empty_timeout=2))
    await wait_for(
        lambda: any(
            e["body"].get("event") == "room_finished" and e["body"]["room"].get("sid") == room3.sid
            for e in receiver.events
        ),
        30,
    )
    ts = [e["t"] for e in receiver.events if e["body"]["room"].get("sid") == room3.sid]
    out(
        "CreateRoom(empty_timeout=2): started→finished seconds",
        round(ts[-1] - ts[0], 1) if len(ts) >= 2 else ts,
    )

    # failed delivery: answer 500 to the first delivery of each event for one room
    name4 = name + "-retry"
    receiver.fail_first_for_room = name4
    room4 = await lk.room.create_room(CreateRoomRequest(name=name4))
    await lk.room.delete_room(DeleteRoomRequest(room=name4))
    await asyncio.sleep(8)
    deliveries = [
        (e["body"]["event"], e["answered"], e["body"].get("id"), round(e["t"] - t_create, 1))
        for e in receiver.events
        if e["body"]["room"].get("sid") == room4.sid
    ]
    out(
        "receiver answers 500 to the first delivery of each event: (event, answer, id, t)",
        deliveries,
    )

    section("Webhooks")
    out("requests received", len(receiver.events))
    for e in receiver.events:
        b = e["body"]
        out(
            f"{b.get('event')} {b.get('room', {}).get('name')}",
            {
                "method": e["method"],
                "path": e["path"],
                "content_type": e["content_type"],
                "authorization_starts": e["auth_prefix"],
                "is_bearer": e["auth_is_bearer"],
                "claims": e["claims"],
                "sha256_matches_body": e.get("sha256_ok"),
                "WebhookReceiver": e["receiver"],
                "body_keys": sorted(b),
                "id": b.get("id"),
                "created_at": b.get("created_at"),
                "created_at_json_type": type(b.get("created_at")).__name__,
                "room": b.get("room"),
                "room_end_reason": b.get("room_end_reason", b.get("roomEndReason")),
                "headers": e["headers"],
                "user_agent": e["user_agent"],
            },
        )
    if receiver.events:
        out("raw body of the first webhook", receiver.events[0]["raw_body"])
        c = receiver.events[0]["claims"]
        if isinstance(c, dict):
            out(
                "JWT validity (exp - nbf, exp - iat)",
                {
                    "exp-nbf": c.get("exp", 0) - c.get("nbf", 0),
                    "exp-iat": c.get("exp", 0) - c.get("iat", c.get("nbf", 0)),
                },
            )
        e = receiver.events[0]
        out(
            "WebhookReceiver with 'Bearer ' + JWT",
            await asyncio.to_thread(
                _try_receiver, key, secret, e["raw_body"], "Bearer " + e["auth"]
            ),
        )

    # ---------------------------------------------------------------- no redis
    section("Server without Redis")
    bare = api.LiveKitAPI(bare_url, key, secret, session=session)
    out(
        "ListSIPDispatchRule",
        await client_error(bare.sip.list_dispatch_rule(ListSIPDispatchRuleRequest())),
    )
    out(
        "CreateSIPDispatchRule",
        await client_error(bare.sip.create_dispatch_rule(direct("r", "1234"))),
    )
    out(
        "DeleteSIPDispatchRule",
        await client_error(
            bare.sip.delete_dispatch_rule(
                DeleteSIPDispatchRuleRequest(sip_dispatch_rule_id="SDR_x")
            )
        ),
    )
    out(
        "ListSIPInboundTrunk",
        await client_error(bare.sip.list_inbound_trunk(ListSIPInboundTrunkRequest())),
    )
    out(
        "CreateSIPInboundTrunk",
        await client_error(
            bare.sip.create_inbound_trunk(
                CreateSIPInboundTrunkRequest(trunk=SIPInboundTrunkInfo(name="x", numbers=["+1555"]))
            )
        ),
    )
    r = await raw(session, bare_url, "SIP", "ListSIPDispatchRule", {}, bearer)
    out("ListSIPDispatchRule raw", r)
    r = await raw(
        session, bare_url, "SIP", "ListSIPDispatchRule", {}, {"Authorization": f"Bearer {no_sip}"}
    )
    out("ListSIPDispatchRule raw, token without sip grant (order of checks)", r)
    out("ListRooms without redis", await client_error(bare.room.list_rooms(ListRoomsRequest())))
    out(
        "CreateRoom without redis",
        await client_error(bare.room.create_room(CreateRoomRequest(name="bare-room"))),
    )


def _try_receiver(key: str, secret: str, body: str, auth: str) -> str:
    try:
        api.WebhookReceiver(api.TokenVerifier(key, secret)).receive(body, auth)
        return "accepted"
    except Exception as e:
        return f"rejected: {type(e).__name__}: {e}"


def main() -> int:
    built = subprocess.run([str(SCRIPT), "path"], capture_output=True, check=False)  # noqa: S603
    if built.returncode != 0:
        print("real LiveKit not built: run scripts/livekit-real.sh install", file=sys.stderr)
        return 2
    print(
        "# LiveKit v1.13.5 probe —",
        datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    )
    with tempfile.TemporaryDirectory(prefix="lk-probe-") as tmp:
        asyncio.run(probe(Path(tmp)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
