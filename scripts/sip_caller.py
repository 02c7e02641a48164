"""A minimal SIP user agent (UDP, asyncio) that dials a number and types a PIN as RFC 4733 DTMF.

For tests on loopback against LiveKit SIP: INVITE with an SDP offer (PCMU + telephone-event),
ACK, then RTP to the address/port of the SDP answer — 20 ms PCMU silence frames and, for each
digit, telephone-event packets (payload type as negotiated) — and BYE. It answers a BYE from the
far end with 200 OK (that is how LiveKit SIP ends a call after a wrong PIN).

    .venv/bin/python scripts/sip_caller.py 127.0.0.1:5060 +15550100 --from +15550199 --digits 1234#

Everything is bounded: each wait has a timeout, retransmissions stop after Timer B (32 s by
default, less if asked).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import re
import secrets
import struct
import time
from dataclasses import dataclass, field
from typing import cast

log = logging.getLogger("sip_caller")

DTMF_EVENTS = {
    **{str(d): d for d in range(10)},
    "*": 10,
    "#": 11,
    **{c: 12 + i for i, c in enumerate("ABCD")},
}
PCMU_SILENCE = b"\xff" * 160  # 20 ms at 8 kHz
FRAME_S = 0.02


@dataclass
class SipMessage:
    start_line: str
    headers: list[tuple[str, str]]
    body: bytes

    @property
    def is_response(self) -> bool:
        return self.start_line.startswith("SIP/2.0 ")

    @property
    def status(self) -> int:
        return int(self.start_line.split(" ", 2)[1]) if self.is_response else 0

    @property
    def method(self) -> str:
        return "" if self.is_response else self.start_line.split(" ", 1)[0]

    def header(self, name: str) -> str | None:
        compact = {
            "via": "v",
            "from": "f",
            "to": "t",
            "call-id": "i",
            "contact": "m",
            "content-type": "c",
            "content-length": "l",
            "cseq": "cseq",
        }
        names = {name.lower(), compact.get(name.lower(), name.lower())}
        for k, v in self.headers:
            if k.lower() in names:
                return v
        return None

    def all_headers(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k.lower() == name.lower()]


def parse_message(data: bytes) -> SipMessage:
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("utf-8", "replace").split("\r\n")
    headers: list[tuple[str, str]] = []
    for line in lines[1:]:
        if line[:1] in (" ", "\t") and headers:  # folded header line
            k, v = headers[-1]
            headers[-1] = (k, v + " " + line.strip())
        elif ":" in line:
            k, v = line.split(":", 1)
            headers.append((k.strip(), v.strip()))
    return SipMessage(lines[0], headers, body)


@dataclass
class SdpAnswer:
    host: str
    port: int
    dtmf_payload_type: int | None
    audio_payload_type: int | None


def parse_sdp(body: bytes) -> SdpAnswer:
    text = body.decode("utf-8", "replace")
    host = ""
    port = 0
    pts: list[int] = []
    dtmf: int | None = None
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("c=IN IP4 "):
            host = line.split()[2]
        elif line.startswith("m=audio "):
            parts = line.split()
            port = int(parts[1])
            pts = [int(p) for p in parts[3:] if p.isdigit()]
        elif m := re.match(r"a=rtpmap:(\d+) telephone-event/8000", line, re.IGNORECASE):
            dtmf = int(m.group(1))
    audio = next((p for p in pts if p != dtmf), None)
    return SdpAnswer(host, port, dtmf, audio)


class _Udp(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.queue: asyncio.Queue[tuple[bytes, tuple[str, int]]] = asyncio.Queue()
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.queue.put_nowait((data, addr))


@dataclass
class CallResult:
    invite_status: int = 0  # final status of the INVITE (0: none before the timeout)
    invite_reason: str = ""
    answer: SdpAnswer | None = None
    remote_bye: bool = False  # the far end hung up (BYE received and answered 200)
    local_bye_status: int = 0  # status of our BYE (0: not sent / no answer)
    rtp_sent: int = 0
    dtmf_packets_sent: int = 0
    rtp_received: int = 0
    transcript: list[str] = field(default_factory=list)  # start lines, in order, for diagnostics

    @property
    def answered(self) -> bool:
        return 200 <= self.invite_status < 300


class SipCall:
    """One outgoing call. Use `async with SipCall(...) as call:`; leaving the block hangs up."""

    def __init__(
        self,
        server: tuple[str, int],
        to_number: str,
        from_number: str,
        *,
        local_ip: str = "127.0.0.1",
        timer_b: float = 32.0,
    ) -> None:
        self.server = server
        self.to_number = to_number
        self.from_number = from_number
        self.local_ip = local_ip
        self.timer_b = timer_b
        self.result = CallResult()
        self.call_id = f"{secrets.token_hex(12)}@{local_ip}"
        self.from_tag = secrets.token_hex(6)
        self.to_header = f"<sip:{to_number}@{server[0]}:{server[1]}>"
        self.remote_target = f"sip:{to_number}@{server[0]}:{server[1]}"
        self.cseq = 0
        self._sip: _Udp | None = None
        self._rtp: _Udp | None = None
        self._sip_port = 0
        self._rtp_port = 0
        self._pump: asyncio.Task[None] | None = None
        self._rtp_reader: asyncio.Task[None] | None = None
        self._responses: asyncio.Queue[SipMessage] = asyncio.Queue()
        self._bye_received = asyncio.Event()
        self._ended = False
        self._media_lock = asyncio.Lock()
        self._seq = secrets.randbelow(0x7FFF)
        self._ts = secrets.randbelow(0x7FFFFFFF)
        self._ssrc = secrets.randbits(32)
        self._media_task: asyncio.Task[None] | None = None
        self._last_voice: float | None = None

    # --- lifecycle -----------------------------------------------------------------------------
    async def __aenter__(self) -> SipCall:
        loop = asyncio.get_running_loop()
        t_sip, self._sip = await loop.create_datagram_endpoint(_Udp, local_addr=(self.local_ip, 0))
        t_rtp, self._rtp = await loop.create_datagram_endpoint(_Udp, local_addr=(self.local_ip, 0))
        self._sip_port = t_sip.get_extra_info("sockname")[1]
        self._rtp_port = t_rtp.get_extra_info("sockname")[1]
        self._pump = asyncio.create_task(self._sip_pump())
        self._rtp_reader = asyncio.create_task(self._rtp_count())
        return self

    async def __aexit__(self, *exc: object) -> None:
        try:
            if self.result.answered and not self._ended:
                await self.hangup()
        finally:
            for task in (self._media_task, self._pump, self._rtp_reader):
                if task is not None:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
            for proto in (self._sip, self._rtp):
                if proto is not None and proto.transport is not None:
                    proto.transport.close()

    # --- SIP -----------------------------------------------------------------------------------
    def _send_sip(self, text: str, body: bytes = b"") -> None:
        assert self._sip is not None and self._sip.transport is not None
        first = text.split("\r\n", 1)[0]
        self.result.transcript.append(f"> {first}")
        log.debug("> %s", first)
        self._sip.transport.sendto(text.encode() + body, self.server)

    def _request(
        self,
        method: str,
        uri: str,
        cseq: int,
        branch: str,
        to: str,
        extra: str = "",
        body: bytes = b"",
    ) -> str:
        return (
            f"{method} {uri} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {self.local_ip}:{self._sip_port};branch={branch};rport\r\n"
            f"Max-Forwards: 70\r\n"
            f"From: <sip:{self.from_number}@{self.local_ip}>;tag={self.from_tag}\r\n"
            f"To: {to}\r\n"
            f"Call-ID: {self.call_id}\r\n"
            f"CSeq: {cseq} {method}\r\n"
            f"Contact: <sip:{self.from_number}@{self.local_ip}:{self._sip_port}>\r\n"
            f"User-Agent: meet-telephony-sip-caller\r\n"
            f"{extra}"
            f"Content-Length: {len(body)}\r\n\r\n"
        )

    async def _sip_pump(self) -> None:
        assert self._sip is not None
        while True:
            data, addr = await self._sip.queue.get()
            if not data.strip():
                continue  # keep-alive
            msg = parse_message(data)
            self.result.transcript.append(f"< {msg.start_line}")
            log.debug("< %s", msg.start_line)
            if msg.is_response:
                self._responses.put_nowait(msg)
            else:
                self._answer_request(msg, addr)

    def _answer_request(self, req: SipMessage, addr: tuple[str, int]) -> None:
        """Answer the far end's in-dialog requests (BYE, and 200 to anything else but ACK)."""
        if req.method == "ACK":
            return
        vias = "".join(f"Via: {v}\r\n" for v in req.all_headers("Via") or [req.header("Via") or ""])
        resp = (
            "SIP/2.0 200 OK\r\n"
            f"{vias}"
            f"From: {req.header('From')}\r\n"
            f"To: {req.header('To')}\r\n"
            f"Call-ID: {req.header('Call-ID')}\r\n"
            f"CSeq: {req.header('CSeq')}\r\n"
            "Content-Length: 0\r\n\r\n"
        )
        assert self._sip is not None and self._sip.transport is not None
        self.result.transcript.append(f"> SIP/2.0 200 OK ({req.method})")
        self._sip.transport.sendto(resp.encode(), addr)
        if req.method == "BYE":
            self.result.remote_bye = True
            self._ended = True
            self._bye_received.set()

    async def _transaction(
        self, make: str, body: bytes, method: str, limit_s: float
    ) -> SipMessage | None:
        """Send a request (retransmitted per Timer A until a response); the final response."""
        deadline = time.monotonic() + min(limit_s, self.timer_b)
        interval = 0.5
        next_send = 0.0
        provisional = False
        while (now := time.monotonic()) < deadline:
            if not provisional and now >= next_send:
                self._send_sip(make, body)
                next_send = now + interval
                interval = min(interval * 2, 4.0)
            try:
                msg = await asyncio.wait_for(
                    self._responses.get(), max(0.01, min(next_send, deadline) - now)
                )
            except TimeoutError:
                continue
            cseq = (msg.header("CSeq") or "").split()
            if len(cseq) != 2 or cseq[1] != method or int(cseq[0]) != self.cseq:
                continue  # a stray (e.g. a retransmitted 200 to the INVITE): handled elsewhere
            if msg.status < 200:
                provisional = True
                continue
            return msg
        return None

    async def dial(self, limit_s: float = 15.0) -> CallResult:
        """INVITE; on 2xx send ACK and start the RTP stream (silence). Returns the result so far."""
        self.cseq += 1
        branch = "z9hG4bK" + secrets.token_hex(8)
        sdp = (
            "v=0\r\n"
            f"o=- {secrets.randbelow(10**9)} 1 IN IP4 {self.local_ip}\r\n"
            "s=meet-telephony caller\r\n"
            f"c=IN IP4 {self.local_ip}\r\n"
            "t=0 0\r\n"
            f"m=audio {self._rtp_port} RTP/AVP 0 101\r\n"
            "a=rtpmap:0 PCMU/8000\r\n"
            "a=rtpmap:101 telephone-event/8000\r\n"
            "a=fmtp:101 0-16\r\n"
            "a=ptime:20\r\n"
            "a=sendrecv\r\n"
        ).encode()
        invite = self._request(
            "INVITE",
            self.remote_target,
            self.cseq,
            branch,
            self.to_header,
            "Content-Type: application/sdp\r\n",
            sdp,
        )
        final = await self._transaction(invite, sdp, "INVITE", limit_s)
        if final is None:
            self.result.invite_reason = "no final response"
            return self.result
        self.result.invite_status = final.status
        self.result.invite_reason = (
            final.start_line.split(" ", 2)[2] if final.start_line.count(" ") >= 2 else ""
        )
        to = final.header("To") or self.to_header
        if final.status >= 300:
            # ACK for a non-2xx final response: same branch, To with the tag of the response.
            self._send_sip(self._request("ACK", self.remote_target, self.cseq, branch, to))
            self._ended = True
            return self.result
        self.to_header = to
        contact = final.header("Contact") or ""
        if m := re.search(r"<([^>]+)>", contact):
            self.remote_target = m.group(1)
        elif contact:
            self.remote_target = contact.split(";")[0].strip()
        self._send_sip(
            self._request(
                "ACK", self.remote_target, self.cseq, "z9hG4bK" + secrets.token_hex(8), to
            )
        )
        self.result.answer = parse_sdp(final.body)
        log.info(
            "answered: %s, media %s:%s, telephone-event pt %s",
            final.start_line,
            self.result.answer.host,
            self.result.answer.port,
            self.result.answer.dtmf_payload_type,
        )
        self._media_task = asyncio.create_task(self._silence())
        return self.result

    async def hangup(self, limit_s: float = 5.0) -> int:
        if self._ended:
            return self.result.local_bye_status
        self._ended = True
        if self._media_task is not None:
            self._media_task.cancel()
        self.cseq += 1
        bye = self._request(
            "BYE", self.remote_target, self.cseq, "z9hG4bK" + secrets.token_hex(8), self.to_header
        )
        final = await self._transaction(bye, b"", "BYE", limit_s)
        self.result.local_bye_status = final.status if final is not None else 0
        return self.result.local_bye_status

    async def wait_remote_bye(self, limit_s: float) -> bool:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._bye_received.wait(), limit_s)
        return self._bye_received.is_set()

    # --- RTP -----------------------------------------------------------------------------------
    def _media_target(self) -> tuple[str, int]:
        ans = self.result.answer
        assert ans is not None and ans.port > 0, "no media address in the SDP answer"
        return (ans.host or self.server[0], ans.port)

    def _send_rtp(self, pt: int, payload: bytes, ts: int, marker: bool = False) -> None:
        assert self._rtp is not None and self._rtp.transport is not None
        self._seq = (self._seq + 1) & 0xFFFF
        header = struct.pack(
            "!BBHII", 0x80, (0x80 if marker else 0) | pt, self._seq, ts & 0xFFFFFFFF, self._ssrc
        )
        self._rtp.transport.sendto(header + payload, self._media_target())
        self.result.rtp_sent += 1

    async def _silence(self) -> None:
        """A PCMU silence frame every 20 ms while no digit is being sent (keeps the media alive)."""
        ans = self.result.answer
        pt = ans.audio_payload_type if ans is not None and ans.audio_payload_type is not None else 0
        next_t = time.monotonic()
        while not self._ended:
            async with self._media_lock:
                self._send_rtp(pt, PCMU_SILENCE, self._ts)
                self._ts += 160
            next_t = max(next_t + FRAME_S, time.monotonic())  # no burst after a DTMF pause
            await asyncio.sleep(max(0.0, next_t - time.monotonic()))

    async def send_dtmf(self, digits: str, *, tone_ms: int = 100, gap_ms: int = 100) -> None:
        """Each digit as RFC 4733 telephone-event packets: one every 20 ms for `tone_ms`, then
        the end packet three times (E bit), all with the event's start timestamp; marker on the
        first."""
        ans = self.result.answer
        if ans is None or ans.dtmf_payload_type is None:
            raise RuntimeError("the far end did not accept telephone-event in its SDP answer")
        pt = ans.dtmf_payload_type
        for ch in digits:
            event = DTMF_EVENTS[ch.upper()]
            async with self._media_lock:
                start_ts = self._ts
                frames = max(1, tone_ms // 20)
                for i in range(frames):
                    duration = 160 * (i + 1)
                    self._send_rtp(
                        pt, struct.pack("!BBH", event, 10, duration), start_ts, marker=(i == 0)
                    )
                    self.result.dtmf_packets_sent += 1
                    await asyncio.sleep(FRAME_S)
                for _ in range(3):  # end of event, sent three times (RFC 4733 2.5.1.4)
                    self._send_rtp(
                        pt, struct.pack("!BBH", event, 0x80 | 10, 160 * frames), start_ts
                    )
                    self.result.dtmf_packets_sent += 1
                self._ts += 160 * frames
            await asyncio.sleep(gap_ms / 1000)

    async def _rtp_count(self) -> None:
        assert self._rtp is not None
        while True:
            data, _addr = await self._rtp.queue.get()
            self.result.rtp_received += 1
            payload = data[12:]
            if len(data) > 12 and data[1] & 0x7F == 0 and payload.strip(b"\xff\x7f\xfe\x7e"):
                self._last_voice = time.monotonic()  # PCMU that is not (near) silence

    async def wait_prompt_end(
        self, limit_s: float, *, quiet_s: float = 0.5, first_s: float = 4.0
    ) -> bool:
        """Wait until the far end's voice prompt (e.g. LiveKit SIP's "enter PIN") is over: some
        non-silent PCMU arrived and then none for `quiet_s`. Gives up (False) when no voice came
        within `first_s`, or at `limit_s`. LiveKit SIP reads the digits after its prompt."""
        start = time.monotonic()
        while (now := time.monotonic()) - start < limit_s:
            if self._last_voice is None:
                if now - start >= first_s:
                    return False
            elif now - self._last_voice >= quiet_s:
                return True
            await asyncio.sleep(0.05)
        return False


async def call_with_pin(
    server: tuple[str, int],
    to_number: str,
    from_number: str,
    digits: str,
    *,
    prompt_limit_s: float = 15.0,
    hold_s: float = 5.0,
    dial_timeout: float = 15.0,
) -> CallResult:
    """Dial, let the prompt play, type `digits`, then stay until the far end hangs up (or
    `hold_s`)."""
    async with SipCall(server, to_number, from_number) as call:
        res = await call.dial(dial_timeout)
        if not res.answered:
            return res
        await call.wait_prompt_end(prompt_limit_s)
        await call.send_dtmf(digits)
        await call.wait_remote_bye(hold_s)
        return call.result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("server", help="host:port of the SIP server (UDP)")
    ap.add_argument("number", help="the number to dial (Request-URI user)")
    ap.add_argument("--from", dest="from_number", default="+15550000000")
    ap.add_argument("--digits", default="", help="DTMF to send after answer, e.g. 1234#")
    ap.add_argument("--hold", type=float, default=5.0, help="seconds to stay after the digits")
    args = ap.parse_args()
    logging.basicConfig(level=logging.DEBUG, format="%(message)s")
    host, port = args.server.rsplit(":", 1)
    res = asyncio.run(
        call_with_pin(
            (host, int(port)), args.number, args.from_number, args.digits, hold_s=args.hold
        )
    )
    print(res)


if __name__ == "__main__":
    main()
