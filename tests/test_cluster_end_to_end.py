"""The whole service end to end on the real Temporal cluster (issue 14).

temporal-server v1.32.0 on PostgreSQL with SQL visibility (`tests/fixtures/temporal_cluster.py`),
the LiveKit emulator sending every webhook to both of two gateways, and two workers: all real
processes, started by the chaos suite's `ChaosStack` against the cluster (its intervals shrunk
through settings). The tests share that stack and the backend's model of it, in order: a room's
whole session over HTTP while the worker running it is SIGKILLed; a temporal-server restart;
rooms found by their search attributes; the reconcile Schedule; the chaos invariants at the end.

Skipped with one line unless the cluster was built (`scripts/temporal-cluster.sh install`); a
failure instead with `TEMPORAL_CLUSTER_REQUIRED=1`, as in CI.
"""

from __future__ import annotations

import asyncio
import functools
import json
import shutil
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from livekit.api import LiveKitAPI
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import (
    Client,
    ScheduleActionExecutionStartWorkflow,
    ScheduleActionStartWorkflow,
    ScheduleHandle,
    WorkflowExecutionStatus,
    WorkflowHandle,
)

from telephony import contracts
from telephony.client import TelephonyClient
from telephony.models import ReconcileReport, TelephonyState
from telephony.settings import Settings
from tests.chaos import invariants
from tests.chaos.generator import Step
from tests.chaos.invariants import Call, Observation, ObservedRule
from tests.chaos.model import Model, RoomModel
from tests.chaos.processes import (
    LIVEKIT_KEY,
    PHONE_NUMBER,
    RECONCILE_INTERVAL_SECONDS,
    ChaosStack,
)
from tests.chaos.runner import (
    CALL_TIMEOUT_SECONDS,
    LEAD,
    Backend,
    _calls,
    _livekit_step,
    _settings,
    _settled,
)
from tests.fixtures.polling import eventually
from tests.fixtures.processes import Child
from tests.fixtures.temporal_cluster import TemporalCluster

pytestmark = [pytest.mark.temporal_cluster, pytest.mark.slow]

RUN = uuid.uuid4().hex[:6]
# The room whose session outlives a killed worker; the one registered before the restart (live
# until the end); the one registered after it.
SESSION_ROOM = f"e2e-{RUN}-session"
KEPT_ROOM = f"e2e-{RUN}-kept"
AFTER_ROOM = f"e2e-{RUN}-after"
ROOMS = (SESSION_ROOM, KEPT_ROOM, AFTER_ROOM)
# Generous: a task on the killed worker's sticky queue waits for its timeout (10 s) first.
FAILOVER_SECONDS = 60.0


@dataclass(frozen=True)
class TaskRun:
    event_id: int
    identity: str  # the worker's (the SDK's default: `pid@host`)
    workflow_task: bool  # else an activity task
    started_at: datetime


@dataclass
class ClusterStack:
    """The running system, the backend's model of it, and the test's ways to drive and read it."""

    cluster: TemporalCluster
    stack: ChaosStack
    settings: Settings
    client: Client
    telephony: TelephonyClient
    livekit: LiveKitAPI
    session: aiohttp.ClientSession
    model: Model
    steps: int = 0

    def step(self, kind: str, room: str, *, gateway: int = 0, **args: Any) -> Step:
        """A step of the chaos vocabulary; `Backend` sends a step's first attempt to gateway
        `index % 2` (0 or 1), so the index says which gateway the call goes to."""
        self.steps += 1
        return Step(2 * self.steps + gateway, kind, room, args)

    async def backend(self, step: Step) -> int:
        """One backend call over the HTTP API, retried through outages as the chaos backend does;
        the model takes its answer. Returns the number of retries."""
        backend = Backend(self.stack, self.session, self.telephony, self.model, time.monotonic())
        backend.submit(step)
        await backend.drain()
        assert not backend.problems, [problem.line() for problem in backend.problems]
        return backend.retries

    async def livekit_step(self, kind: str, room: str, **args: Any) -> None:
        """Users in LiveKit (the emulator): `open` (with a participant) or `close`."""
        await _livekit_step(
            self.session, self.stack.livekit_url, self.step(kind, room, **args), self.model, ""
        )

    async def api(self, method: str, room: str, gateway: int) -> tuple[int, dict[str, Any]]:
        """One HTTP API call to gateway 0 or 1: status and JSON body."""
        url = f"{self.stack.gateway_urls[gateway]}/api/v1/rooms/{room}"
        headers = {"Authorization": f"Bearer {self.stack.api_token}"}
        async with self.session.request(method, url, headers=headers) as response:
            text = await response.text()
            return response.status, (json.loads(text) if text else {})

    async def livekit_view(self) -> Observation:
        """LiveKit's rules and live rooms (and the running leases), read as the chaos checks
        read them; an empty model: no room's status is queried."""
        return await invariants.observe(Model({}, ""), self.livekit, self.telephony, self.settings)

    async def rules_of(self, room: str) -> list[ObservedRule]:
        return (await self.livekit_view()).rules_of(room)

    async def dial(self, pin: str, room: str) -> dict[str, Any]:
        """A simulated phone call with `pin` (the emulator's answer: accepted, room_name)."""
        call = Call(room, "current PIN", pin, must_land=True)
        ((_, answer),) = await invariants.make_calls(
            self.session, self.stack.livekit_url, PHONE_NUMBER, [call]
        )
        return answer

    async def run_id(self, room: str) -> str:
        """The room workflow's current run (it continues as new after a session)."""
        handle = self.client.get_workflow_handle(contracts.room_workflow_id(room))
        return (await handle.describe()).run_id

    async def task_runs(self, room: str, run_id: str) -> list[TaskRun]:
        """Every workflow and activity task of one run of the room's workflow, from its history."""
        handle = self.client.get_workflow_handle(contracts.room_workflow_id(room), run_id=run_id)
        runs = []
        for event in (await handle.fetch_history()).events:
            at = event.event_time.ToDatetime(tzinfo=UTC)
            if event.HasField("workflow_task_started_event_attributes"):
                identity = event.workflow_task_started_event_attributes.identity
                runs.append(TaskRun(event.event_id, identity, workflow_task=True, started_at=at))
            elif event.HasField("activity_task_started_event_attributes"):
                identity = event.activity_task_started_event_attributes.identity
                runs.append(TaskRun(event.event_id, identity, workflow_task=False, started_at=at))
        return runs

    def worker_of(self, identity: str) -> Child:
        """The worker process behind a Temporal identity (the SDK's default: `pid@host`)."""
        pid = identity.split("@", 1)[0]
        found = [worker for worker in self.stack.workers if str(worker.pid) == pid]
        assert len(found) == 1, f"{identity} is none of the stack's workers"
        return found[0]

    async def polling_workers(self) -> set[str]:
        """The stack's live workers that poll its task queue (for workflow tasks)."""
        described = await self.client.workflow_service.describe_task_queue(
            DescribeTaskQueueRequest(
                namespace=self.client.namespace,
                task_queue=TaskQueue(name=self.settings.telephony_task_queue),
                task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
            )
        )
        pids = {poller.identity.split("@", 1)[0] for poller in described.pollers}
        return {
            worker.name for worker in self.stack.workers if worker.alive and str(worker.pid) in pids
        }

    async def room_ids(self, query: str) -> set[str]:
        found = set()
        async for execution in self.client.list_workflows(query):
            found.add(execution.typed_search_attributes.get(contracts.TELEPHONY_ROOM_ID) or "")
        return found


@pytest.fixture(scope="module")
async def e2e(
    temporal_cluster: TemporalCluster, request: pytest.FixtureRequest
) -> AsyncIterator[ClusterStack]:
    run_dir = Path(tempfile.mkdtemp(prefix="cluster-e2e-"))
    stack = ChaosStack(
        run_dir,
        task_queue=f"cluster-e2e-{RUN}",
        external_temporal_address=temporal_cluster.address,
        temporal_namespace=temporal_cluster.namespace,
    )
    failures_before = request.session.testsfailed
    try:
        await stack.start()
        client = await temporal_cluster.client()
        settings = _settings(stack)
        livekit = LiveKitAPI(stack.livekit_url, LIVEKIT_KEY, stack.livekit_secret)
        model = Model({room: RoomModel(room) for room in ROOMS}, ghost=f"e2e-{RUN}-ghost")
        timeout = aiohttp.ClientTimeout(total=CALL_TIMEOUT_SECONDS)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            telephony = TelephonyClient(client, settings)
            ready = ClusterStack(
                temporal_cluster, stack, settings, client, telephony, livekit, session, model
            )
            # A worker polls once it has registered the search attributes and the Schedule:
            # before that, on a fresh cluster, a registration is refused (502) for want of them.
            await eventually(
                lambda: _both_polling(ready), within=60, message="the workers do not poll"
            )
            yield ready
            await livekit.aclose()
    finally:
        stack.stop()
        if request.session.testsfailed > failures_before:  # the processes' logs, for a reader
            print(f"cluster end-to-end logs kept in {run_dir}")
        else:
            shutil.rmtree(run_dir, ignore_errors=True)


async def test_a_session_over_two_gateways_is_handled_to_its_end_after_a_worker_is_killed(
    e2e: ClusterStack,
) -> None:
    room = SESSION_ROOM
    # Registered over gateway 0's HTTP API: a PIN, not yet a rule (the room is not live).
    retries = await e2e.backend(e2e.step("register", room, gateway=0, via="api", windows=None))
    assert retries == 0, f"with no fault, the registration took {retries} retries"
    pin = e2e.model.rooms[room].pin
    assert pin is not None and pin.isdigit(), "the API answered no PIN"
    status, body = await e2e.api("GET", room, gateway=1)
    assert (status, body.get("pin"), body.get("state")) == (200, pin, TelephonyState.IDLE), (
        "gateway 1 does not read the room gateway 0 registered"
    )
    assert await e2e.rules_of(room) == [], "a rule before the room is live"

    # The room starts in LiveKit: the emulator's webhooks reach the gateways, a worker creates
    # the dispatch rule with the PIN.
    await e2e.livekit_step("open", room, identity="web-alice", empty_timeout=600.0)
    (rule,) = await eventually(
        lambda: e2e.rules_of(room), within=30, message="no dispatch rule once the room started"
    )
    assert (rule.pin, rule.managed) == (pin, True), "the rule is not the room's managed one"
    answer = await e2e.dial(pin, room)
    assert answer.get("accepted") and answer.get("room_name") == room, (
        f"a call with the PIN did not land in the room: {answer}"
    )

    # Mid-session, the room's sticky worker (it ran the latest workflow task and caches the
    # workflow's state) is SIGKILLed.
    run_at_kill = await e2e.run_id(room)
    runs = await e2e.task_runs(room, run_at_kill)
    killed = e2e.worker_of([run for run in runs if run.workflow_task][-1].identity)
    (survivor,) = [worker for worker in e2e.stack.workers if worker is not killed]
    killed.kill()
    # A task the killed worker started between the history read and the kill is its own; only
    # what starts after its death must be the survivor's.
    killed_at = datetime.now(UTC)
    assert not killed.alive and survivor.alive

    # The room finishes: the surviving worker removes the rule, and runs every task from the
    # kill on (in the run of the kill, and the run it continued as after the session).
    await e2e.livekit_step("close", room)
    await eventually(
        lambda: _no_rules(e2e, room),
        within=FAILOVER_SECONDS,
        message=f"the rule stayed after the room finished, with {killed.name} killed",
    )
    after_kill = [
        run for run in await e2e.task_runs(room, run_at_kill) if run.started_at > killed_at
    ]
    if (latest := await e2e.run_id(room)) != run_at_kill:
        after_kill += await e2e.task_runs(room, latest)
    workers_after_kill = {e2e.worker_of(run.identity).name for run in after_kill}
    assert workers_after_kill == {survivor.name}, (
        f"the tasks from the kill on were not {survivor.name}'s: {after_kill}"
    )
    assert await eventually(
        lambda: _state_is(e2e, room, TelephonyState.IDLE), message="the room is not idle again"
    )

    # Every webhook went to both gateways, none given up on.
    async with e2e.session.get(f"{e2e.stack.livekit_url}/_emulator/webhooks") as response:
        webhooks = await response.json()
    by_gateway: dict[str, set[tuple[str, str]]] = defaultdict(set)
    for url, event, event_id in webhooks["deliveries"]:
        by_gateway[url].add((event, event_id))
    first, second = (by_gateway[f"{url}/livekit/webhook"] for url in e2e.stack.gateway_urls)
    assert first == second, "the gateways were not sent the same webhooks"
    assert {"room_started", "room_finished"} <= {event for event, _ in first}, first
    assert webhooks["failures"] == [], webhooks["failures"]

    # Unregistered over gateway 1: the room is gone, its PIN's lease (running until now)
    # released.
    lease = e2e.client.get_workflow_handle(e2e.settings.pin_lease_id(pin))
    assert (await lease.describe()).status is WorkflowExecutionStatus.RUNNING, "no lease held"
    retries = await e2e.backend(e2e.step("unregister", room, gateway=1))
    assert retries == 0, f"with no fault, the unregistration took {retries} retries"
    status, _ = await e2e.api("GET", room, gateway=0)
    assert status == 404, "the room is still registered"
    await eventually(
        lambda: _completed(lease), message="the PIN's lease was not released on unregister"
    )

    # Brought back as a supervisor would, for what follows: two workers again.
    assert e2e.stack.revive() == [killed.name]
    await e2e.stack.wait_ready(60)
    await eventually(
        lambda: _both_polling(e2e), within=60, message="the revived worker does not poll"
    )


async def test_a_temporal_server_restart_loses_no_room_and_registration_works_after_it(
    e2e: ClusterStack,
) -> None:
    # Before: a registered room, live in LiveKit, with its rule.
    assert await e2e.backend(e2e.step("register", KEPT_ROOM, via="api", windows=None)) == 0, (
        "with no fault, the registration needed retries"
    )
    kept_pin = e2e.model.rooms[KEPT_ROOM].pin
    assert kept_pin is not None, "the API answered no PIN"
    await e2e.livekit_step("open", KEPT_ROOM, identity="web-bob", empty_timeout=600.0)
    (rule_before,) = await eventually(
        lambda: e2e.rules_of(KEPT_ROOM), within=30, message="no rule for the live room"
    )

    server_before = e2e.cluster.env["TEMPORAL_CLUSTER_PID"]
    await asyncio.to_thread(e2e.cluster.restart_server)
    assert e2e.cluster.env["TEMPORAL_CLUSTER_PID"] != server_before, "the server did not restart"

    # After: the room keeps its PIN (as the API and its workflow tell) and its rule, which
    # still routes the PIN into the room.
    body = await eventually(
        lambda: _answered(e2e, KEPT_ROOM), within=60, message="the API did not come back"
    )
    assert (body["pin"], body["state"]) == (kept_pin, TelephonyState.OPEN), (
        "the room lost its PIN or its state in the restart"
    )
    assert (await e2e.telephony.get_status(KEPT_ROOM)).rule_id == rule_before.rule_id, (
        "the room's workflow forgot its rule"
    )
    assert await e2e.rules_of(KEPT_ROOM) == [rule_before], "the rule changed in the restart"
    answer = await e2e.dial(kept_pin, KEPT_ROOM)
    assert answer.get("accepted") and answer.get("room_name") == KEPT_ROOM, answer

    # A registration after the restart works the whole way: PIN, rule when live, call, rule
    # gone when the room finishes. (Retries through the server's warm-up are a backend's job.)
    retries = await e2e.backend(
        e2e.step("register", AFTER_ROOM, gateway=1, via="api", windows=None)
    )
    after_pin = e2e.model.rooms[AFTER_ROOM].pin
    assert after_pin is not None and after_pin != kept_pin, (
        f"the registration after the restart ({retries} retries) got no PIN of its own"
    )
    await e2e.livekit_step("open", AFTER_ROOM, identity="web-carol", empty_timeout=600.0)
    (rule_after,) = await eventually(
        lambda: e2e.rules_of(AFTER_ROOM), within=30, message="no rule after the restart"
    )
    assert rule_after.pin == after_pin, "the new room's rule carries another PIN"
    answer = await e2e.dial(after_pin, AFTER_ROOM)
    assert answer.get("accepted") and answer.get("room_name") == AFTER_ROOM, answer
    await e2e.livekit_step("close", AFTER_ROOM)
    await eventually(
        lambda: _no_rules(e2e, AFTER_ROOM), within=30, message="the rule stayed after the end"
    )


async def test_postgresql_visibility_finds_the_rooms_by_their_search_attributes(
    e2e: ClusterStack,
) -> None:
    queue = e2e.settings.telephony_task_queue
    running = contracts.running_rooms_query(task_queue=queue)
    open_rooms = contracts.running_rooms_query(state=TelephonyState.OPEN, task_queue=queue)
    idle_rooms = contracts.running_rooms_query(state=TelephonyState.IDLE, task_queue=queue)
    by_room_id = (
        f"{contracts.TELEPHONY_ROOM_ID.name} = '{SESSION_ROOM}' "
        f"AND {contracts.TELEPHONY_STATE.name} = '{TelephonyState.CLOSED}' "
        "AND ExecutionStatus = 'Completed'"
    )
    expected = {
        running: {KEPT_ROOM, AFTER_ROOM},
        open_rooms: {KEPT_ROOM},
        idle_rooms: {AFTER_ROOM},
        by_room_id: {SESSION_ROOM},  # unregistered: its workflow completed, closed
        # The registered rooms' leases, and the sentinel PIN's.
        contracts.running_leases_query(task_queue=queue): {
            KEPT_ROOM,
            AFTER_ROOM,
            contracts.SENTINEL_ROOM_ID,
        },
    }
    for query, rooms in expected.items():
        # Visibility follows the workflows' upserts a moment later.
        await eventually(
            functools.partial(_found, e2e, query, rooms), message=f"{query} did not find {rooms}"
        )


async def test_the_reconcile_schedule_exists_and_a_triggered_pass_completes(
    e2e: ClusterStack,
) -> None:
    handle = e2e.client.get_schedule_handle(contracts.RECONCILE_SCHEDULE_ID)
    described = await handle.describe()  # created by the workers at start
    action = described.schedule.action
    assert isinstance(action, ScheduleActionStartWorkflow), action
    assert (action.workflow, action.task_queue) == (
        contracts.RECONCILE_WORKFLOW,
        e2e.settings.telephony_task_queue,
    ), "the schedule does not start the stack's reconciliation"
    intervals = [interval.every for interval in described.schedule.spec.intervals]
    assert intervals == [timedelta(seconds=RECONCILE_INTERVAL_SECONDS)], "not the set interval"

    # One pass at a time (overlap SKIP): trigger once none is running, then wait for its run.
    await eventually(lambda: _idle(handle), within=60, message="a reconciliation never ended")
    before = (await handle.describe()).info.num_actions
    await handle.trigger()
    started = await eventually(
        lambda: _started_since(handle, before), within=30, message="the trigger started no pass"
    )
    run = e2e.client.get_workflow_handle(started, result_type=ReconcileReport)
    report = await asyncio.wait_for(run.result(), 120)
    assert isinstance(report, ReconcileReport), report
    # What it saw, through LiveKit and PostgreSQL visibility: the live room's rule, nothing
    # orphaned (the sentinel rule is no room's); the two registered rooms' leases and the
    # sentinel's, none released.
    assert (report.managed_rules, report.orphans_deleted) == (1, 0), report
    assert (report.leases_checked, report.leases_released) == (3, 0), report
    assert report.sentinel_rule_id is not None, report


async def test_the_chaos_invariants_hold_at_the_end(e2e: ClusterStack) -> None:
    model = e2e.model
    # Invariants 1-3 (rules, ownership, PINs and leases), re-observed until they hold.
    seen, structural = await _settled(model, e2e.livekit, e2e.telephony, e2e.settings)
    assert not structural, [violation.line() for violation in structural]
    judged = {
        name: invariants.should_open(room, name in seen.live_rooms, seen.at, LEAD)
        for name, room in model.rooms.items()
    }
    assert judged == {SESSION_ROOM: False, KEPT_ROOM: True, AFTER_ROOM: False}, judged
    # Invariant 4: every PIN the API ever answered, dialled: only the live room's lands.
    checks: Counter[str] = Counter()
    calls = await _calls(
        model, seen, e2e.livekit, e2e.telephony, e2e.settings, e2e.session, e2e.stack, checks
    )
    assert not calls, [violation.line() for violation in calls]
    assert checks["calls"] == 3, checks  # the kept PIN lands; the after and session PINs don't
    # No PIN and no secret in any process's log.
    leaks = invariants.check_logs(e2e.stack.log_files(), model.all_pins(), e2e.stack.secrets())
    assert not leaks, [violation.line() for violation in leaks]


# --- probes -------------------------------------------------------------------------------------


async def _both_polling(e2e: ClusterStack) -> bool:
    return await e2e.polling_workers() == {worker.name for worker in e2e.stack.workers}


async def _no_rules(e2e: ClusterStack, room: str) -> bool:
    return not await e2e.rules_of(room)


async def _state_is(e2e: ClusterStack, room: str, state: TelephonyState) -> bool:
    status, body = await e2e.api("GET", room, gateway=0)
    return status == 200 and body.get("state") == state


async def _answered(e2e: ClusterStack, room: str) -> dict[str, Any] | None:
    """The room over the API, once a gateway answers 200 (while Temporal warms up: 503s)."""
    try:
        status, body = await e2e.api("GET", room, gateway=0)
    except (aiohttp.ClientError, TimeoutError):
        return None
    return body if status == 200 else None


async def _completed(handle: WorkflowHandle[Any, Any]) -> bool:
    return (await handle.describe()).status is WorkflowExecutionStatus.COMPLETED


async def _found(e2e: ClusterStack, query: str, rooms: set[str]) -> bool:
    return await e2e.room_ids(query) == rooms


async def _idle(handle: ScheduleHandle) -> bool:
    return not (await handle.describe()).info.running_actions


async def _started_since(handle: ScheduleHandle, before: int) -> str | None:
    """The workflow id of the newest run the schedule started, once it started one more."""
    info = (await handle.describe()).info
    runs = [
        action.action.workflow_id
        for action in info.recent_actions
        if isinstance(action.action, ScheduleActionExecutionStartWorkflow)
    ]
    return runs[-1] if info.num_actions > before and runs else None
