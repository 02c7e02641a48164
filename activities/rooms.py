"""Room liveness: is a LiveKit room open right now, and which incarnation (sid) is it."""

from __future__ import annotations

from livekit.api import ListRoomsRequest
from livekit.api.room_service import RoomService

from activities.livekit_errors import livekit_errors
from telephony.models import RoomLiveness, incarnation_time


async def check_room_liveness(rooms: RoomService, room_id: str) -> RoomLiveness:
    with livekit_errors("ListRooms"):
        response = await rooms.list_rooms(ListRoomsRequest(names=[room_id]))
    # ListRooms(names=...) returns only open rooms; match the name in case of a lax filter.
    for room in response.rooms:
        if room.name == room_id:
            return RoomLiveness(
                exists=True,
                sid=room.sid or None,
                created_at=incarnation_time(room.creation_time_ms, room.creation_time),
            )
    return RoomLiveness(exists=False)
