"""The worker process: room workflows, PIN leases, reconciliation and every LiveKit side effect."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import logging
from collections.abc import AsyncIterator, Sequence
from datetime import timedelta
from typing import NoReturn

from temporalio.client import Client
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig
from temporalio.worker import Worker

from activities import PinSource, build_activities, open_livekit_api
from telephony.process import EXIT_OK, exit_process, start_process, stop_on_signals
from telephony.settings import Settings
from telephony.temporal import connect_temporal, temporal_connection_problem
from worker.schedule import ensure_reconcile_schedule, reconcile_now
from worker.search_attributes import ensure_search_attributes
from workflows.pin_lease import PinLeaseWorkflow
from workflows.reconcile import ReconcileWorkflow
from workflows.room import RoomTelephonyWorkflow
from workflows.trunk_numbers import TrunkNumbersWorkflow

log = logging.getLogger(__name__)

WORKFLOWS: Sequence[type] = (
    RoomTelephonyWorkflow,
    PinLeaseWorkflow,
    ReconcileWorkflow,
    TrunkNumbersWorkflow,
)
# In-flight activities get this long to finish on shutdown; Temporal retries the rest elsewhere.
GRACEFUL_SHUTDOWN = timedelta(seconds=20)
# Waits between attempts to reach Temporal at start, the last one repeated.
CONNECT_BACKOFF_SECONDS = (1.0, 2.0, 4.0, 8.0, 15.0)


def metrics_runtime(settings: Settings) -> Runtime | None:
    """A runtime exporting Temporal SDK metrics in Prometheus format, if a port is configured."""
    if settings.telephony_worker_metrics_port is None:
        return None
    address = f"{settings.telephony_gateway_host}:{settings.telephony_worker_metrics_port}"
    return Runtime(telemetry=TelemetryConfig(metrics=PrometheusConfig(bind_address=address)))


@contextlib.asynccontextmanager
async def running_worker(
    settings: Settings,
    client: Client,
    *,
    pin_source: PinSource | None = None,
) -> AsyncIterator[Worker]:
    """A started worker on `TELEPHONY_TASK_QUEUE`, shut down gracefully on exit."""
    async with open_livekit_api(settings) as livekit:
        worker = Worker(
            client,
            task_queue=settings.telephony_task_queue,
            workflows=list(WORKFLOWS),
            activities=build_activities(settings, livekit, client, pin_source=pin_source),
            graceful_shutdown_timeout=GRACEFUL_SHUTDOWN,
        )
        async with worker:
            yield worker


async def connect_when_reachable(
    settings: Settings, runtime: Runtime | None, stop: asyncio.Event
) -> Client | None:
    """A client once Temporal answers (None if `stop` is set first).

    Temporal down when the worker starts (a rolling restart, a cluster still coming up) is an
    outage to wait out with one line per attempt, not a crash with a traceback.
    """
    for attempt in itertools.count():
        try:
            return await connect_temporal(settings, runtime=runtime)
        except RuntimeError as exc:
            delay = CONNECT_BACKOFF_SECONDS[min(attempt, len(CONNECT_BACKOFF_SECONDS) - 1)]
            log.warning(
                "Temporal at %s is not reachable (%s); retrying in %gs",
                settings.temporal_address,
                temporal_connection_problem(exc),
                delay,
            )
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), delay)
        if stop.is_set():
            return None
    raise AssertionError("unreachable")


async def run_worker(settings: Settings, stop: asyncio.Event | None = None) -> None:
    """Connect, register search attributes, and run until `stop` is set (or SIGTERM/SIGINT)."""
    stop = stop or stop_on_signals()
    client = await connect_when_reachable(settings, metrics_runtime(settings), stop)
    if client is None:
        log.info("worker stopped before Temporal was reachable")
        return
    await ensure_search_attributes(client)
    await ensure_reconcile_schedule(client, settings)
    async with running_worker(settings, client):
        await reconcile_now(client)
        log.info(
            "worker running on task queue %s (namespace %s)",
            settings.telephony_task_queue,
            settings.temporal_namespace,
        )
        await stop.wait()
        log.info("stopping: waiting up to %ss for in-flight activities", GRACEFUL_SHUTDOWN.seconds)
    log.info("worker stopped")


def main(argv: Sequence[str] | None = None) -> NoReturn:
    """`python -m worker`: settings from the environment, run until SIGTERM/SIGINT."""
    argparse.ArgumentParser(
        prog="python -m worker",
        description="The meet-telephony Temporal worker (the same as `meet-telephony worker`): "
        "settings from the environment; runs until SIGTERM/SIGINT.",
    ).parse_args(argv)
    settings = start_process("python -m worker")
    asyncio.run(run_worker(settings))
    exit_process(EXIT_OK)
