"""`python -m livekit_emulator` runs standalone and answers the real client."""

from __future__ import annotations

import asyncio
import re
import sys
from pathlib import Path

from livekit import api
from livekit.protocol.sip import ListSIPInboundTrunkRequest

ROOT = Path(__file__).resolve().parent.parent
SECRET = "standalone-secret-0123456789abcdef0123"


async def test_module_starts_and_serves_a_pre_created_trunk() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "livekit_emulator",
        "--port",
        "0",
        "--api-key",
        "standalone",
        "--api-secret",
        SECRET,
        "--trunk",
        "+33123456789",
        "--empty-timeout",
        "1",
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        assert proc.stdout is not None
        async with asyncio.timeout(10):
            line = (await proc.stdout.readline()).decode()
        match = re.search(r"ready on (http://\S+)", line)
        assert match, line
        async with api.LiveKitAPI(match.group(1), "standalone", SECRET) as lk:
            listed = await lk.sip.list_inbound_trunk(ListSIPInboundTrunkRequest())
        assert [list(t.numbers) for t in listed.items] == [["+33123456789"]]
    finally:
        proc.terminate()
        async with asyncio.timeout(10):
            await proc.wait()
    assert proc.returncode == 0
