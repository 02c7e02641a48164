#!/usr/bin/env python3
"""Probe a running real LiveKit server (v1.13.5) with real WebRTC participants (the `livekit` rtc
SDK from PyPI) on what a PIN-entry agent would need, and print what it actually does:

- `RoomService.MoveParticipant` / `ForwardParticipant` between two rooms (client and raw Twirp);
- DTMF published by one participant (`LocalParticipant.publish_dtmf`) and received by the others
  (`sip_dtmf_received`): digits, order, latency, who gets it, what drops it;
- RemoveParticipant, agent-kind and hidden tokens, a room left with only an agent.

    scripts/livekit-real.sh start                        # prints the env file it wrote
    .venv/bin/python scripts/probe_rtc.py [ENV_FILE]     # default .cache/livekit/run/livekit.env

ENV_FILE is the one `livekit-real.sh start` writes (LIVEKIT_URL, LIVEKIT_API_KEY,
LIVEKIT_API_SECRET); without it, those variables are read from the environment. Participants
connect over loopback only (the server's single ICE UDP port). Each probe uses fresh room names.
The curated conclusions live in scripts/LIVEKIT_FINDINGS.md.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import os
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import aiohttp
from livekit import api, rtc
from livekit.protocol import room as room_pb
from livekit.protocol.models import ParticipantInfo
from livekit.protocol.room import (
    ForwardParticipantRequest,
    ListParticipantsRequest,
    MoveParticipantRequest,
    RoomParticipantIdentity,
)
from livekit.rtc.room import EventTypes

REPO = Path(__file__).resolve().parent.parent
DEFAULT_ENV_FILE = REPO / ".cache" / "livekit" / "run" / "livekit.env"
# DTMF digits as LiveKit SIP names them (RFC 4733 event codes: 0-9, * = 10, # = 11, A-D = 12-15).
DTMF = (
    [(str(d), d) for d in range(10)]
    + [("*", 10), ("#", 11)]
    + [(c, 12 + i) for i, c in enumerate("ABCD")]
)
EVENTS: tuple[EventTypes, ...] = (
    "participant_connected",
    "participant_disconnected",
    "connected",
    "disconnected",
    "moved",
    "reconnecting",
    "reconnected",
    "room_updated",
    "connection_state_changed",
    "participant_attributes_changed",
    "participant_permissions_changed",
)


# --- output --------------------------------------------------------------------------------------
def section(title: str) -> None:
    print(f"\n## {title}", flush=True)


def out(label: str, value: Any) -> None:
    if not isinstance(value, str):
        value = json.dumps(value, sort_keys=True, default=str)
    print(f"- {label}: {value}", flush=True)


def ms(seconds: float) -> float:
    return round(seconds * 1000, 1)


def spread(values: list[float]) -> dict[str, float] | None:
    """min / median / max in ms."""
    if not values:
        return None
    return {"min": ms(min(values)), "median": ms(statistics.median(values)), "max": ms(max(values))}


# --- server --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Server:
    url: str  # http://…
    key: str
    secret: str
    info: dict[str, str]

    @property
    def ws_url(self) -> str:
        return "ws" + self.url.removeprefix("http")

    def join_token(
        self,
        identity: str,
        room: str,
        *,
        kind: api.AccessToken.ParticipantKind | None = None,
        **grants: Any,
    ) -> str:
        tok = api.AccessToken(self.key, self.secret).with_identity(identity)
        tok.with_grants(api.VideoGrants(room_join=True, room=room, **grants))
        if kind is not None:
            tok.with_kind(kind)
        return tok.to_jwt()

    def admin_token(self, **grants: Any) -> str:
        return (
            api.AccessToken(self.key, self.secret).with_grants(api.VideoGrants(**grants)).to_jwt()
        )


def read_server(argv: list[str]) -> Server:
    path = Path(argv[1]) if len(argv) > 1 else DEFAULT_ENV_FILE
    info: dict[str, str] = {}
    if path.is_file():
        pairs = (line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
        info = {k: v for k, v in pairs}
    else:
        info = {k: v for k, v in os.environ.items() if k.startswith("LIVEKIT_")}
    missing = [k for k in ("LIVEKIT_URL", "LIVEKIT_API_KEY", "LIVEKIT_API_SECRET") if k not in info]
    if missing:
        raise SystemExit(
            f"probe_rtc: no {', '.join(missing)} (no env file {path}): "
            "run scripts/livekit-real.sh start, or pass its env file"
        )
    return Server(info["LIVEKIT_URL"], info["LIVEKIT_API_KEY"], info["LIVEKIT_API_SECRET"], info)


def config_value(server: Server, name: str) -> str | None:
    """A `name: value` line of the server's YAML config (livekit-real.sh writes flat lines)."""
    cfg = server.info.get("LIVEKIT_REAL_CONFIG")
    if not cfg or not Path(cfg).is_file():
        return None
    for line in Path(cfg).read_text().splitlines():
        if line.strip().startswith(f"{name}:"):
            return line.split(":", 1)[1].strip()
    return None


# --- participants ---------------------------------------------------------------------------------
@dataclass
class Peer:
    """One WebRTC participant and everything it saw, stamped on one monotonic clock."""

    identity: str
    t0: float
    room: rtc.Room = field(default_factory=rtc.Room)
    log: list[tuple[float, str, Any]] = field(default_factory=list)
    dtmf: list[tuple[float, int, str, str | None]] = field(default_factory=list)
    data: list[tuple[float, bytes, str | None]] = field(default_factory=list)
    connected_at: float | None = None

    def __post_init__(self) -> None:
        for event in EVENTS:
            self.room.on(event, self._recorder(event))
        self.room.on("sip_dtmf_received", self._on_dtmf)
        self.room.on("data_received", self._on_data)

    def _now(self) -> float:
        return time.monotonic() - self.t0

    def _recorder(self, event: str) -> Callable[..., None]:
        def record(*args: Any) -> None:
            shown = [getattr(a, "identity", a) for a in args]
            self.log.append((round(self._now(), 3), event, shown))

        return record

    def _on_dtmf(self, ev: rtc.SipDTMF) -> None:
        sender = ev.participant.identity if ev.participant else None
        self.dtmf.append((self._now(), ev.code, ev.digit, sender))

    def _on_data(self, packet: rtc.DataPacket) -> None:
        sender = packet.participant.identity if packet.participant else None
        self.data.append((self._now(), packet.data, sender))

    async def join(self, server: Server, room: str, **token: Any) -> float:
        """Connect; returns the seconds connect() took."""
        started = time.monotonic()
        await self.room.connect(server.ws_url, server.join_token(self.identity, room, **token))
        self.connected_at = self._now()
        return time.monotonic() - started

    def knows(self, identity: str) -> bool:
        return identity in self.room.remote_participants

    def events(self, name: str) -> list[tuple[float, str, Any]]:
        return [e for e in self.log if e[1] == name]

    async def leave(self) -> None:
        await self.room.disconnect()


async def wait_for(predicate: Callable[[], bool], within: float) -> float | None:
    """Seconds until `predicate` held (polled every 10 ms), None if it did not within `within`."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < within:
        if predicate():
            return round(time.monotonic() - t0, 3)
        await asyncio.sleep(0.01)
    return round(time.monotonic() - t0, 3) if predicate() else None


async def api_error(call: Awaitable[Any]) -> dict[str, Any]:
    started = time.monotonic()
    try:
        result = await call
    except api.TwirpError as e:
        return {
            "code": e.code,
            "status": e.status,
            "message": e.message,
            "metadata": e.metadata,
            "ms": ms(time.monotonic() - started),
        }
    return {"ok": repr(result), "ms": ms(time.monotonic() - started)}


async def twirp(
    session: aiohttp.ClientSession,
    server: Server,
    method: str,
    body: dict[str, Any] | bytes,
    token: str,
) -> dict[str, Any]:
    """POST /twirp/livekit.RoomService/<method>, JSON (dict) or protobuf (bytes)."""
    is_json = isinstance(body, dict)
    data = json.dumps(body).encode() if isinstance(body, dict) else body
    started = time.monotonic()
    async with session.post(
        f"{server.url}/twirp/livekit.RoomService/{method}",
        data=data,
        headers={
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/json" if is_json else "application/protobuf",
        },
    ) as resp:
        raw = await resp.read()
    try:
        shown: Any = json.loads(raw)
    except ValueError:
        shown = raw.decode(errors="replace")
    return {"status": resp.status, "body": shown, "ms": ms(time.monotonic() - started)}


def names(ps: list[ParticipantInfo]) -> list[str]:
    return sorted(p.identity for p in ps)


async def listed(lk: api.LiveKitAPI, room: str) -> list[ParticipantInfo]:
    return list((await lk.room.list_participants(ListParticipantsRequest(room=room))).participants)


# --- the probes -----------------------------------------------------------------------------------
async def probe_move(server: Server, lk: api.LiveKitAPI, session: aiohttp.ClientSession) -> None:
    section("MoveParticipant / ForwardParticipant")
    out(
        "livekit-api RoomService exposes",
        {m: hasattr(lk.room, m) for m in ("move_participant", "forward_participant")},
    )
    tag = uuid.uuid4().hex[:6]
    room_a, room_b = f"move-a-{tag}", f"move-b-{tag}"
    t0 = time.monotonic()
    alice, carol, bob = Peer("alice", t0), Peer("carol", t0), Peer("bob", t0)
    out("connect alice to A (creates A), s", round(await alice.join(server, room_a), 3))
    out("connect carol to A, s", round(await carol.join(server, room_a), 3))
    out("connect bob to B (creates B), s", round(await bob.join(server, room_b), 3))
    try:
        # Wait until both sides of A know each other, so later events are the move's.
        await wait_for(lambda: alice.knows("carol") and carol.knows("alice"), 5)
        mark = time.monotonic() - t0
        move = MoveParticipantRequest(room=room_a, identity="alice", destination_room=room_b)
        out(
            "move_participant(alice A→B), participant connected",
            await api_error(lk.room.move_participant(move)),
        )
        out(
            "forward_participant(alice A→B)",
            await api_error(
                lk.room.forward_participant(
                    ForwardParticipantRequest(
                        room=room_a, identity="alice", destination_room=room_b
                    )
                )
            ),
        )
        # Whatever the answer, a move would show as "moved" on alice or a join in B: wait for it.
        moved = await wait_for(
            lambda: bool(alice.events("moved")) or bob.knows("alice") or not carol.knows("alice"),
            3,
        )
        out("within 3 s: alice moved / bob sees alice / carol lost alice", moved is not None)
        out(
            "events after the calls (t s since start)",
            {p.identity: [e for e in p.log if e[0] >= mark] for p in (alice, carol, bob)},
        )
        out("ListParticipants A", names(await listed(lk, room_a)))
        out("ListParticipants B", names(await listed(lk, room_b)))
        out(
            "alice still connected to room",
            {"name": alice.room.name, "connected": alice.room.isconnected()},
        )

        full = server.admin_token(room_admin=True, room=room_a, destination_room=room_b)
        body = {"room": room_a, "identity": "alice", "destination_room": room_b}
        out("raw JSON MoveParticipant", await twirp(session, server, "MoveParticipant", body, full))
        out(
            "raw protobuf MoveParticipant",
            await twirp(session, server, "MoveParticipant", move.SerializeToString(), full),
        )
        out(
            "raw JSON ForwardParticipant",
            await twirp(session, server, "ForwardParticipant", body, full),
        )
        out(
            "token without destination_room",
            await twirp(
                session,
                server,
                "MoveParticipant",
                body,
                server.admin_token(room_admin=True, room=room_a),
            ),
        )
        out(
            "token for another source room",
            await twirp(
                session,
                server,
                "MoveParticipant",
                body,
                server.admin_token(room_admin=True, room=room_b, destination_room=room_b),
            ),
        )
        same = {"room": room_a, "identity": "alice", "destination_room": room_a}
        same_token = server.admin_token(room_admin=True, room=room_a, destination_room=room_a)
        out(
            "destination = source",
            await twirp(session, server, "MoveParticipant", same, same_token),
        )
        out(
            "ForwardParticipant destination = source",
            await twirp(session, server, "ForwardParticipant", same, same_token),
        )
        out(
            "destination room that does not exist",
            await api_error(
                lk.room.move_participant(
                    MoveParticipantRequest(
                        room=room_a, identity="alice", destination_room=f"nowhere-{tag}"
                    )
                )
            ),
        )
        out(
            "identity not in the room",
            await api_error(
                lk.room.move_participant(
                    MoveParticipantRequest(room=room_a, identity="nobody", destination_room=room_b)
                )
            ),
        )
        out(
            "source room that does not exist",
            await api_error(
                lk.room.move_participant(
                    MoveParticipantRequest(
                        room=f"nowhere-{tag}", identity="alice", destination_room=room_b
                    )
                )
            ),
        )
    finally:
        for p in (alice, carol, bob):
            await p.leave()


async def probe_dtmf(server: Server, lk: api.LiveKitAPI) -> None:
    section("DTMF between participants")
    tag = uuid.uuid4().hex[:6]
    t0 = time.monotonic()

    # 1. Receiver joins after the sender: it knows the sender from its join response.
    room = f"dtmf-{tag}"
    caller, agent, bystander = Peer("caller", t0), Peer("agent", t0), Peer("bystander", t0)
    await caller.join(server, room)
    await agent.join(server, room)
    await bystander.join(server, room)
    try:
        out(
            "agent knows caller right after its connect (caller joined first)",
            agent.knows("caller"),
        )
        known = await wait_for(lambda: bystander.knows("caller") and agent.knows("caller"), 5)
        out("both receivers know caller after, s", known)
        sent: list[float] = []
        returned: list[float] = []
        for digit, code in DTMF:
            sent.append(time.monotonic() - t0)
            await caller.room.local_participant.publish_dtmf(code=code, digit=digit)
            returned.append(time.monotonic() - t0 - sent[-1])
        got_all = await wait_for(lambda: len(agent.dtmf) >= len(DTMF), 5)
        await wait_for(lambda: len(bystander.dtmf) >= len(DTMF), 2)
        out("16 digits received by agent within, s", got_all)
        out("agent received (code, digit, sender)", [(c, d, s) for _, c, d, s in agent.dtmf])
        out("same order as sent", [d for _, _, d, _ in agent.dtmf] == [d for d, _ in DTMF])
        out("publish_dtmf await, ms", spread(returned))
        out(
            "latency publish → sip_dtmf_received, ms",
            spread([t - s for (t, _, _, _), s in zip(agent.dtmf, sent, strict=False)]),
        )
        out("bystander received too", [d for _, _, d, _ in bystander.dtmf])
        out("sender received its own", [d for _, _, d, _ in caller.dtmf])

        # Anything is forwarded as is: the server does not check code against digit.
        await caller.room.local_participant.publish_dtmf(code=99, digit="x")
        await caller.room.local_participant.publish_dtmf(code=1, digit="#")
        await caller.room.local_participant.publish_dtmf(code=5, digit="55")
        await wait_for(lambda: len(agent.dtmf) >= len(DTMF) + 3, 3)
        out("odd (code, digit) pairs arrive as", [(c, d) for _, c, d, _ in agent.dtmf[len(DTMF) :]])

        # Ordered against user data on the same (reliable) channel?
        agent.dtmf.clear()
        agent.data.clear()
        await caller.room.local_participant.publish_dtmf(code=1, digit="1")
        await caller.room.local_participant.publish_data(b"between")
        await caller.room.local_participant.publish_dtmf(code=2, digit="2")
        await wait_for(lambda: len(agent.dtmf) >= 2 and len(agent.data) >= 1, 3)
        merged = sorted(
            [(t, d) for t, _, d, _ in agent.dtmf] + [(t, p.decode()) for t, p, _ in agent.data]
        )
        out("dtmf 1, data, dtmf 2 arrive as", [x for _, x in merged])
    finally:
        for p in (caller, agent, bystander):
            await p.leave()

    # 2. Receiver joins before the sender, which publishes no track: it learns of the sender only
    #    at the room's next batched participant update. What happens to DTMF sent before that?
    room = f"dtmf-early-{tag}"
    t_room = time.monotonic() - t0
    agent, caller = Peer("agent", t0), Peer("caller", t0)
    await agent.join(server, room)
    await caller.join(server, room)
    try:
        await caller.room.local_participant.publish_dtmf(code=1, digit="1")
        await caller.room.local_participant.publish_data(b"marker")
        await wait_for(lambda: bool(agent.data), 3)
        out(
            "before the agent knows the caller: marker data received, sender",
            [(round(t - t_room, 3), p.decode(), s) for t, p, s in agent.data],
        )
        out("agent knew caller when the marker arrived", agent.knows("caller"))
        out("DTMF received", [d for _, _, d, _ in agent.dtmf])
        announced = await wait_for(lambda: agent.knows("caller"), 6)
        first = agent.events("participant_connected")
        out(
            "caller announced to agent (s after room creation; s after caller connected)",
            {
                "since_room": round(first[0][0] - t_room, 3) if first else None,
                "since_caller_connected": round(first[0][0] - (caller.connected_at or 0), 3)
                if first
                else None,
                "waited": announced,
            },
        )
        await caller.room.local_participant.publish_dtmf(code=2, digit="2")
        await wait_for(lambda: bool(agent.dtmf), 3)
        out("DTMF after the announcement", [d for _, _, d, _ in agent.dtmf])
    finally:
        for p in (agent, caller):
            await p.leave()

    # 3. A sender that publishes an audio track (as a SIP participant does) is announced at once.
    room = f"dtmf-pub-{tag}"
    agent, caller = Peer("agent", t0), Peer("caller", t0)
    await agent.join(server, room)
    await caller.join(server, room)
    try:
        source = rtc.AudioSource(48000, 1)
        track = rtc.LocalAudioTrack.create_audio_track("mic", source)
        started = time.monotonic()
        await caller.room.local_participant.publish_track(
            track, rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE)
        )
        published = time.monotonic() - started
        seen = await wait_for(lambda: agent.knows("caller"), 5)
        out(
            "publish_track await, s; then announced to agent within, s", [round(published, 3), seen]
        )
        await caller.room.local_participant.publish_dtmf(code=11, digit="#")
        out(
            "DTMF from the publisher received within, s",
            await wait_for(lambda: bool(agent.dtmf), 3),
        )
    finally:
        for p in (agent, caller):
            await p.leave()

    # 4. A sender without can_publish_data.
    room = f"dtmf-nodata-{tag}"
    agent, mute, ok = Peer("agent", t0), Peer("mute", t0), Peer("ok", t0)
    await mute.join(server, room, can_publish_data=False)
    await ok.join(server, room)
    await agent.join(server, room)  # after both: knows them from its join response
    try:
        try:
            await mute.room.local_participant.publish_dtmf(code=3, digit="3")
            out("publish_dtmf without can_publish_data", "returned without error")
        except Exception as e:
            out("publish_dtmf without can_publish_data", f"raised {type(e).__name__}: {e}")
        await ok.room.local_participant.publish_dtmf(code=4, digit="4")  # marker
        await wait_for(lambda: any(s == "ok" for *_, s in agent.dtmf), 3)
        out("agent received (digit, sender)", [(d, s) for _, _, d, s in agent.dtmf])
    finally:
        for p in (agent, mute, ok):
            await p.leave()

    # 5. A hidden, agent-kind receiver.
    room = f"dtmf-hidden-{tag}"
    agent, caller = Peer("agent", t0), Peer("caller", t0)
    await agent.join(server, room, kind="agent", hidden=True)
    await caller.join(server, room)
    try:
        out("caller knows the hidden agent after connect", caller.knows("agent"))
        await wait_for(lambda: agent.knows("caller"), 5)
        await caller.room.local_participant.publish_dtmf(code=7, digit="7")
        out(
            "hidden agent received caller's DTMF within, s",
            await wait_for(lambda: bool(agent.dtmf), 3),
        )
        await agent.room.local_participant.publish_dtmf(code=8, digit="8")
        await agent.room.local_participant.publish_data(b"from-hidden")
        await wait_for(lambda: bool(caller.data), 3)
        out(
            "caller got from hidden agent: data (payload, sender), DTMF",
            {
                "data": [(p.decode(), s) for _, p, s in caller.data],
                "dtmf": [d for _, _, d, _ in caller.dtmf],
            },
        )
        ps = await listed(lk, room)
        out(
            "ListParticipants (identity, kind, hidden, is_publisher)",
            [
                (p.identity, ParticipantInfo.Kind.Name(p.kind), p.permission.hidden, p.is_publisher)
                for p in ps
            ],
        )
    finally:
        for p in (agent, caller):
            await p.leave()


async def probe_agent_side(server: Server, lk: api.LiveKitAPI) -> None:
    section("For an agent: create/remove participants, grants, rooms")
    service = room_pb.DESCRIPTOR.services_by_name["RoomService"]
    out("RoomService methods (protocol)", [m.name for m in service.methods])
    tag = uuid.uuid4().hex[:6]
    t0 = time.monotonic()
    room = f"remove-{tag}"
    agent, caller, other = Peer("agent", t0), Peer("caller", t0), Peer("other", t0)
    await caller.join(server, room)
    await other.join(server, room)
    await agent.join(server, room, kind="agent")
    try:
        started = time.monotonic()
        res = await api_error(
            lk.room.remove_participant(RoomParticipantIdentity(room=room, identity="caller"))
        )
        out("RemoveParticipant(caller)", res)
        out("ListParticipants right after", names(await listed(lk, room)))
        gone = await wait_for(lambda: bool(caller.events("disconnected")), 3)
        out(
            "caller's disconnected event after, s; reason",
            [
                round(time.monotonic() - started, 3) if gone is not None else None,
                [rtc.DisconnectReason.Name(e[2][0]) for e in caller.events("disconnected")],
            ],
        )
        seen = await wait_for(lambda: not agent.knows("caller"), 5)
        out("agent saw participant_disconnected(caller) after, s", seen)
        out(
            "RemoveParticipant(unknown identity)",
            await api_error(
                lk.room.remove_participant(RoomParticipantIdentity(room=room, identity="nobody"))
            ),
        )
        out(
            "RemoveParticipant(unknown room)",
            await api_error(
                lk.room.remove_participant(
                    RoomParticipantIdentity(room=f"nowhere-{tag}", identity="nobody")
                )
            ),
        )
        ps = await listed(lk, room)
        out(
            "agent-kind token listed as",
            [(p.identity, ParticipantInfo.Kind.Name(p.kind)) for p in ps],
        )
        # Only the agent left once `other` goes; the same with a standard participant left in a
        # twin room, as the control (both departures at the same moment).
        departure = config_value(server, "departure_timeout")
        twin = f"remove-twin-{tag}"
        stays, goes = Peer("stays", t0), Peer("goes", t0)
        await stays.join(server, twin)
        await goes.join(server, twin)
        left = time.monotonic()
        await other.leave()
        await goes.leave()
        closed = await wait_for(lambda: bool(agent.events("disconnected")), 20)
        out(
            "agent alone: disconnected after, s; reason; server departure_timeout",
            [
                round(time.monotonic() - left, 3) if closed is not None else None,
                [rtc.DisconnectReason.Name(e[2][0]) for e in agent.events("disconnected")],
                departure,
            ],
        )
        # Give the twin room as long again before looking.
        await wait_for(lambda: bool(stays.events("disconnected")), time.monotonic() - left)
        out(
            "standard participant alone, as long after: connected; disconnect events",
            [stays.room.isconnected(), stays.events("disconnected")],
        )
        await stays.leave()
    finally:
        for p in (agent, caller, other):
            await p.leave()

    room = f"grants-{tag}"
    bad = rtc.Room()
    started = time.monotonic()
    try:
        token = (
            api.AccessToken(server.key, server.secret)
            .with_identity("x")
            .with_grants(api.VideoGrants(room_join=False, room=room))
            .to_jwt()
        )
        await bad.connect(server.ws_url, token)
        out("connect with room_join=False", "connected")
        await bad.disconnect()
    except Exception as e:
        out(
            "connect with room_join=False",
            {"error": f"{type(e).__name__}: {e}", "s": round(time.monotonic() - started, 3)},
        )


async def probe(server: Server) -> None:
    section("Setup")
    out(
        "versions",
        {
            "livekit (rtc)": metadata.version("livekit"),
            "livekit-api": metadata.version("livekit-api"),
            "livekit-protocol": metadata.version("livekit-protocol"),
            "server": server.info.get("LIVEKIT_REAL_VERSION", "?"),
            "url": server.url,
            "udp_port": server.info.get("LIVEKIT_REAL_RTC_UDP_PORT"),
        },
    )
    async with aiohttp.ClientSession() as session:
        lk = api.LiveKitAPI(server.url, server.key, server.secret, session=session)
        await probe_move(server, lk, session)
        await probe_dtmf(server, lk)
        await probe_agent_side(server, lk)


def main(argv: list[str]) -> int:
    server = read_server(argv)
    print(
        "# LiveKit rtc probe —",
        datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    )
    asyncio.run(probe(server))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
