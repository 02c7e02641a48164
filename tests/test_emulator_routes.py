"""The dev-only `/_emulator/` HTTP routes, extra key pairs, and the root health answer."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest
from livekit import api

from livekit_emulator import LiveKitEmulator
from tests.fixtures.livekit import EmulatorFactory


async def call(emu: LiveKitEmulator, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, emu.url + path, json=body) as resp,
    ):
        text = await resp.text()
        return resp.status, (
            await resp.json() if text and resp.content_type.endswith("json") else text
        )


async def test_root_answers_ok(emulator: LiveKitEmulator) -> None:
    assert await call(emulator, "GET", "/") == (200, "OK")


async def test_state_route_lists_rules_rooms_and_participants(emulator: LiveKitEmulator) -> None:
    trunk = await emulator.create_inbound_trunk(numbers=["+33123456789"])
    await emulator.join_participant("r", "alice")
    status, state = await call(emulator, "GET", "/_emulator/state")
    assert status == 200
    assert [t["sip_trunk_id"] for t in state["inbound_trunks"]] == [trunk]
    assert state["dispatch_rules"] == []
    assert [(r["name"], [p["identity"] for p in r["participants"]]) for r in state["rooms"]] == [
        ("r", ["alice"])
    ]


async def test_participant_routes_join_and_leave(emulator: LiveKitEmulator) -> None:
    status, _ = await call(
        emulator, "POST", "/_emulator/rooms/r/participants", {"identity": "web-1"}
    )
    assert status == 201
    assert [p.identity for p in emulator.participants("r")] == ["web-1"]
    status, _ = await call(emulator, "DELETE", "/_emulator/rooms/r/participants/web-1")
    assert status == 204
    assert emulator.participants("r") == []


async def test_leave_route_for_unknown_participant_is_404(emulator: LiveKitEmulator) -> None:
    status, _ = await call(emulator, "DELETE", "/_emulator/rooms/r/participants/ghost")
    assert status == 404


async def test_trunk_and_room_routes_create_them(emulator: LiveKitEmulator) -> None:
    status, trunk = await call(emulator, "POST", "/_emulator/trunks", {"numbers": ["+331"]})
    assert status == 201 and trunk["sip_trunk_id"].startswith("ST_")
    status, room = await call(emulator, "POST", "/_emulator/rooms", {"name": "made"})
    assert status == 201 and room["sid"].startswith("RM_")
    assert [r.name for r in emulator.rooms()] == ["made"]


async def test_rooms_route_lists_the_open_rooms(emulator: LiveKitEmulator) -> None:
    await emulator.join_participant("a", "alice")
    await emulator.create_room("b")
    status, body = await call(emulator, "GET", "/_emulator/rooms")
    assert status == 200
    assert body == {
        "rooms": [
            {
                "name": r.name,
                "sid": r.sid,
                "num_participants": r.num_participants,
                "creation_time_ms": r.creation_time_ms,
            }
            for r in emulator.rooms()
        ]
    }
    assert [(r["name"], r["num_participants"]) for r in body["rooms"]] == [("a", 1), ("b", 0)]


async def test_unknown_fault_route_is_404(emulator: LiveKitEmulator) -> None:
    status, _ = await call(emulator, "POST", "/_emulator/faults/explode", {})
    assert status == 404


async def test_fault_route_rejects_an_unknown_code(emulator: LiveKitEmulator) -> None:
    status, _ = await call(
        emulator, "POST", "/_emulator/faults/fail_next", {"method": "ListRooms", "code": "nope"}
    )
    assert status == 400


async def test_extra_key_pair_is_accepted(emulator_factory: EmulatorFactory) -> None:
    emu = await emulator_factory(extra_keys={"second-key": "second-secret-0123456789abcdef0123"})
    async with api.LiveKitAPI(emu.url, "second-key", "second-secret-0123456789abcdef0123") as lk:
        listed = await lk.room.list_rooms(api.ListRoomsRequest())
    assert list(listed.rooms) == []


async def test_secret_of_another_key_is_refused(emulator_factory: EmulatorFactory) -> None:
    emu = await emulator_factory(extra_keys={"second-key": "second-secret-0123456789abcdef0123"})
    async with api.LiveKitAPI(emu.url, "second-key", emu.api_secret) as lk:
        with pytest.raises(api.TwirpError) as err:
            await lk.room.list_rooms(api.ListRoomsRequest())
    assert err.value.status == 401


async def test_calls_are_logged_without_the_token(
    emulator: LiveKitEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO", logger="livekit_emulator")
    async with api.LiveKitAPI(emulator.url, emulator.api_key, emulator.api_secret) as lk:
        await lk.room.list_rooms(api.ListRoomsRequest())
    (line,) = [r.getMessage() for r in caplog.records if "ListRooms" in r.getMessage()]
    assert line.startswith("livekit.RoomService/ListRooms 200 ")
    assert emulator.api_secret not in caplog.text
    assert "eyJ" not in caplog.text  # no JWT
