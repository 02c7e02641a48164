"""The Twirp methods served, each with its request type, grant check and handler."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from google.protobuf.message import Message
from livekit.protocol import room as proto_room
from livekit.protocol import sip as proto_sip

from . import auth
from .rooms import RoomManager
from .sip import SipStore

SIP = "livekit.SIP"
ROOM_SERVICE = "livekit.RoomService"


@dataclass(frozen=True)
class Method:
    request_type: type[Message]
    authorize: Callable[[auth.Grants | None, Any], None]
    handle: Callable[[Any], Message]


def _sip_admin(grants: auth.Grants | None, _req: Any) -> None:
    auth.require_sip_admin(grants)


def _room_create(grants: auth.Grants | None, _req: Any) -> None:
    auth.require_room_create(grants)


def _room_list(grants: auth.Grants | None, _req: Any) -> None:
    auth.require_room_list(grants)


def _room_admin(grants: auth.Grants | None, req: Any) -> None:
    auth.require_room_admin(grants, req.room)


def build_methods(sip: SipStore, rooms: RoomManager) -> dict[tuple[str, str], Method]:
    def create_room(req: proto_room.CreateRoomRequest) -> Message:
        return rooms.create(
            req.name,
            empty_timeout=float(req.empty_timeout) or None,
            departure_timeout=float(req.departure_timeout) or None,
            metadata=req.metadata,
            max_participants=req.max_participants,
        )

    def list_rooms(req: proto_room.ListRoomsRequest) -> Message:
        return proto_room.ListRoomsResponse(rooms=rooms.open_rooms(req.names))

    def delete_room(req: proto_room.DeleteRoomRequest) -> Message:
        rooms.delete(req.room)
        return proto_room.DeleteRoomResponse()

    def list_participants(req: proto_room.ListParticipantsRequest) -> Message:
        # An unknown (or closed) room has no participants; LiveKit does not answer not_found.
        if rooms.get(req.room) is None:
            return proto_room.ListParticipantsResponse()
        return proto_room.ListParticipantsResponse(participants=rooms.participants(req.room))

    return {
        (SIP, "CreateSIPInboundTrunk"): Method(
            proto_sip.CreateSIPInboundTrunkRequest, _sip_admin, sip.create_inbound_trunk
        ),
        (SIP, "ListSIPInboundTrunk"): Method(
            proto_sip.ListSIPInboundTrunkRequest, _sip_admin, sip.list_inbound_trunks
        ),
        (SIP, "DeleteSIPTrunk"): Method(
            proto_sip.DeleteSIPTrunkRequest, _sip_admin, sip.delete_trunk
        ),
        (SIP, "CreateSIPDispatchRule"): Method(
            proto_sip.CreateSIPDispatchRuleRequest, _sip_admin, sip.create_dispatch_rule
        ),
        (SIP, "ListSIPDispatchRule"): Method(
            proto_sip.ListSIPDispatchRuleRequest, _sip_admin, sip.list_dispatch_rules
        ),
        (SIP, "UpdateSIPDispatchRule"): Method(
            proto_sip.UpdateSIPDispatchRuleRequest, _sip_admin, sip.update_dispatch_rule
        ),
        (SIP, "DeleteSIPDispatchRule"): Method(
            proto_sip.DeleteSIPDispatchRuleRequest, _sip_admin, sip.delete_dispatch_rule
        ),
        (ROOM_SERVICE, "CreateRoom"): Method(
            proto_room.CreateRoomRequest, _room_create, create_room
        ),
        (ROOM_SERVICE, "ListRooms"): Method(proto_room.ListRoomsRequest, _room_list, list_rooms),
        (ROOM_SERVICE, "DeleteRoom"): Method(
            proto_room.DeleteRoomRequest, _room_create, delete_room
        ),
        (ROOM_SERVICE, "ListParticipants"): Method(
            proto_room.ListParticipantsRequest, _room_admin, list_participants
        ),
    }
