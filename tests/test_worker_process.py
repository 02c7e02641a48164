"""The worker as operators run it: `python -m worker`, configured by the environment."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
from temporalio.testing import WorkflowEnvironment

from livekit_emulator import LiveKitEmulator
from telephony import contracts
from telephony.client import TelephonyClient
from tests.fixtures import keys
from tests.fixtures.livekit import EMULATOR_API_KEY, EMULATOR_API_SECRET
from tests.fixtures.polling import eventually
from tests.fixtures.processes import free_port
from tests.fixtures.stack import PHONE_NUMBER, stack_settings
from tests.fixtures.temporal import start_dev_server


@asynccontextmanager
async def worker_process(
    env: WorkflowEnvironment, emulator: LiveKitEmulator, task_queue: str, **extra: str
) -> AsyncIterator[asyncio.subprocess.Process]:
    target = env.client.service_client.config.target_host
    variables = {
        **os.environ,
        "ROOM_TELEPHONY_ENABLED": "true",
        "ROOM_TELEPHONY_PHONE_NUMBER": PHONE_NUMBER,
        "LIVEKIT_URL": emulator.url,
        "LIVEKIT_API_KEY": EMULATOR_API_KEY,
        "LIVEKIT_API_SECRET": EMULATOR_API_SECRET,
        **keys.ENVIRONMENT,
        "TEMPORAL_ADDRESS": target,
        "TELEPHONY_TASK_QUEUE": task_queue,
        **extra,
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "worker",
        env=variables,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        yield process
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def test_the_worker_process_serves_rooms_and_stops_cleanly_on_sigterm(
    temporal_env: WorkflowEnvironment, emulator: LiveKitEmulator
) -> None:
    settings = stack_settings(emulator)
    client = TelephonyClient(temporal_env.client, settings)
    async with worker_process(temporal_env, emulator, settings.telephony_task_queue) as process:
        info = await asyncio.wait_for(client.register_room(str(uuid.uuid4())), 30)
        assert len(info.pin) == settings.room_telephony_pin_length

        process.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(process.wait(), 30)
        assert process.stdout is not None
        output = (await process.stdout.read()).decode()

    assert code == 0, output
    assert "worker stopped" in output
    assert info.pin not in output  # the PIN is never logged
    assert EMULATOR_API_SECRET not in output


async def test_the_worker_process_ensures_the_sentinel_rule_at_start(
    emulator: LiveKitEmulator,
) -> None:
    settings = stack_settings(emulator)

    # A server of its own: the reconcile schedule is one per namespace, and a pass left running
    # by another test's worker (on a task queue nobody polls any more) would make this one skip.
    async with (
        await start_dev_server(ui=False) as own,
        worker_process(own, emulator, settings.telephony_task_queue),
    ):
        (rule,) = await eventually(
            lambda: [
                r
                for r in emulator.dispatch_rules()
                if r.attributes.get(contracts.SENTINEL_ATTRIBUTE) == "true"
            ],
            within=60,
            message="the sentinel rule, from the reconciliation at start",
        )

    assert rule.rule.dispatch_rule_direct.pin == settings.sentinel_pin()


async def test_the_worker_exposes_temporal_metrics_in_prometheus_format(
    temporal_env: WorkflowEnvironment, emulator: LiveKitEmulator
) -> None:
    settings = stack_settings(emulator)
    port = free_port()
    async with worker_process(
        temporal_env,
        emulator,
        settings.telephony_task_queue,
        TELEPHONY_WORKER_METRICS_PORT=str(port),
    ):
        await TelephonyClient(temporal_env.client, settings).register_room(str(uuid.uuid4()))

        async def scrape() -> str | None:
            try:
                async with (
                    aiohttp.ClientSession() as session,
                    session.get(f"http://127.0.0.1:{port}/metrics") as response,
                ):
                    text = await response.text()
                    return text if "temporal_" in text else None
            except aiohttp.ClientError:
                return None

        metrics = await eventually(scrape, message="metrics endpoint answers")

    assert "# TYPE" in metrics
    assert "temporal_workflow_completed" in metrics or "temporal_request" in metrics


async def test_a_bad_setting_stops_the_worker_with_one_line_naming_the_variable(
    temporal_env: WorkflowEnvironment, emulator: LiveKitEmulator
) -> None:
    async with worker_process(
        temporal_env, emulator, "unused", ROOM_TELEPHONY_PIN_LENGTH="3"
    ) as process:
        code = await asyncio.wait_for(process.wait(), 30)
        assert process.stdout is not None
        lines = (await process.stdout.read()).decode().strip().splitlines()

    assert code == 2
    assert len(lines) == 1 and "ROOM_TELEPHONY_PIN_LENGTH" in lines[0]


async def _read_until(process: asyncio.subprocess.Process, marker: str, within: float) -> str:
    assert process.stdout is not None
    seen: list[str] = []
    async with asyncio.timeout(within):
        while not seen or marker not in seen[-1]:
            line = await process.stdout.readline()
            assert line, f"worker exited before {marker!r}:\n{''.join(seen)}"
            seen.append(line.decode())
    return "".join(seen)


async def test_a_worker_started_while_temporal_is_down_waits_for_it_and_then_serves(
    temporal_env: WorkflowEnvironment, emulator: LiveKitEmulator
) -> None:
    settings = stack_settings(emulator)
    port = free_port()
    address = f"127.0.0.1:{port}"
    async with worker_process(
        temporal_env, emulator, settings.telephony_task_queue, TEMPORAL_ADDRESS=address
    ) as process:
        waiting = await _read_until(process, "retrying in", 30)
        assert f"Temporal at {address} is not reachable (connection refused)" in waiting
        assert "Traceback" not in waiting and "tonic" not in waiting

        async with await start_dev_server(port=port, ui=False) as late:
            await _read_until(process, "worker running", 60)
            client = TelephonyClient(late.client, settings)
            info = await asyncio.wait_for(client.register_room(str(uuid.uuid4())), 30)

    assert len(info.pin) == settings.room_telephony_pin_length
