"""One chaos run: start the system, play the seeded scenario, quiesce, check the invariants.

The backend is played as a real one would: one ordered queue of calls per room (rooms in
parallel), each call retried through outages (connection refused, timeouts, 5xx) until it is
answered, on either gateway; its answers are the model the invariants are checked against.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
from livekit.api import LiveKitAPI
from temporalio.client import Client
from temporalio.service import RPCError

from telephony.client import TelephonyClient, TelephonyError, TelephonyUnavailable
from telephony.models import ScheduleWindow
from telephony.settings import Settings, load_settings
from tests.chaos import invariants
from tests.chaos.faults import Faults
from tests.chaos.generator import (
    BACKEND_KINDS,
    FAULT_KINDS,
    LIVEKIT_KINDS,
    Scenario,
    Step,
    generate,
)
from tests.chaos.invariants import Observation, Violation
from tests.chaos.model import Model, RoomModel, Window
from tests.chaos.processes import (
    LEASE_GRACE_SECONDS,
    LIVEKIT_KEY,
    LIVENESS_INTERVAL_SECONDS,
    PHONE_NUMBER,
    SCHEDULE_LEAD_SECONDS,
    ChaosStack,
)
from tests.fixtures.keys import DATA_CONVERTER

# A backend gives up on a call after this long (then it is a violation: never answered).
CALL_GIVE_UP_SECONDS = 240.0
CALL_TIMEOUT_SECONDS = 45.0
# After quiescence, how long the structure may take to settle before a difference counts.
SETTLE_SECONDS = 45.0
LEAD = timedelta(seconds=SCHEDULE_LEAD_SECONDS)


@dataclass
class Result:
    seed: int
    rooms: int
    events: int
    faults: Counter[str]
    violations: list[Violation]
    wall: float
    retries: int = 0
    replay: list[str] = field(default_factory=list)
    log_dir: Path | None = None
    checks: Counter[str] = field(default_factory=Counter)

    def summary(self) -> str:
        faults = ",".join(
            f"{kind}={self.faults[kind]}" for kind in FAULT_KINDS if self.faults[kind]
        )
        return (
            f"chaos seed={self.seed} rooms={self.rooms} events={self.events} "
            f"faults={sum(self.faults.values())}[{faults or '-'}] retries={self.retries} "
            f"checked[open={self.checks['open']},closed={self.checks['closed']},"
            f"calls={self.checks['calls']}] revived={self.checks['revived']} "
            f"violations={len(self.violations)} wall={self.wall:.0f}s"
        )


class Backend:
    """The backend's calls: the HTTP API (either gateway) or `TelephonyClient` (`always`)."""

    def __init__(
        self,
        stack: ChaosStack,
        session: aiohttp.ClientSession,
        always: TelephonyClient,
        model: Model,
        started: float,
    ) -> None:
        self.stack = stack
        self.session = session
        self.always = always
        self.model = model
        self.started = started
        self.queues: dict[str, asyncio.Queue[Step | None]] = {}
        self.tasks: list[asyncio.Task[None]] = []
        self.problems: list[Violation] = []
        self.retries = 0

    def stamp(self) -> str:
        return f"t+{time.monotonic() - self.started:5.1f}s"

    def submit(self, step: Step) -> None:
        assert step.room is not None
        if step.room not in self.queues:
            queue: asyncio.Queue[Step | None] = asyncio.Queue()
            self.queues[step.room] = queue
            self.tasks.append(asyncio.get_running_loop().create_task(self._serve(queue)))
        self.queues[step.room].put_nowait(step)

    async def drain(self) -> None:
        for queue in self.queues.values():
            queue.put_nowait(None)
        await asyncio.gather(*self.tasks)

    async def _serve(self, queue: asyncio.Queue[Step | None]) -> None:
        while (step := await queue.get()) is not None:
            await self._call(step)

    # --- one call, retried until answered --------------------------------------------------------

    async def _call(self, step: Step) -> None:
        room = self.model.rooms[step.room or ""]
        now = datetime.now(UTC)
        windows = None
        if step.args.get("windows") is not None:
            windows = [
                Window(now + timedelta(seconds=w["start"]), now + timedelta(seconds=w["end"]))
                for w in step.args["windows"]
            ]
        outcomes: list[str] = []
        give_up = time.monotonic() + CALL_GIVE_UP_SECONDS
        attempt = 0
        begun = self.stamp()
        while True:
            try:
                answer = await asyncio.wait_for(
                    self._attempt(step, windows, attempt), CALL_TIMEOUT_SECONDS
                )
            except _Retry as retry:
                outcomes.append(str(retry))
            except TimeoutError:
                outcomes.append("timeout")
            except _Refused as refused:
                room.history.append(f"{begun} {step.describe()} -> refused: {refused}")
                self.problems.append(
                    Violation(0, room.room, f"{step.describe()} refused: {refused}")
                )
                return
            else:
                self._apply(room, step, windows, answer)
                tried = f" after {', '.join(_counted(outcomes))}" if outcomes else ""
                room.history.append(f"{begun} {step.describe()} -> ok{tried}; {room.describe()}")
                return
            self.retries += 1
            attempt += 1
            if time.monotonic() > give_up:
                room.history.append(f"{begun} {step.describe()} -> never answered")
                self.problems.append(
                    Violation(0, room.room, f"{step.describe()} never answered: {outcomes[-5:]}")
                )
                return
            await asyncio.sleep(min(0.25 * 2**attempt, 4.0))

    def _apply(
        self, room: RoomModel, step: Step, windows: list[Window] | None, pin: str | None
    ) -> None:
        if step.kind == "unregister":
            room.released()
            return
        assert pin is not None
        if step.kind == "register":
            room.registered = True
            room.mode = "always" if step.args.get("via") == "always" else "while_active"
        room.new_pin(pin)
        if windows is not None:
            room.windows = windows

    async def _attempt(self, step: Step, windows: list[Window] | None, attempt: int) -> str | None:
        """One try; the answered PIN (None for unregister). Raises `_Retry` or `_Refused`."""
        room = step.room or ""
        if step.kind == "register" and step.args.get("via") == "always":
            schedule = (
                [ScheduleWindow(starts_at=w.starts_at, ends_at=w.ends_at) for w in windows]
                if windows is not None
                else None
            )
            try:
                info = await self.always.register_room(room, schedule)
            except TelephonyUnavailable as exc:
                raise _Retry(exc.code) from None
            except TelephonyError as exc:
                if exc.code == "telephony_error":  # unclassified (a 502 over HTTP): retried
                    raise _Retry("telephony_error") from None
                raise _Refused(f"{exc.code}: {exc}") from None
            except RPCError as exc:
                raise _Retry(f"rpc {exc.status.name}") from None
            return info.pin
        base = self.stack.gateway_urls[(step.index + attempt) % 2]
        path = f"{base}/api/v1/rooms/{room}"
        body: dict[str, Any] | None = None
        as_json = _windows_json(windows) if windows is not None else None
        method = {"register": "PUT", "unregister": "DELETE", "rotate": "POST", "schedule": "PUT"}
        if step.kind == "register":
            body = {"schedule": as_json} if as_json is not None else None
        elif step.kind == "rotate":
            path += "/pin/rotate"
        elif step.kind == "schedule":
            path += "/schedule"
            body = {"windows": as_json or []}
        headers = {"Authorization": f"Bearer {self.stack.api_token}"}
        try:
            async with self.session.request(
                method[step.kind], path, json=body, headers=headers
            ) as response:
                text = await response.text()
                status = response.status
        except (aiohttp.ClientError, ConnectionError) as exc:
            raise _Retry(type(exc).__name__) from None
        if status == 204 or (status == 404 and step.kind == "unregister"):
            return None
        if status == 200:
            return str(json.loads(text)["pin"])
        if status in (429, 502, 503, 504):
            raise _Retry(f"HTTP {status}")
        raise _Refused(f"HTTP {status} {text[:200]}")


class _Retry(Exception):
    pass


class _Refused(Exception):
    pass


def _counted(outcomes: list[str]) -> list[str]:
    return [f"{what} x{n}" if n > 1 else what for what, n in Counter(outcomes).items()]


def _windows_json(windows: list[Window]) -> list[dict[str, str]]:
    return [
        {"starts_at": w.starts_at.isoformat(), "ends_at": w.ends_at.isoformat()} for w in windows
    ]


async def _livekit_step(
    session: aiohttp.ClientSession, url: str, step: Step, model: Model, stamp: str
) -> None:
    """Users in LiveKit, through the emulator's routes: 404s (already gone) are fine."""
    room = step.room or ""
    base = f"{url}/_emulator/rooms"
    calls: list[tuple[str, str, dict[str, Any] | None]] = []
    if step.kind == "open":
        calls.append(("POST", base, {"name": room, "empty_timeout": step.args["empty_timeout"]}))
    if step.kind in ("open", "join"):
        calls.append(("POST", f"{base}/{room}/participants", {"identity": step.args["identity"]}))
    elif step.kind == "leave":
        calls.append(("DELETE", f"{base}/{room}/participants/{step.args['identity']}", None))
    elif step.kind == "close":
        calls.append(("DELETE", f"{base}/{room}", None))
    statuses = []
    for method, target, body in calls:
        async with session.request(method, target, json=body) as response:
            await response.read()
            statuses.append(response.status)
            if response.status >= 500:
                raise RuntimeError(f"emulator {method} {target}: HTTP {response.status}")
    if room in model.rooms:
        model.rooms[room].history.append(f"{stamp} {step.describe()} -> {statuses}")


def _settings(stack: ChaosStack, **overrides: Any) -> Settings:
    values: dict[str, Any] = {k.lower(): v for k, v in stack.service_environment().items()}
    values.update(overrides)
    return load_settings(**values)


def _describe_violation(
    violation: Violation,
    scenario: Scenario,
    model: Model,
    seen: Observation | None,
    rooms: int,
    steps: int,
) -> str:
    lines = [
        f"VIOLATION seed={scenario.seed} rooms={rooms} steps={steps}: {violation.line()}",
        f"  replay: python -m tests.chaos --seed {scenario.seed} --rooms {rooms} --steps {steps}",
    ]
    room = model.rooms.get(violation.room or "")
    if room is not None:
        lines.append(f"  state: {room.describe()}")
        lines += [f"  event: {entry}" for entry in room.history]
    if seen is not None and violation.room:
        rules = seen.rules_of(violation.room)
        leases = [lease for lease, owner in seen.leases if owner == violation.room]
        lines.append(
            f"  observed: live={violation.room in seen.live_rooms} "
            f"rules={[r.rule_id for r in rules]} leases={len(leases)} "
            f"registered_in_temporal={seen.pins.get(violation.room) is not None}"
        )
    return "\n".join(lines)


async def run_seed(
    seed: int,
    rooms: int,
    steps: int,
    *,
    log_dir: Path | None = None,
    keep_logs: bool = False,
    echo: Any = print,
) -> Result:
    """Play one seed on a fresh system; the summary line is `Result.summary()`."""
    scenario = generate(seed, rooms, steps)
    run_dir = log_dir or Path(tempfile.mkdtemp(prefix=f"chaos-{seed}-"))
    stack = ChaosStack(run_dir, task_queue=f"chaos-{seed}")
    started = time.monotonic()
    model = Model({name: RoomModel(name) for name in scenario.rooms}, scenario.ghost)
    violations: list[Violation] = []
    seen: Observation | None = None
    faults_counts: Counter[str] = Counter()
    retries = 0
    checks: Counter[str] = Counter()
    try:
        await stack.start()
        settings = _settings(stack)
        client = await Client.connect(
            stack.temporal_address, namespace="default", data_converter=DATA_CONVERTER
        )
        always = TelephonyClient(client, _settings(stack, room_telephony_dispatch_mode="always"))
        telephony = TelephonyClient(client, settings)
        livekit = LiveKitAPI(stack.livekit_url, LIVEKIT_KEY, stack.livekit_secret)
        timeout = aiohttp.ClientTimeout(total=CALL_TIMEOUT_SECONDS)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            try:
                faults = Faults(stack, session)
                backend = Backend(stack, session, always, model, started)
                for step in scenario.steps:
                    if step.pause:
                        await asyncio.sleep(step.pause)
                    if step.kind in BACKEND_KINDS:
                        backend.submit(step)
                    elif step.kind in LIVEKIT_KINDS:
                        await _livekit_step(
                            session, stack.livekit_url, step, model, backend.stamp()
                        )
                    else:
                        await faults.apply(step)
                # Quiesce: faults cleared, processes back, the backend's calls answered.
                await faults.settle()
                await backend.drain()
                await faults.clear()
                violations += backend.problems
                violations += [Violation(0, None, error) for error in faults.errors]
                retries = backend.retries
                faults_counts = faults.counts
                await asyncio.sleep(5)  # delayed/held webhooks out, empty rooms closed
                checks["revived"] = len(stack.revive())
                await stack.wait_ready(60)
                await asyncio.sleep(max(0.0, LEASE_GRACE_SECONDS - 1))
                await _reconcile(telephony)
                await asyncio.sleep(LIVENESS_INTERVAL_SECONDS + 1)
                seen, structural = await _settled(model, livekit, telephony, settings)
                violations += structural
                for name, room in model.rooms.items():
                    live = name in seen.live_rooms
                    expected = invariants.should_open(room, live, seen.at, LEAD)
                    checks[
                        "ambiguous" if expected is None else "open" if expected else "closed"
                    ] += 1
                if not structural:
                    calls = await _calls(
                        model, seen, livekit, telephony, settings, session, stack, checks
                    )
                    violations += calls
            finally:
                await livekit.aclose()
    finally:
        stack.stop()
    all_pins = model.all_pins()
    violations += invariants.check_logs(stack.log_files(), all_pins, stack.secrets())
    result = Result(
        seed, rooms, len(scenario.steps), faults_counts, violations,
        time.monotonic() - started, retries, checks=checks,
    )  # fmt: skip
    result.replay = [
        _describe_violation(v, scenario, model, seen, rooms, steps) for v in violations
    ]
    if violations or keep_logs:
        result.log_dir = run_dir
    elif log_dir is None:
        shutil.rmtree(run_dir, ignore_errors=True)
    return result


async def _reconcile(telephony: TelephonyClient) -> None:
    """One reconciliation pass, run to its end (retried while Temporal settles)."""
    for _ in range(10):
        try:
            await asyncio.wait_for(telephony.reconcile(), 120)
            return
        except (TelephonyError, RPCError, TimeoutError):
            await asyncio.sleep(1)
    raise RuntimeError("no reconciliation pass completed")


async def _settled(
    model: Model, livekit: LiveKitAPI, telephony: TelephonyClient, settings: Settings
) -> tuple[Observation, list[Violation]]:
    """Observe until invariants 1-3 hold, or SETTLE_SECONDS have passed: what is left counts."""
    deadline = time.monotonic() + SETTLE_SECONDS
    while True:
        seen = await invariants.observe(model, livekit, telephony, settings)
        found = invariants.check_structure(model, seen, settings, LEAD)
        if not found or time.monotonic() > deadline:
            return seen, found
        await asyncio.sleep(1)


async def _calls(
    model: Model,
    seen: Observation,
    livekit: LiveKitAPI,
    telephony: TelephonyClient,
    settings: Settings,
    session: aiohttp.ClientSession,
    stack: ChaosStack,
    checks: Counter[str],
) -> list[Violation]:
    for attempt in range(3):
        if attempt:
            await asyncio.sleep(2)
            seen = await invariants.observe(model, livekit, telephony, settings)
        planned = invariants.planned_calls(model, seen, LEAD)
        results = await invariants.make_calls(session, stack.livekit_url, PHONE_NUMBER, planned)
        found = invariants.check_calls(results)
        checks["calls"] = len(results)
        if not found:
            return []
    return found


def main_run(seed: int, rooms: int, steps: int, **kwargs: Any) -> Result:
    return asyncio.run(run_seed(seed, rooms, steps, **kwargs))
