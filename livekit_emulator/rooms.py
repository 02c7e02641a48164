"""Rooms and participants: when rooms open and close, and the events that come out of it."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from livekit.protocol.models import ParticipantInfo, Room

from .ids import new_id
from .twirp import TwirpError

# (event name, room snapshot, participant or None)
EmitFn = Callable[[str, Room, ParticipantInfo | None], None]


@dataclass
class _OpenRoom:
    info: Room
    empty_timeout: float
    departure_timeout: float | None
    participants: dict[str, ParticipantInfo] = field(default_factory=dict)
    timer: asyncio.TimerHandle | None = None


class RoomManager:
    """Only open rooms are held: a closed room is gone; its name may return with a new sid."""

    def __init__(
        self, emit: EmitFn, default_empty_timeout: float, clock: Callable[[], float] = time.time
    ) -> None:
        self._emit = emit
        self._clock = clock
        self.default_empty_timeout = default_empty_timeout
        self._rooms: dict[str, _OpenRoom] = {}
        self._last_creation_ms = 0

    # --- queries -----------------------------------------------------------------------------
    def open_rooms(self, names: Iterable[str] = ()) -> list[Room]:
        wanted = set(names)
        return [
            self._snapshot(r)
            for name, r in sorted(self._rooms.items())
            if not wanted or name in wanted
        ]

    def get(self, name: str) -> Room | None:
        room = self._rooms.get(name)
        return self._snapshot(room) if room else None

    def participants(self, name: str) -> list[ParticipantInfo]:
        room = self._rooms.get(name)
        if room is None:
            raise TwirpError("not_found", "requested room does not exist")
        return list(room.participants.values())

    # --- room life ---------------------------------------------------------------------------
    def create(
        self,
        name: str,
        *,
        empty_timeout: float | None = None,
        departure_timeout: float | None = None,
        metadata: str = "",
        max_participants: int = 0,
    ) -> Room:
        """Open a room (idempotent: an open room is returned as is, like LiveKit's CreateRoom)."""
        # LiveKit accepts an empty name too (its webhooks then carry no room name).
        existing = self._rooms.get(name)
        if existing is not None:
            return self._snapshot(existing)
        timeout = empty_timeout or self.default_empty_timeout
        # Strictly increasing, so that a room closed and reopened within the same millisecond
        # is still told apart by its creation time (consumers may key incarnations on it).
        created_ms = max(int(self._clock() * 1000), self._last_creation_ms + 1)
        self._last_creation_ms = created_ms
        info = Room(
            sid=new_id("RM_"),
            name=name,
            empty_timeout=math.ceil(timeout),
            departure_timeout=math.ceil(departure_timeout or 0),
            max_participants=max_participants,
            creation_time=created_ms // 1000,
            creation_time_ms=created_ms,
            metadata=metadata,
        )
        room = _OpenRoom(info=info, empty_timeout=timeout, departure_timeout=departure_timeout)
        self._rooms[name] = room
        self._emit("room_started", self._snapshot(room), None)
        # A room nobody joins closes after empty_timeout too.
        self._arm(room, timeout)
        return self._snapshot(room)

    def delete(self, name: str) -> None:
        room = self._rooms.get(name)
        if room is None:
            # A psrpc error in LiveKit, hence twirp-go's "unknown" prefix on a not_found code.
            raise TwirpError("not_found", "twirp error unknown: requested room does not exist")
        self._close(room)

    def join(
        self,
        room_name: str,
        identity: str,
        *,
        name: str = "",
        kind: ParticipantInfo.Kind = ParticipantInfo.Kind.STANDARD,
        attributes: Mapping[str, str] | None = None,
        metadata: str = "",
    ) -> ParticipantInfo:
        """Join a participant, opening the room if needed; a second join with the same
        identity replaces the first, as LiveKit does."""
        if not identity:
            raise ValueError("identity is required")
        room = self._rooms.get(room_name)
        if room is None:
            self.create(room_name)
            room = self._rooms[room_name]
        self._disarm(room)
        previous = room.participants.pop(identity, None)
        if previous is not None:
            previous.state = ParticipantInfo.State.DISCONNECTED
            self._emit("participant_left", self._snapshot(room), previous)
        now = self._clock()
        participant = ParticipantInfo(
            sid=new_id("PA_"),
            identity=identity,
            name=name,
            state=ParticipantInfo.State.ACTIVE,
            metadata=metadata,
            joined_at=int(now),
            joined_at_ms=int(now * 1000),
            kind=kind,
            attributes=dict(attributes or {}),
        )
        room.participants[identity] = participant
        self._emit("participant_joined", self._snapshot(room), participant)
        return participant

    def leave(self, room_name: str, identity: str) -> None:
        room = self._rooms.get(room_name)
        if room is None or identity not in room.participants:
            raise KeyError(f"no participant {identity!r} in room {room_name!r}")
        participant = room.participants.pop(identity)
        participant.state = ParticipantInfo.State.DISCONNECTED
        self._emit("participant_left", self._snapshot(room), participant)
        if not room.participants:
            after_leave = room.departure_timeout or room.empty_timeout
            self._arm(room, after_leave)

    def shutdown(self) -> None:
        """Stop timers without emitting anything (the emulator is going away)."""
        for room in self._rooms.values():
            self._disarm(room)

    # --- internals ---------------------------------------------------------------------------
    def _close(self, room: _OpenRoom) -> None:
        self._disarm(room)
        for participant in list(room.participants.values()):
            room.participants.pop(participant.identity)
            participant.state = ParticipantInfo.State.DISCONNECTED
            self._emit("participant_left", self._snapshot(room), participant)
        del self._rooms[room.info.name]
        self._emit("room_finished", self._snapshot(room), None)

    def _arm(self, room: _OpenRoom, delay: float) -> None:
        self._disarm(room)
        sid = room.info.sid
        room.timer = asyncio.get_running_loop().call_later(delay, self._expire, room.info.name, sid)

    @staticmethod
    def _disarm(room: _OpenRoom) -> None:
        if room.timer is not None:
            room.timer.cancel()
            room.timer = None

    def _expire(self, name: str, sid: str) -> None:
        room = self._rooms.get(name)
        # The sid check keeps a stale timer from closing a later incarnation of the room.
        if room is not None and room.info.sid == sid and not room.participants:
            room.timer = None
            self._close(room)

    @staticmethod
    def _snapshot(room: _OpenRoom) -> Room:
        snap = Room()
        snap.CopyFrom(room.info)
        snap.num_participants = len(room.participants)
        return snap
