"""A Temporal outage: webhooks answer 503 with Retry-After (LiveKit retries), and once Temporal is
back the redelivered events are applied; nothing is lost.

Uses its own Temporal dev server on a fixed port with an on-disk database, so the server can be
stopped and started again with the same state while the gateway and worker keep their clients.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from tests.fixtures.gateway import Gateway, gateway_stack, webhook_body
from tests.fixtures.livekit import EmulatorFactory
from tests.fixtures.polling import eventually
from tests.fixtures.processes import free_port
from tests.fixtures.temporal import start_dev_server
from webhook_gateway import Deadlines

# Short, so the test does not wait 5 s for each refused delivery.
DEADLINES = Deadlines(webhook_seconds=1.0, api_seconds=5.0)


class RestartableTemporal:
    """A dev server that can be stopped and restarted on the same port with the same database."""

    def __init__(self, database: Path) -> None:
        self.port = free_port()
        self.database = database
        self.env: WorkflowEnvironment | None = None

    async def start(self) -> WorkflowEnvironment:
        self.env = await start_dev_server(
            port=self.port, ui=False, dev_server_database_filename=str(self.database)
        )
        return self.env

    async def stop(self) -> None:
        if self.env is not None:
            await self.env.shutdown()
            self.env = None


@pytest.fixture
async def restartable_temporal(tmp_path: Path) -> AsyncIterator[RestartableTemporal]:
    temporal = RestartableTemporal(tmp_path / "temporal.db")
    await temporal.start()
    try:
        yield temporal
    finally:
        await temporal.stop()


async def test_webhooks_refused_during_a_temporal_outage_are_applied_once_it_is_back(
    restartable_temporal: RestartableTemporal, emulator_factory: EmulatorFactory
) -> None:
    # LiveKit retries a refused webhook with backoff; enough attempts to outlast the outage.
    emulator = await emulator_factory(webhook_max_attempts=12, webhook_retry_backoff=0.1)
    assert restartable_temporal.env is not None
    async with gateway_stack(restartable_temporal.env, emulator, deadlines=DEADLINES) as gw:
        emulator.add_webhook_url(f"{gw.gateway.url}/livekit/webhook")
        room = str(uuid.uuid4())
        assert (await gw.gateway.api("PUT", f"/rooms/{room}")).status == 200

        await restartable_temporal.stop()
        livekit_room = await emulator.create_room(room, empty_timeout=600)
        await emulator.join_participant(room, "web-alice")
        # A webhook sent now is refused with 503 and a Retry-After, not acknowledged and lost.
        probe = webhook_body("participant_joined", room, sid=livekit_room.sid)
        refused = await gw.gateway.signed_webhook(probe)
        assert (refused.status, refused.json["error"]) == (503, "temporal_unavailable")
        assert int(refused.headers["Retry-After"]) > 0
        # The emulator's own room_started delivery was refused the same way.
        await eventually(
            lambda: _refused_room_started(gw.gateway), message="room_started answered 503"
        )
        assert gw.stack.rules_for(room) == []

        await restartable_temporal.start()

        await eventually(lambda: gw.stack.rules_for(room), message="rule created after outage")
        assert emulator.webhook_failures == []
        redelivered = await gw.gateway.signed_webhook(probe)
        assert (redelivered.status, redelivered.json["status"]) == (200, "processed")


async def _refused_room_started(gateway: Gateway) -> bool:
    metrics = (await gateway.get("/metrics")).json
    return 'event="room_started",outcome="unavailable"' in metrics
