"""Rooms through RoomService: sids, the ListRooms names filter, only open rooms listed."""

from __future__ import annotations

import pytest
from livekit import api

from tests.conformance.conftest import Resources, unique_name


async def test_create_room_returns_a_room_sid(resources: Resources) -> None:
    room = await resources.room()
    assert room.sid.startswith("RM_")


async def test_create_room_on_an_open_room_returns_the_same_room(
    lk: api.LiveKitAPI, resources: Resources
) -> None:
    room = await resources.room()
    again = await lk.room.create_room(api.CreateRoomRequest(name=room.name))
    assert again.sid == room.sid


async def test_list_rooms_names_filter_returns_only_named_rooms(
    lk: api.LiveKitAPI, resources: Resources
) -> None:
    wanted, _other = await resources.room(), await resources.room()
    listed = await lk.room.list_rooms(api.ListRoomsRequest(names=[wanted.name]))
    assert [r.name for r in listed.rooms] == [wanted.name]


async def test_list_rooms_for_an_unknown_name_is_empty(lk: api.LiveKitAPI) -> None:
    listed = await lk.room.list_rooms(api.ListRoomsRequest(names=[unique_name("never")]))
    assert list(listed.rooms) == []


async def test_deleted_room_is_no_longer_listed(lk: api.LiveKitAPI, resources: Resources) -> None:
    room = await resources.room()
    await lk.room.delete_room(api.DeleteRoomRequest(room=room.name))
    listed = await lk.room.list_rooms(api.ListRoomsRequest(names=[room.name]))
    assert list(listed.rooms) == []


async def test_room_sid_changes_across_incarnations(
    lk: api.LiveKitAPI, resources: Resources
) -> None:
    first = await resources.room()
    await lk.room.delete_room(api.DeleteRoomRequest(room=first.name))
    second = await resources.room(first.name)
    assert second.name == first.name
    assert second.sid.startswith("RM_") and second.sid != first.sid


async def test_list_participants_of_a_room_nobody_joined_is_empty(
    lk: api.LiveKitAPI, resources: Resources
) -> None:
    room = await resources.room()
    listed = await lk.room.list_participants(api.ListParticipantsRequest(room=room.name))
    assert list(listed.participants) == []


async def test_list_participants_of_an_unknown_room_is_empty(lk: api.LiveKitAPI) -> None:
    listed = await lk.room.list_participants(api.ListParticipantsRequest(room=unique_name("never")))
    assert list(listed.participants) == []


async def test_delete_unknown_room_is_not_found_with_the_unknown_prefix(
    lk: api.LiveKitAPI,
) -> None:
    with pytest.raises(api.TwirpError) as err:
        await lk.room.delete_room(api.DeleteRoomRequest(room=unique_name("never")))
    assert (err.value.status, err.value.code, err.value.message) == (
        404,
        "not_found",
        "twirp error unknown: requested room does not exist",
    )


async def test_create_room_with_an_empty_name_is_accepted(lk: api.LiveKitAPI) -> None:
    room = await lk.room.create_room(api.CreateRoomRequest(name="", empty_timeout=1))
    try:
        assert (room.name, room.sid.startswith("RM_")) == ("", True)
    finally:
        await lk.room.delete_room(api.DeleteRoomRequest(room=""))
