"""The seeded scenario: what a backend, LiveKit's users and an operator do, and the faults.

`generate(seed, rooms, steps)` is a pure function: the same seed gives the same list of steps,
so a run is replayed with `python -m tests.chaos --seed N --rooms R --steps S`. (The processes'
timing is real, so a replay repeats the inputs, not every interleaving.)
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

# Backend calls (HTTP API or TelephonyClient), one room's calls in order.
BACKEND_KINDS = ("register", "unregister", "rotate", "schedule")
# LiveKit's users, through the emulator's routes (its webhooks carry the room life).
LIVEKIT_KINDS = ("open", "join", "leave", "close")
# Faults, by the kind reported in the summary.
WEBHOOK_FAULTS = ("webhook_drop", "webhook_dup", "webhook_delay", "webhook_reorder")
LIVEKIT_FAULTS = ("livekit_503", "livekit_latency", "livekit_lost_response")
PROCESS_FAULTS = ("worker_kill", "gateway_kill", "temporal_restart")
FAULT_KINDS = WEBHOOK_FAULTS + LIVEKIT_FAULTS + PROCESS_FAULTS
# Twirp methods the service calls (rules, rooms), for API faults.
RULE_METHODS = ("CreateSIPDispatchRule", "DeleteSIPDispatchRule", "ListSIPDispatchRule")
ROOM_METHODS = ("ListRooms",)
# Schedule windows, relative to the moment the call is made (seconds): (kind, start, end).
WINDOW_KINDS = ("open", "future", "opening", "closing")


@dataclass(frozen=True)
class Step:
    index: int
    kind: str
    room: str | None = None
    args: dict[str, Any] = field(default_factory=dict)
    pause: float = 0.0  # seconds to wait before this step

    def describe(self) -> str:
        args = " ".join(f"{k}={v}" for k, v in self.args.items())
        target = f" {self.room}" if self.room else ""
        return f"#{self.index} {self.kind}{target}{(' ' + args) if args else ''}"


@dataclass(frozen=True)
class Scenario:
    seed: int
    rooms: list[str]  # rooms the backend manages
    ghost: str  # a LiveKit room that is never registered
    steps: list[Step]

    def room_steps(self, room: str) -> list[Step]:
        return [step for step in self.steps if step.room == room]


def room_names(seed: int, count: int) -> list[str]:
    return [f"chaos-{seed}-r{i}" for i in range(count)]


def _window(rng: random.Random) -> dict[str, Any]:
    kind = rng.choice(WINDOW_KINDS)
    if kind == "open":
        start, end = -600.0, 7200.0
    elif kind == "future":
        start, end = 86400.0, 90000.0
    elif kind == "opening":  # opens (start - lead) during the run: a timer, not a message
        start, end = rng.uniform(8, 30), 7200.0
    else:  # "closing": ends during the run
        start, end = -600.0, rng.uniform(8, 30)
    return {"kind": kind, "start": round(start, 1), "end": round(end, 1)}


def _windows(rng: random.Random) -> list[dict[str, Any]]:
    return [_window(rng) for _ in range(rng.choice((0, 1, 1, 2)))]


def generate(seed: int, rooms: int, steps: int) -> Scenario:
    rng = random.Random(seed)
    names = room_names(seed, rooms)
    ghost = f"chaos-{seed}-ghost"
    registered = dict.fromkeys(names, False)
    participants: dict[str, list[str]] = {name: [] for name in [*names, ghost]}
    process_faults = 0
    temporal_restarts = 0
    out: list[Step] = []

    def add(kind: str, room: str | None = None, **args: Any) -> None:
        pause = round(rng.choice((0.0, 0.05, 0.1, 0.2, 0.5)), 2)
        out.append(Step(len(out), kind, room, args, pause))

    # Every room is registered once early on (the backend creates rooms first); which client
    # registers it decides its dispatch mode: the HTTP API (`while_active`) or a backend using
    # `TelephonyClient` with ROOM_TELEPHONY_DISPATCH_MODE=always.
    for name in names:
        via = "always" if rng.random() < 0.25 else "api"
        add("register", name, via=via, windows=_windows(rng) if rng.random() < 0.3 else None)
        registered[name] = True

    while len(out) < steps:
        roll = rng.random()
        room = rng.choice(names)
        if roll < 0.40:
            if not registered[room]:
                via = "always" if rng.random() < 0.25 else "api"
                windows = _windows(rng) if rng.random() < 0.3 else None
                add("register", room, via=via, windows=windows)
                registered[room] = True
            else:
                kind = rng.choices(("unregister", "rotate", "schedule", "register"), (2, 3, 3, 1))[
                    0
                ]
                if kind == "schedule":
                    add("schedule", room, windows=_windows(rng))
                elif kind == "register":  # a repeat: idempotent, same PIN
                    add("register", room, via="api", windows=None)
                else:
                    add(kind, room)
                    registered[room] = kind != "unregister"
        elif roll < 0.75:
            room = ghost if rng.random() < 0.12 else room
            present = participants[room]
            kind = rng.choices(LIVEKIT_KINDS, (3, 2, 2, 1) if present else (4, 1, 0, 1))[0]
            if kind == "open":
                identity = f"web-{len(out)}"
                add("open", room, identity=identity, empty_timeout=rng.choice((1.0, 2.0, 3.0)))
                present.append(identity)
            elif kind == "join":
                identity = f"web-{len(out)}"
                add("join", room, identity=identity)
                present.append(identity)
            elif kind == "leave":
                add("leave", room, identity=present.pop(rng.randrange(len(present))))
            else:
                add("close", room)
                present.clear()
        else:
            kinds = list(WEBHOOK_FAULTS + LIVEKIT_FAULTS)
            if process_faults < 4:
                kinds += ["worker_kill", "gateway_kill"]
                if temporal_restarts < 1:
                    kinds.append("temporal_restart")
            kind = rng.choice(kinds)
            if kind in PROCESS_FAULTS:
                process_faults += 1
                temporal_restarts += kind == "temporal_restart"
            if kind == "webhook_drop":
                add(kind, count=rng.randint(1, 3))
            elif kind == "webhook_dup":
                add(kind, count=rng.randint(1, 4))
            elif kind == "webhook_delay":
                add(kind, seconds=round(rng.uniform(0.5, 4.0), 1), count=rng.randint(1, 3))
            elif kind == "webhook_reorder":
                add(kind, count=rng.randint(2, 4))
            elif kind == "livekit_503":
                method = rng.choice(RULE_METHODS + ROOM_METHODS)
                add(kind, method=method, count=rng.randint(1, 5))
            elif kind == "livekit_latency":
                add(kind, seconds=round(rng.uniform(0.3, 2.0), 1),
                    duration=round(rng.uniform(1, 6), 1))  # fmt: skip
            elif kind == "livekit_lost_response":
                add(kind, method=rng.choice(RULE_METHODS[:2]), count=rng.randint(1, 2))
            elif kind == "worker_kill":
                add(kind, worker=rng.randint(0, 1), down=round(rng.uniform(0, 3), 1))
            elif kind == "gateway_kill":
                add(kind, gateway=rng.randint(0, 1), down=round(rng.uniform(0, 3), 1))
            else:
                add(kind, down=round(rng.uniform(0, 2), 1))
    return Scenario(seed, names, ghost, out)
