"""A real phone call on loopback: scripts/sip_caller.py -> LiveKit SIP -> a LiveKit room.

`test_phone_call_with_pin` needs the real livekit-server (`scripts/livekit-real.sh install`) and
LiveKit SIP (`scripts/livekit-sip.sh install`); without them it skips with one line (CI's
`LIVEKIT_REAL_REQUIRED=1` does not make a missing livekit-sip fail: `LIVEKIT_SIP_REQUIRED=1`
does). It creates an inbound trunk with a number and a direct dispatch rule with a PIN, then:
  - a caller types the right PIN + `#` and is found in the room (`sip_<caller>`, with
    `sip.trunkID` and `sip.ruleID`);
  - a caller types a wrong PIN + `#` and is refused: LiveKit SIP hangs up (BYE), no participant.

`test_caller_against_loopback_uas` checks the caller itself (SIP dialog, RTP to the port of the
SDP answer, RFC 4733 events with the negotiated payload type) against a tiny UAS in this module;
it needs nothing else and always runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import struct
import time
from typing import TYPE_CHECKING, cast

import pytest
from livekit import api
from livekit.protocol.models import ParticipantInfo
from livekit.protocol.room import DeleteRoomRequest, ListParticipantsRequest
from livekit.protocol.sip import (
    CreateSIPDispatchRuleRequest,
    CreateSIPInboundTrunkRequest,
    DeleteSIPDispatchRuleRequest,
    DeleteSIPTrunkRequest,
    SIPDispatchRule,
    SIPDispatchRuleDirect,
    SIPDispatchRuleInfo,
    SIPInboundTrunkInfo,
)

from scripts.sip_caller import SipCall, parse_message, parse_sdp

# The fixture modules are imported here, before `pytest_plugins` below registers them.
pytest.register_assert_rewrite("tests.fixtures.livekit_real", "tests.fixtures.livekit_sip")
from tests.fixtures import livekit_real, livekit_sip  # noqa: E402

if TYPE_CHECKING:
    from tests.fixtures.livekit_real import RealLiveKit
    from tests.fixtures.livekit_sip import LiveKitSip

pytest_plugins = ["tests.fixtures.livekit_real", "tests.fixtures.livekit_sip"]

# One reason for the real call (checked once, at import): the server, then LiveKit SIP. Each is a
# failure instead when its own flag says so (LIVEKIT_REAL_REQUIRED=1, LIVEKIT_SIP_REQUIRED=1).
_UNAVAILABLE = (
    None if livekit_real.required() else livekit_real.unavailable_reason(wait=False)
) or (None if livekit_sip.required() else livekit_sip.unavailable_reason())


def _digits(n: int) -> str:
    return "".join(secrets.choice("0123456789") for _ in range(n))


async def _participants(lk: api.LiveKitAPI, room: str) -> list[ParticipantInfo]:
    try:
        resp = await lk.room.list_participants(ListParticipantsRequest(room=room))
    except api.ServerError as e:
        if e.code == "not_found":
            return []
        raise
    return list(resp.participants)


def _sip_participant(parts: list[ParticipantInfo], caller: str) -> ParticipantInfo | None:
    wanted = {f"sip_{caller}", f"sip_{caller.lstrip('+')}"}
    return next((p for p in parts if p.identity in wanted), None)


async def _wait_participant(
    lk: api.LiveKitAPI, room: str, caller: str, limit_s: float
) -> tuple[ParticipantInfo | None, list[ParticipantInfo]]:
    deadline = time.monotonic() + limit_s
    parts: list[ParticipantInfo] = []
    while time.monotonic() < deadline:
        parts = await _participants(lk, room)
        found = _sip_participant(parts, caller)
        if found is not None:
            return found, parts
        await asyncio.sleep(0.25)
    return None, parts


@pytest.mark.livekit_real
@pytest.mark.slow
@pytest.mark.skipif(_UNAVAILABLE is not None, reason=_UNAVAILABLE or "")
async def test_phone_call_with_pin(real_livekit: RealLiveKit, livekit_sip: LiveKitSip) -> None:
    number = "+1555" + _digits(7)
    room = f"sip-call-{secrets.token_hex(4)}"
    pin = _digits(6)
    wrong_pin = str((int(pin) + 1) % 10**6).zfill(6)
    good_caller = "+1666" + _digits(7)
    bad_caller = "+1777" + _digits(7)

    def why(call: SipCall) -> str:
        return f"\nresult: {call.result}\n--- livekit-sip log (tail) ---\n{livekit_sip.log_tail()}"

    async with real_livekit.api() as lk:
        trunk = await lk.sip.create_inbound_trunk(
            CreateSIPInboundTrunkRequest(
                trunk=SIPInboundTrunkInfo(name=f"test {room}", numbers=[number])
            )
        )
        rule = await lk.sip.create_dispatch_rule(
            CreateSIPDispatchRuleRequest(
                dispatch_rule=SIPDispatchRuleInfo(
                    name=f"test {room}",
                    trunk_ids=[trunk.sip_trunk_id],
                    rule=SIPDispatchRule(
                        dispatch_rule_direct=SIPDispatchRuleDirect(room_name=room, pin=pin)
                    ),
                )
            )
        )
        try:
            # Right PIN: the caller becomes a participant of the room.
            async with SipCall(livekit_sip.address, number, good_caller) as call:
                res = await call.dial(15)
                assert res.answered, f"INVITE not answered{why(call)}"
                assert res.answer is not None and res.answer.port > 0, why(call)
                assert res.answer.dtmf_payload_type is not None, why(call)
                # LiveKit SIP plays "enter PIN" first and reads the digits after it.
                await call.wait_prompt_end(20)
                await call.send_dtmf(pin + "#")
                found, parts = await _wait_participant(lk, room, good_caller, 20)
                assert found is not None, (
                    f"no participant sip_{good_caller} in {room}: "
                    f"{[p.identity for p in parts]}{why(call)}"
                )
                assert found.attributes.get("sip.trunkID") == trunk.sip_trunk_id, found
                assert found.attributes.get("sip.ruleID") == rule.sip_dispatch_rule_id, found
                assert not res.remote_bye, why(call)
                assert await call.hangup() == 200, why(call)

            # Wrong PIN: one attempt, then LiveKit SIP hangs up; nobody joins.
            async with SipCall(livekit_sip.address, number, bad_caller) as call:
                res = await call.dial(15)
                if res.answered:
                    await call.wait_prompt_end(20)
                    await call.send_dtmf(wrong_pin + "#")
                    assert await call.wait_remote_bye(20), f"no BYE after a wrong PIN{why(call)}"
                else:  # refused before answering is a refusal too
                    assert res.invite_status >= 400, why(call)
                parts = await _participants(lk, room)
                assert _sip_participant(parts, bad_caller) is None, parts
        finally:
            with contextlib.suppress(api.ServerError):
                await lk.sip.delete_dispatch_rule(
                    DeleteSIPDispatchRuleRequest(sip_dispatch_rule_id=rule.sip_dispatch_rule_id)
                )
            with contextlib.suppress(api.ServerError):
                await lk.sip.delete_trunk(DeleteSIPTrunkRequest(sip_trunk_id=trunk.sip_trunk_id))
            with contextlib.suppress(api.ServerError):
                await lk.room.delete_room(DeleteRoomRequest(room=room))


# --- the caller against a tiny loopback UAS ------------------------------------------------------
PROMPT_PACKETS = 25  # 0.5 s of "prompt" audio the UAS plays before the caller may type


class _Uas(asyncio.DatagramProtocol):
    """Answers one INVITE with 200 + SDP (telephone-event as payload type 96), collects the
    RFC 4733 digits from RTP and, after `#`, hangs up with BYE like LiveKit SIP does."""

    def __init__(self, rtp_port: int, done: asyncio.Event) -> None:
        self.rtp_port = rtp_port
        self.done = done
        self.transport: asyncio.DatagramTransport | None = None
        self.requests: list[str] = []
        self.responses: list[str] = []
        self.invite_sdp = b""
        self.dialog: dict[str, str] = {}
        self.peer: tuple[str, int] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        msg = parse_message(data)
        assert self.transport is not None
        if msg.is_response:
            self.responses.append(msg.start_line)
            if (msg.header("CSeq") or "").endswith("BYE"):
                self.done.set()
            return
        self.requests.append(msg.method)
        if msg.method != "INVITE":
            return
        self.peer = addr
        self.invite_sdp = msg.body
        sdp = (
            "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=uas\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
            f"m=audio {self.rtp_port} RTP/AVP 0 96\r\n"
            "a=rtpmap:0 PCMU/8000\r\na=rtpmap:96 telephone-event/8000\r\na=fmtp:96 0-16\r\n"
        ).encode()
        to = f"{msg.header('To')};tag=uas1"
        self.dialog = {
            "from": msg.header("From") or "",
            "to": to,
            "call-id": msg.header("Call-ID") or "",
        }
        common = (
            f"Via: {msg.header('Via')}\r\nFrom: {msg.header('From')}\r\nTo: {to}\r\n"
            f"Call-ID: {msg.header('Call-ID')}\r\nCSeq: {msg.header('CSeq')}\r\n"
        )
        port = self.transport.get_extra_info("sockname")[1]
        self._play_prompt(parse_sdp(msg.body).port, PROMPT_PACKETS)
        self.transport.sendto(
            f"SIP/2.0 100 Trying\r\n{common}Content-Length: 0\r\n\r\n".encode(), addr
        )
        self.transport.sendto(
            (
                f"SIP/2.0 200 OK\r\n{common}Contact: <sip:uas@127.0.0.1:{port}>\r\n"
                f"Content-Type: application/sdp\r\nContent-Length: {len(sdp)}\r\n\r\n"
            ).encode()
            + sdp,
            addr,
        )

    def _play_prompt(self, caller_rtp_port: int, left: int) -> None:
        """A 'voice prompt' to the caller's RTP port (from its SDP offer): non-silent PCMU."""
        if left <= 0 or self.transport is None or self.transport.is_closing():
            return
        pkt = struct.pack("!BBHII", 0x80, 0, left, 160 * left, 1234) + b"\x00" * 160
        self.transport.sendto(pkt, ("127.0.0.1", caller_rtp_port))
        asyncio.get_running_loop().call_later(0.02, self._play_prompt, caller_rtp_port, left - 1)

    def bye(self) -> None:
        assert self.transport is not None and self.peer is not None
        port = self.transport.get_extra_info("sockname")[1]
        self.transport.sendto(
            (
                f"BYE sip:caller@127.0.0.1:{self.peer[1]} SIP/2.0\r\n"
                f"Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bKuasbye\r\n"
                f"From: {self.dialog['to']}\r\nTo: {self.dialog['from']}\r\n"
                f"Call-ID: {self.dialog['call-id']}\r\nCSeq: 1 BYE\r\nContent-Length: 0\r\n\r\n"
            ).encode(),
            self.peer,
        )


class _Rtp(asyncio.DatagramProtocol):
    def __init__(self, on_hash: asyncio.Event) -> None:
        self.on_hash = on_hash
        self.audio = 0
        self.events: list[tuple[int, int, bool, bool, int]] = []  # (ts, event, end, marker, pt)
        self.digits = ""
        self._ended: set[int] = set()

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        b0, b1, _seq, ts, _ssrc = struct.unpack("!BBHII", data[:12])
        assert b0 >> 6 == 2
        pt, marker = b1 & 0x7F, bool(b1 & 0x80)
        if pt != 96:
            self.audio += 1
            return
        event, flags, _duration = struct.unpack("!BBH", data[12:16])
        end = bool(flags & 0x80)
        self.events.append((ts, event, end, marker, pt))
        if end and ts not in self._ended:  # the end packet is sent three times
            self._ended.add(ts)
            self.digits += "0123456789*#"[event]
            if event == 11:
                self.on_hash.set()


async def test_caller_against_loopback_uas() -> None:
    loop = asyncio.get_running_loop()
    hash_seen, bye_done = asyncio.Event(), asyncio.Event()
    rtp_t, rtp = await loop.create_datagram_endpoint(
        lambda: _Rtp(hash_seen), local_addr=("127.0.0.1", 0)
    )
    rtp_port = rtp_t.get_extra_info("sockname")[1]
    sip_t, uas = await loop.create_datagram_endpoint(
        lambda: _Uas(rtp_port, bye_done), local_addr=("127.0.0.1", 0)
    )
    try:
        sip_port = sip_t.get_extra_info("sockname")[1]
        async with SipCall(("127.0.0.1", sip_port), "+15550100", "+15550199") as call:
            res = await call.dial(5)
            assert res.answered and res.answer is not None
            assert (res.answer.port, res.answer.dtmf_payload_type) == (rtp_port, 96)
            t0 = time.monotonic()
            assert await call.wait_prompt_end(5, quiet_s=0.2)
            assert time.monotonic() - t0 >= 0.4  # it waited for the prompt to end
            assert res.rtp_received >= PROMPT_PACKETS - 2
            await call.send_dtmf("1234#")
            await asyncio.wait_for(hash_seen.wait(), 5)
            uas.bye()
            assert await call.wait_remote_bye(5)
            await asyncio.wait_for(bye_done.wait(), 5)
        assert rtp.digits == "1234#"
        assert uas.requests == ["INVITE", "ACK"]
        assert uas.responses == ["SIP/2.0 200 OK"]  # the 200 to our BYE; the caller sent no BYE
        assert b"telephone-event/8000" in uas.invite_sdp
        assert rtp.audio > 0  # PCMU silence around the digits
        for ts in {e[0] for e in rtp.events}:  # one event per timestamp; marker on its first packet
            packets = [e for e in rtp.events if e[0] == ts]
            assert packets[0][3] and not any(p[3] for p in packets[1:])
            assert len({p[1] for p in packets}) == 1
        assert res.remote_bye and not res.local_bye_status
    finally:
        sip_t.close()
        rtp_t.close()
