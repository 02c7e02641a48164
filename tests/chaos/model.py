"""What the backend knows: each room as its acknowledged calls left it (the API's answers).

Only answered calls change the model: a call whose answer was lost is retried (as a backend
does) until one is answered, and that answer is what the backend prints in invitations.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta


@dataclass(frozen=True)
class Window:
    starts_at: datetime
    ends_at: datetime

    def opens_at(self, lead: timedelta) -> datetime:
        return self.starts_at - lead


@dataclass
class RoomModel:
    room: str
    registered: bool = False
    pin: str | None = None
    mode: str = "while_active"  # the dispatch mode of its last registration
    windows: list[Window] = field(default_factory=list)
    old_pins: set[str] = field(default_factory=set)  # rotated or released: must route nowhere
    history: list[str] = field(default_factory=list)  # its steps and their outcomes

    def new_pin(self, pin: str) -> None:
        if self.pin is not None and self.pin != pin:
            self.old_pins.add(self.pin)
        self.pin = pin

    def released(self) -> None:
        if self.pin is not None:
            self.old_pins.add(self.pin)
        self.pin = None
        self.registered = False
        self.windows = []  # a new registration starts a new workflow, without a schedule

    def describe(self) -> str:
        windows = ", ".join(f"[{w.starts_at:%H:%M:%S}, {w.ends_at:%H:%M:%S})" for w in self.windows)
        return (
            f"registered={self.registered} mode={self.mode} "
            f"pin={'set' if self.pin else 'none'} old_pins={len(self.old_pins)} "
            f"windows=[{windows}]"
        )


@dataclass
class Model:
    rooms: dict[str, RoomModel]
    ghost: str  # a LiveKit room never registered

    def all_pins(self) -> set[str]:
        pins: set[str] = set()
        for room in self.rooms.values():
            pins |= room.old_pins
            if room.pin:
                pins.add(room.pin)
        return pins
