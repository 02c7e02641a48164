"""Smoke tests of the real Temporal cluster (`scripts/temporal-cluster.sh`: temporal-server v1.32.0
on PostgreSQL, with docker-compose's `deploy/temporal/` config): the service's search attributes on
SQL visibility, a visibility query on them, a Temporal Schedule, and a workflow that outlives a
temporal-server restart.

Skipped with one line unless the cluster was built (`scripts/temporal-cluster.sh install`); a
failure instead with `TEMPORAL_CLUSTER_REQUIRED=1`.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from temporalio import workflow
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionExecutionStartWorkflow,
    ScheduleActionStartWorkflow,
    ScheduleIntervalSpec,
    ScheduleSpec,
    ScheduleState,
    WorkflowExecutionStatus,
)
from temporalio.common import SearchAttributePair, TypedSearchAttributes
from temporalio.worker import Worker

from telephony.contracts import SEARCH_ATTRIBUTES, TELEPHONY_ROOM_ID, TELEPHONY_STATE
from tests.fixtures.polling import eventually
from tests.fixtures.temporal_cluster import TemporalCluster
from worker.search_attributes import ensure_search_attributes, missing_search_attributes

pytestmark = pytest.mark.temporal_cluster


@workflow.defn(sandboxed=False)
class Notebook:
    """Keeps the notes it is sent until told to finish, then marks itself closed, returns them."""

    def __init__(self) -> None:
        self._notes: list[str] = []
        self._done = False

    @workflow.run
    async def run(self, title: str) -> list[str]:
        await workflow.wait_condition(lambda: self._done)
        workflow.upsert_search_attributes([TELEPHONY_STATE.value_set("closed")])
        return [title, *self._notes]

    @workflow.signal
    def note(self, text: str) -> None:
        self._notes.append(text)

    @workflow.signal
    def finish(self) -> None:
        self._done = True

    @workflow.query
    def notes(self) -> list[str]:
        return list(self._notes)


@pytest.fixture
async def client(temporal_cluster: TemporalCluster) -> AsyncIterator[Client]:
    client = await temporal_cluster.client()
    await ensure_search_attributes(client)  # what the worker does at start
    yield client


def _task_queue() -> str:
    return f"temporal-cluster-{uuid.uuid4().hex[:8]}"


def _worker(client: Client, task_queue: str) -> Worker:
    return Worker(client, task_queue=task_queue, workflows=[Notebook])


async def _ids(client: Client, query: str) -> list[str]:
    return [execution.id async for execution in client.list_workflows(query)]


async def test_the_worker_registers_its_search_attributes_as_keywords(
    temporal_cluster: TemporalCluster,
) -> None:
    client = await temporal_cluster.client()
    await ensure_search_attributes(client)
    assert await missing_search_attributes(client) == []
    listing = await client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=client.namespace)
    )
    for key in SEARCH_ATTRIBUTES:
        assert listing.custom_attributes[key.name] == IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD
    # A second worker start finds them and adds nothing.
    assert await ensure_search_attributes(client) == []


async def test_sql_visibility_finds_a_room_by_its_search_attributes(client: Client) -> None:
    room = f"room-{uuid.uuid4()}"
    task_queue = _task_queue()
    async with _worker(client, task_queue):
        handle = await client.start_workflow(
            Notebook.run,
            "visibility",
            id=f"temporal-cluster-visibility-{room}",
            task_queue=task_queue,
            search_attributes=TypedSearchAttributes(
                [
                    SearchAttributePair(TELEPHONY_ROOM_ID, room),
                    SearchAttributePair(TELEPHONY_STATE, "open"),
                ]
            ),
        )
        open_query = f'TelephonyRoomId = "{room}" AND TelephonyState = "open"'
        assert await eventually(
            lambda: _ids(client, open_query), message=f"no workflow for {open_query}"
        ) == [handle.id]
        assert await _ids(client, f'TelephonyRoomId = "{room}" AND TelephonyState = "closed"') == []

        # The workflow's own upsert reaches visibility too.
        await handle.signal(Notebook.finish)
        assert await handle.result() == ["visibility"]
        closed_query = (
            f'TelephonyRoomId = "{room}" AND TelephonyState = "closed" '
            "AND ExecutionStatus = 'Completed'"
        )
        assert await eventually(
            lambda: _ids(client, closed_query), message=f"no workflow for {closed_query}"
        ) == [handle.id]


async def test_a_schedule_is_created_described_and_triggered(client: Client) -> None:
    schedule_id = f"temporal-cluster-schedule-{uuid.uuid4().hex[:8]}"
    task_queue = _task_queue()
    handle = await client.create_schedule(
        schedule_id,
        Schedule(
            action=ScheduleActionStartWorkflow(
                Notebook.run, "scheduled", id=f"{schedule_id}-run", task_queue=task_queue
            ),
            spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=timedelta(hours=1))]),
            state=ScheduleState(paused=True, note="smoke test"),
        ),
    )
    started: list[str] = []
    try:
        described = await handle.describe()
        assert described.id == schedule_id
        assert [i.every for i in described.schedule.spec.intervals] == [timedelta(hours=1)]
        action = described.schedule.action
        assert isinstance(action, ScheduleActionStartWorkflow)
        assert (action.workflow, action.task_queue) == ("Notebook", task_queue)
        assert described.schedule.state.paused
        assert described.schedule.state.note == "smoke test"

        # The scheduler runs on the server's own worker service: a trigger starts one run.
        await handle.trigger()

        async def one_action() -> bool:
            info = (await handle.describe()).info
            started[:] = [
                a.action.workflow_id
                for a in info.recent_actions
                if isinstance(a.action, ScheduleActionExecutionStartWorkflow)
            ]
            return info.num_actions >= 1

        await eventually(one_action, within=30, message="the triggered schedule started nothing")
        assert started and started[0].startswith(f"{schedule_id}-run")
    finally:
        await handle.delete()
        for workflow_id in started:
            await client.get_workflow_handle(workflow_id).terminate("smoke test done")


async def test_a_workflow_outlives_a_temporal_server_restart(
    temporal_cluster: TemporalCluster, client: Client
) -> None:
    task_queue = _task_queue()
    workflow_id = f"temporal-cluster-durable-{uuid.uuid4().hex[:8]}"
    async with _worker(client, task_queue):
        handle = await client.start_workflow(
            Notebook.run, "durable", id=workflow_id, task_queue=task_queue
        )
        await handle.signal(Notebook.note, "before restart")
        assert await eventually(
            lambda: handle.query(Notebook.notes), message="the signal was not applied"
        ) == ["before restart"]

    server_before = temporal_cluster.env["TEMPORAL_CLUSTER_PID"]
    seconds = temporal_cluster.restart_server()
    assert seconds > 0
    assert temporal_cluster.env["TEMPORAL_CLUSTER_PID"] != server_before  # a new process

    # A new connection and a new worker: everything comes back from PostgreSQL.
    after = await temporal_cluster.client()
    again = after.get_workflow_handle(workflow_id)
    assert (await again.describe()).status is WorkflowExecutionStatus.RUNNING
    assert await eventually(
        lambda: _ids(after, f'WorkflowId = "{workflow_id}"'), message="not in visibility"
    ) == [workflow_id]
    async with _worker(after, task_queue):
        await again.signal(Notebook.note, "after restart")
        await again.signal(Notebook.finish)
        assert await again.result() == ["durable", "before restart", "after restart"]
