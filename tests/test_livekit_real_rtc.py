"""What a PIN-entry agent could rely on, measured on the real LiveKit server (v1.13.5 + Redis) with
real WebRTC participants (the `livekit` rtc SDK) over loopback: MoveParticipant (not there: the
tests pin its exact failure), DTMF between participants, RemoveParticipant, agent/hidden tokens.

Skipped unless the server was built (`scripts/livekit-real.sh install`) and the rtc SDK is
installed. Every test uses rooms of its own (random names). See scripts/LIVEKIT_FINDINGS.md,
"MoveParticipant and DTMF between participants", and scripts/probe_rtc.py.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import aiohttp
import pytest
from livekit import api
from livekit.protocol.models import ParticipantInfo
from livekit.protocol.room import (
    ForwardParticipantRequest,
    ListParticipantsRequest,
    MoveParticipantRequest,
    RoomParticipantIdentity,
)

from tests.fixtures import livekit_real
from tests.fixtures.polling import eventually

try:
    from livekit import rtc
except ImportError:
    pytest.skip(
        "livekit rtc SDK not installed: pip install 'livekit>=1.2.1,<2'", allow_module_level=True
    )

if TYPE_CHECKING:
    from tests.fixtures.livekit_real import RealLiveKit

livekit_real.skip_module_unless_available()

pytestmark = pytest.mark.livekit_real

NOT_IMPLEMENTED = "twirp error unknown: not implemented"
# What the server answers when no node owns the participant (psrpc waits its 3 s timeout).
NO_RESPONSE = "twirp error unknown: no response from servers"
SAME_ROOM = "destination room cannot be the same as source room"
# RFC 4733 event codes, as LiveKit SIP maps the keypad.
KEYPAD = [(str(d), d) for d in range(10)] + [("*", 10), ("#", 11)]
KEYPAD += [(c, 12 + i) for i, c in enumerate("ABCD")]
# The server batches join/leave updates of participants that publish nothing on this period.
BATCH_PERIOD = 3.0


def new_room(what: str) -> str:
    return f"rtc-{what}-{uuid.uuid4().hex[:10]}"


@dataclass
class Peer:
    """A connected participant and what it received, stamped with time.monotonic()."""

    identity: str
    room: rtc.Room
    dtmf: list[tuple[float, int, str, str | None]] = field(default_factory=list)
    data: list[tuple[float, bytes, str | None]] = field(default_factory=list)
    disconnects: list[tuple[float, int]] = field(default_factory=list)
    arrivals: list[str] = field(default_factory=list)  # DTMF digits and data payloads, in order
    joined: dict[str, float] = field(default_factory=dict)
    connected_at: float = 0.0

    def __post_init__(self) -> None:
        self.room.on("sip_dtmf_received", self._on_dtmf)
        self.room.on("data_received", self._on_data)
        self.room.on(
            "disconnected", lambda reason: self.disconnects.append((time.monotonic(), reason))
        )
        self.room.on(
            "participant_connected",
            lambda p: self.joined.setdefault(p.identity, time.monotonic()),
        )

    def _on_dtmf(self, ev: rtc.SipDTMF) -> None:
        sender = ev.participant.identity if ev.participant else None
        self.dtmf.append((time.monotonic(), ev.code, ev.digit, sender))
        self.arrivals.append(ev.digit)

    def _on_data(self, packet: rtc.DataPacket) -> None:
        sender = packet.participant.identity if packet.participant else None
        self.data.append((time.monotonic(), packet.data, sender))
        self.arrivals.append(packet.data.decode(errors="replace"))

    def knows(self, identity: str) -> bool:
        return identity in self.room.remote_participants

    def digits(self) -> str:
        return "".join(d for _, _, d, _ in self.dtmf)

    async def send(self, digits: str) -> None:
        codes = dict(KEYPAD)
        for digit in digits:
            await self.room.local_participant.publish_dtmf(code=codes[digit], digit=digit)


Join = Callable[..., Awaitable[Peer]]


@pytest.fixture
async def lk(real_livekit: RealLiveKit) -> AsyncIterator[api.LiveKitAPI]:
    async with real_livekit.api() as client:
        yield client


def join_token(
    real_livekit: RealLiveKit,
    identity: str,
    room: str,
    kind: api.AccessToken.ParticipantKind | None = None,
    **grants: Any,
) -> str:
    token = api.AccessToken(real_livekit.api_key, real_livekit.api_secret).with_identity(identity)
    token.with_grants(api.VideoGrants(room_join=True, room=room, **grants))
    if kind is not None:
        token.with_kind(kind)
    return token.to_jwt()


def ws_url(real_livekit: RealLiveKit) -> str:
    return "ws" + real_livekit.url.removeprefix("http")


@pytest.fixture
async def join(real_livekit: RealLiveKit) -> AsyncIterator[Join]:
    """`await join(identity, room, **token)`: a connected Peer, disconnected at teardown."""
    peers: list[Peer] = []

    async def connect(
        identity: str,
        room: str,
        kind: api.AccessToken.ParticipantKind | None = None,
        **grants: Any,
    ) -> Peer:
        peer = Peer(identity, rtc.Room())
        token = join_token(real_livekit, identity, room, kind, **grants)
        await peer.room.connect(ws_url(real_livekit), token)
        peer.connected_at = time.monotonic()
        peers.append(peer)
        return peer

    yield connect
    for peer in peers:
        await peer.room.disconnect()


def admin_token(real_livekit: RealLiveKit, **grants: Any) -> str:
    return (
        api.AccessToken(real_livekit.api_key, real_livekit.api_secret)
        .with_grants(api.VideoGrants(**grants))
        .to_jwt()
    )


async def participants(lk: api.LiveKitAPI, room: str) -> list[ParticipantInfo]:
    return list((await lk.room.list_participants(ListParticipantsRequest(room=room))).participants)


async def identities(lk: api.LiveKitAPI, room: str) -> set[str]:
    return {p.identity for p in await participants(lk, room)}


# --- MoveParticipant / ForwardParticipant -----------------------------------------------------
def test_livekit_api_exposes_move_and_forward_participant() -> None:
    service = api.room_service.RoomService
    assert callable(service.move_participant)
    assert callable(service.forward_participant)


async def test_move_participant_of_a_connected_participant_is_not_implemented(
    lk: api.LiveKitAPI, join: Join
) -> None:
    """The open-source RoomManager answers "not implemented" (a Cloud-only feature); the psrpc
    error reaches the client as Twirp `unknown`."""
    room_a, room_b = new_room("move-a"), new_room("move-b")
    await join("alice", room_a)
    await join("bob", room_b)
    with pytest.raises(api.TwirpError) as caught:
        await lk.room.move_participant(
            MoveParticipantRequest(room=room_a, identity="alice", destination_room=room_b)
        )
    assert (caught.value.code, caught.value.status, caught.value.message) == (
        "unknown",
        500,
        NOT_IMPLEMENTED,
    )


async def test_participant_stays_in_its_room_after_a_refused_move(
    lk: api.LiveKitAPI, join: Join
) -> None:
    room_a, room_b = new_room("stay-a"), new_room("stay-b")
    alice = await join("alice", room_a)
    await join("bob", room_b)
    with pytest.raises(api.TwirpError):
        await lk.room.move_participant(
            MoveParticipantRequest(room=room_a, identity="alice", destination_room=room_b)
        )
    assert await identities(lk, room_a) == {"alice"}
    assert await identities(lk, room_b) == {"bob"}
    assert alice.room.isconnected() and alice.room.name == room_a


async def test_forward_participant_is_not_implemented(lk: api.LiveKitAPI, join: Join) -> None:
    room_a, room_b = new_room("fwd-a"), new_room("fwd-b")
    await join("alice", room_a)
    await join("bob", room_b)
    with pytest.raises(api.TwirpError) as caught:
        await lk.room.forward_participant(
            ForwardParticipantRequest(room=room_a, identity="alice", destination_room=room_b)
        )
    assert (caught.value.code, caught.value.status, caught.value.message) == (
        "unknown",
        500,
        NOT_IMPLEMENTED,
    )


async def test_move_participant_endpoint_answers_json_and_protobuf_alike(
    real_livekit: RealLiveKit, join: Join
) -> None:
    room_a, room_b = new_room("raw-a"), new_room("raw-b")
    await join("alice", room_a)
    request = MoveParticipantRequest(room=room_a, identity="alice", destination_room=room_b)
    token = admin_token(real_livekit, room_admin=True, room=room_a, destination_room=room_b)
    url = f"{real_livekit.url}/twirp/livekit.RoomService/MoveParticipant"
    bodies = {
        "application/json": json.dumps(
            {"room": room_a, "identity": "alice", "destination_room": room_b}
        ).encode(),
        "application/protobuf": request.SerializeToString(),
    }
    answers = []
    async with aiohttp.ClientSession() as session:
        for content_type, body in bodies.items():
            headers = {"Authorization": f"Bearer {token}", "Content-Type": content_type}
            async with session.post(url, data=body, headers=headers) as resp:
                answers.append((resp.status, resp.content_type, await resp.json()))
    expected = (500, "application/json", {"code": "unknown", "msg": NOT_IMPLEMENTED})
    assert answers == [expected, expected]


async def test_move_participant_needs_a_destination_room_grant(
    real_livekit: RealLiveKit, join: Join
) -> None:
    """Checked before anything else: room_admin on the source room is not enough."""
    room_a, room_b = new_room("grant-a"), new_room("grant-b")
    await join("alice", room_a)
    token = admin_token(real_livekit, room_admin=True, room=room_a)
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"{real_livekit.url}/twirp/livekit.RoomService/MoveParticipant",
            json={"room": room_a, "identity": "alice", "destination_room": room_b},
            headers={"Authorization": f"Bearer {token}"},
        ) as resp,
    ):
        assert (resp.status, await resp.json()) == (
            401,
            {"code": "unauthenticated", "msg": "permissions denied"},
        )


async def test_move_participant_to_its_own_room_is_invalid_argument(
    lk: api.LiveKitAPI, join: Join
) -> None:
    room = new_room("same")
    await join("alice", room)
    with pytest.raises(api.TwirpError) as caught:
        await lk.room.move_participant(
            MoveParticipantRequest(room=room, identity="alice", destination_room=room)
        )
    error = caught.value
    # twirp.InvalidArgumentError(argument, "") puts a space after the argument.
    assert (error.code, error.status, error.message) == ("invalid_argument", 400, SAME_ROOM + " ")
    assert error.metadata == {"argument": SAME_ROOM}


async def test_move_participant_of_an_absent_identity_is_unavailable_after_the_rpc_timeout(
    lk: api.LiveKitAPI, join: Join
) -> None:
    """The request goes to the participant's psrpc topic; nobody answers it."""
    room_a, room_b = new_room("absent-a"), new_room("absent-b")
    await join("alice", room_a)
    started = time.monotonic()
    with pytest.raises(api.TwirpError) as caught:
        await lk.room.move_participant(
            MoveParticipantRequest(room=room_a, identity="nobody", destination_room=room_b)
        )
    elapsed = time.monotonic() - started
    assert (caught.value.code, caught.value.status, caught.value.message) == (
        "unavailable",
        503,
        NO_RESPONSE,
    )
    assert 2.5 < elapsed < 10, elapsed


# --- DTMF between participants ----------------------------------------------------------------
async def test_dtmf_keypad_arrives_in_order_with_code_digit_and_sender(join: Join) -> None:
    room = new_room("dtmf")
    caller = await join("caller", room)
    agent = await join("agent", room)  # joined second: knows the caller from its join response
    sent = time.monotonic()
    await caller.send("".join(d for d, _ in KEYPAD))
    await eventually(lambda: len(agent.dtmf) >= len(KEYPAD), within=5, message="16 digits")
    assert [(code, digit, who) for _, code, digit, who in agent.dtmf] == [
        (code, digit, "caller") for digit, code in KEYPAD
    ]
    # Loopback: the last digit lands well within a second of the first send.
    assert agent.dtmf[-1][0] - sent < 1.0


async def test_dtmf_reaches_every_other_participant_but_not_the_sender(join: Join) -> None:
    room = new_room("dtmf-all")
    caller = await join("caller", room)
    agent = await join("agent", room)
    bystander = await join("bystander", room)
    await caller.send("123#")
    await eventually(lambda: agent.digits() == "123#", within=5, message="agent")
    await eventually(lambda: bystander.digits() == "123#", within=5, message="bystander")
    # Marker on the sender's own data channel: its echo would precede it. There is none.
    await bystander.room.local_participant.publish_data(b"marker")
    await eventually(lambda: bool(caller.data), within=5, message="marker at caller")
    assert caller.dtmf == []


async def test_dtmf_code_and_digit_are_forwarded_unchecked(join: Join) -> None:
    room = new_room("dtmf-odd")
    caller = await join("caller", room)
    agent = await join("agent", room)
    for code, digit in [(99, "x"), (1, "#"), (5, "55")]:
        await caller.room.local_participant.publish_dtmf(code=code, digit=digit)
    await eventually(lambda: len(agent.dtmf) >= 3, within=5, message="3 packets")
    assert [(code, digit) for _, code, digit, _ in agent.dtmf] == [(99, "x"), (1, "#"), (5, "55")]


async def test_dtmf_and_data_from_one_sender_keep_their_order(join: Join) -> None:
    room = new_room("dtmf-order")
    caller = await join("caller", room)
    agent = await join("agent", room)
    await caller.send("1")
    await caller.room.local_participant.publish_data(b"between")
    await caller.send("2")
    await eventually(lambda: len(agent.arrivals) >= 3, within=5, message="3 packets")
    assert agent.arrivals == ["1", "between", "2"]


async def test_dtmf_from_a_participant_the_receiver_does_not_know_yet_is_dropped(
    join: Join,
) -> None:
    """The receiver joined first and the sender publishes no track: the receiver hears of the
    sender only at the room's next batched update (~3 s after the room was created). The SDK
    drops DTMF from a sender it does not know; user data from it is delivered (sender None)."""
    room = new_room("dtmf-early")
    room_created = time.monotonic()
    agent = await join("agent", room)
    caller = await join("caller", room)
    await caller.send("1")
    await caller.room.local_participant.publish_data(b"marker")  # same channel, after the digit
    await eventually(lambda: bool(agent.data), within=5, message="marker")
    marker_at, payload, sender = agent.data[0]
    assert marker_at - room_created < BATCH_PERIOD - 0.5, "too slow to beat the first batch"
    assert (payload, sender) == (b"marker", None)
    assert not agent.knows("caller")
    assert agent.dtmf == []


async def test_dtmf_is_received_once_the_sender_was_announced(join: Join) -> None:
    room = new_room("dtmf-later")
    agent = await join("agent", room)
    caller = await join("caller", room)
    await eventually(lambda: agent.knows("caller"), within=BATCH_PERIOD + 3, message="announced")
    await caller.send("#")
    await eventually(lambda: agent.digits() == "#", within=5, message="digit")


async def test_a_participant_publishing_nothing_is_announced_at_the_next_batch(join: Join) -> None:
    room = new_room("batch")
    room_created = time.monotonic()
    agent = await join("agent", room)
    caller = await join("caller", room)
    assert caller.connected_at - room_created < BATCH_PERIOD - 1, "too slow to see the batch"
    await eventually(lambda: "caller" in agent.joined, within=BATCH_PERIOD + 3, message="joined")
    # Not when the caller connected, but at the batch tick, 3 s after the room was created.
    assert agent.joined["caller"] - room_created > BATCH_PERIOD - 0.5


async def test_a_participant_publishing_audio_is_announced_at_once(join: Join) -> None:
    room = new_room("publisher")
    agent = await join("agent", room)
    caller = await join("caller", room)
    track = rtc.LocalAudioTrack.create_audio_track("mic", rtc.AudioSource(48000, 1))
    published = time.monotonic()
    await caller.room.local_participant.publish_track(
        track, rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE)
    )
    await eventually(lambda: "caller" in agent.joined, within=5, message="joined")
    assert agent.joined["caller"] - published < 1.0


async def test_dtmf_without_can_publish_data_is_dropped_silently(join: Join) -> None:
    room = new_room("dtmf-nodata")
    mute = await join("mute", room, can_publish_data=False)
    other = await join("other", room)
    agent = await join("agent", room)
    await mute.send("3")  # returns normally: the server drops the packet
    await other.send("4")  # marker, sent after
    await eventually(lambda: bool(agent.dtmf), within=5, message="marker digit")
    assert [(digit, who) for _, _, digit, who in agent.dtmf] == [("4", "other")]


async def test_hidden_participant_receives_dtmf(join: Join) -> None:
    room = new_room("hidden-rx")
    caller = await join("caller", room)
    agent = await join("agent", room, kind="agent", hidden=True)
    await caller.send("7")
    await eventually(lambda: agent.digits() == "7", within=5, message="digit")


async def test_hidden_participant_is_not_announced_but_is_listed(
    lk: api.LiveKitAPI, join: Join
) -> None:
    room = new_room("hidden")
    await join("agent", room, kind="agent", hidden=True)
    caller = await join("caller", room)  # after: would get the agent in its join response
    assert not caller.knows("agent")
    listed = {p.identity: p for p in await participants(lk, room)}
    assert set(listed) == {"agent", "caller"}
    assert listed["agent"].permission.hidden


async def test_dtmf_from_a_hidden_participant_is_not_surfaced(join: Join) -> None:
    room = new_room("hidden-tx")
    caller = await join("caller", room)
    agent = await join("agent", room, kind="agent", hidden=True)
    await agent.send("8")
    await agent.room.local_participant.publish_data(b"marker")
    await eventually(lambda: bool(caller.data), within=5, message="marker")
    assert caller.data[0][1:] == (b"marker", None)  # the server blanks a hidden sender
    assert caller.dtmf == []


# --- an agent's other tools ---------------------------------------------------------------------
async def test_agent_kind_token_is_listed_as_agent(lk: api.LiveKitAPI, join: Join) -> None:
    room = new_room("kind")
    await join("caller", room)
    await join("agent", room, kind="agent")
    kinds = {p.identity: p.kind for p in await participants(lk, room)}
    assert kinds == {"caller": ParticipantInfo.Kind.STANDARD, "agent": ParticipantInfo.Kind.AGENT}


async def test_remove_participant_drops_it_from_the_listing_at_once(
    lk: api.LiveKitAPI, join: Join
) -> None:
    room = new_room("remove")
    await join("caller", room)
    await join("agent", room, kind="agent")
    await lk.room.remove_participant(RoomParticipantIdentity(room=room, identity="caller"))
    assert await identities(lk, room) == {"agent"}


async def test_removed_participant_is_disconnected_with_reason_participant_removed(
    lk: api.LiveKitAPI, join: Join
) -> None:
    room = new_room("removed")
    caller = await join("caller", room)
    await join("agent", room, kind="agent")
    await lk.room.remove_participant(RoomParticipantIdentity(room=room, identity="caller"))
    await eventually(lambda: bool(caller.disconnects), within=5, message="disconnected")
    assert [reason for _, reason in caller.disconnects] == [
        rtc.DisconnectReason.PARTICIPANT_REMOVED
    ]


async def test_remove_participant_of_an_absent_identity_is_not_found(
    lk: api.LiveKitAPI, join: Join
) -> None:
    room = new_room("remove-absent")
    await join("agent", room, kind="agent")
    with pytest.raises(api.TwirpError) as caught:
        await lk.room.remove_participant(RoomParticipantIdentity(room=room, identity="nobody"))
    assert (caught.value.code, caught.value.status, caught.value.message) == (
        "not_found",
        404,
        "twirp error unknown: participant does not exist",
    )


async def test_room_left_to_an_agent_closes_after_the_departure_timeout(
    lk: api.LiveKitAPI, join: Join
) -> None:
    """Agents are "dependent" participants: they do not keep a room open. A standard participant
    left alone in a twin room at the same moment stays connected (the control)."""
    agent_room, twin_room = new_room("alone-agent"), new_room("alone-std")
    agent = await join("agent", agent_room, kind="agent")
    caller = await join("caller", agent_room)
    stays = await join("stays", twin_room)
    goes = await join("goes", twin_room)
    # The twin's departure first: were it to close, it would by the same idle-room pass.
    await goes.room.disconnect()
    left = time.monotonic()
    await caller.room.disconnect()
    timeout = livekit_real.DEPARTURE_TIMEOUT
    await eventually(lambda: bool(agent.disconnects), within=timeout + 8, message="room closed")
    closed_at, reason = agent.disconnects[0]
    assert reason == rtc.DisconnectReason.ROOM_CLOSED
    # The server compares whole Unix seconds: up to 1 s early.
    assert closed_at - left > timeout - 1.2
    assert await identities(lk, twin_room) == {"stays"}
    assert stays.room.isconnected() and stays.disconnects == []


async def test_join_without_room_join_grant_is_refused(real_livekit: RealLiveKit) -> None:
    token = (
        api.AccessToken(real_livekit.api_key, real_livekit.api_secret)
        .with_identity("intruder")
        .with_grants(api.VideoGrants(room_join=False, room=new_room("refused")))
        .to_jwt()
    )
    room = rtc.Room()
    with pytest.raises(rtc.ConnectError, match="401 Unauthorized - permissions denied"):
        await asyncio.wait_for(room.connect(ws_url(real_livekit), token), timeout=15)
