"""The empty workflows the floors are measured with (kept apart: the workflow sandbox re-imports
this module, which must not pull in the rest of the benchmark)."""

from __future__ import annotations

import time
from datetime import timedelta

from temporalio import activity, workflow

EMPTY_ACTIVITY = "bench_empty_activity"
GO_SIGNAL = "go"
REGISTER_UPDATE = "register"

# When each floor workflow's activity ran (this process's perf_counter), by workflow id.
activity_ran_at: dict[str, float] = {}


@activity.defn(name=EMPTY_ACTIVITY)
async def empty_activity(workflow_id: str) -> None:
    activity_ran_at[workflow_id] = time.perf_counter()


@workflow.defn(name="BenchSignalFloor")
class SignalFloorWorkflow:
    """Waits for one signal, runs one empty activity, completes: the least a room workflow
    does between a `room_started` signal and its dispatch rule."""

    def __init__(self) -> None:
        self.go = False

    @workflow.run
    async def run(self) -> None:
        await workflow.wait_condition(lambda: self.go)
        await workflow.execute_activity(
            EMPTY_ACTIVITY,
            workflow.info().workflow_id,
            start_to_close_timeout=timedelta(seconds=30),
        )

    @workflow.signal(name=GO_SIGNAL)
    def signal_go(self) -> None:
        self.go = True


@workflow.defn(name="BenchUpdateFloor")
class UpdateFloorWorkflow:
    """Started by update-with-start; the update answers at once and the run completes (so that
    no floor workflow stays behind to weigh on later measurements)."""

    def __init__(self) -> None:
        self.done = False

    @workflow.run
    async def run(self) -> None:
        await workflow.wait_condition(lambda: self.done)

    @workflow.update(name=REGISTER_UPDATE)
    def register(self) -> str:
        self.done = True
        return "ok"
