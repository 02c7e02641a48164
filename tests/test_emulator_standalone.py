"""`python -m livekit_emulator` runs standalone and answers the real client."""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from livekit import api
from livekit.protocol.sip import ListSIPInboundTrunkRequest

ROOT = Path(__file__).resolve().parent.parent
SECRET = "standalone-secret-0123456789abcdef0123"
NUMBER = "+33123456789"
CREDENTIAL_VARS = {"LIVEKIT_API_KEY", "LIVEKIT_API_SECRET", "LIVEKIT_EMULATOR_EXTRA_KEYS"}


@asynccontextmanager
async def running(*args: str, env: dict[str, str]) -> AsyncIterator[str]:
    """The emulator as a child process; yields its first stdout line (the ready line)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "livekit_emulator",
        "--port",
        "0",
        *args,
        cwd=ROOT,
        env={**{k: v for k, v in os.environ.items() if k not in CREDENTIAL_VARS}, **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        assert proc.stdout is not None
        async with asyncio.timeout(10):
            yield (await proc.stdout.readline()).decode()
    finally:
        proc.terminate()
        async with asyncio.timeout(10):
            await proc.wait()
    assert proc.returncode == 0


async def test_module_takes_its_key_pair_from_the_environment_and_serves_a_trunk() -> None:
    env = {"LIVEKIT_API_KEY": "standalone", "LIVEKIT_API_SECRET": SECRET}
    async with running("--trunk", NUMBER, env=env) as line:
        match = re.search(r"ready on (http://\S+)", line)
        assert match, line
        async with api.LiveKitAPI(match.group(1), "standalone", SECRET) as lk:
            listed = await lk.sip.list_inbound_trunk(ListSIPInboundTrunkRequest())
    assert [list(t.numbers) for t in listed.items] == [[NUMBER]]


async def test_json_ready_line_gives_the_url_and_the_trunks() -> None:
    async with running("--json", "--trunk", NUMBER, env={}) as line:
        ready = json.loads(line)
    assert ready["url"].startswith("http://127.0.0.1:")
    (trunk,) = ready["trunks"]
    assert trunk["number"] == NUMBER and trunk["id"].startswith("ST_")
