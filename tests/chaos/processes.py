"""The whole system as real processes on 127.0.0.1, for one chaos run.

Temporal (the CLI dev server on a SQLite file, so that a restart keeps every room and PIN), the
LiveKit emulator (`python -m livekit_emulator`, every webhook sent to both gateways), two workers
(`python -m worker`) and two gateways (`python -m webhook_gateway`), all configured through
their environment. Each is a `tests.fixtures.processes.Child` logging to `<run dir>/<name>.log`.

With `external_temporal_address` the stack starts no Temporal of its own and runs against that
one (e.g. the PostgreSQL cluster of `tests/fixtures/temporal_cluster.py`, which restarts it).
"""

from __future__ import annotations

import asyncio
import base64
import secrets
import sys
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from telephony.contracts import SEARCH_ATTRIBUTES
from tests.fixtures import keys
from tests.fixtures.processes import (
    HOST,
    Child,
    free_port,
    installed_binary,
    service_process_environment,
    temporal_cli_healthy,
    wait_until,
)

PHONE_NUMBER = "+33123456789"
LIVEKIT_KEY = "chaos"
# Short intervals, so that quiescence is seconds, not minutes.
LIVENESS_INTERVAL_SECONDS = 2.0
SCHEDULE_LEAD_SECONDS = 5.0
LEASE_GRACE_SECONDS = 3.0
RECONCILE_INTERVAL_SECONDS = 30.0
EMPTY_TIMEOUT_SECONDS = 2.0


@dataclass
class ChaosStack:
    run_dir: Path
    task_queue: str
    # "host:port" of a Temporal already running (its owner starts and restarts it); None: a dev
    # server of the stack's own on `temporal_port`.
    external_temporal_address: str | None = None
    temporal_namespace: str = "default"
    temporal_port: int = field(default_factory=free_port)
    livekit_port: int = field(default_factory=free_port)
    gateway_ports: list[int] = field(default_factory=lambda: [free_port(), free_port()])
    api_token: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    livekit_secret: str = field(default_factory=lambda: "chaos-lk-" + secrets.token_urlsafe(32))
    temporal: Child | None = None
    emulator: Child | None = None
    workers: list[Child] = field(default_factory=list)
    gateways: list[Child] = field(default_factory=list)

    # --- addresses and settings ---------------------------------------------------------------

    @property
    def temporal_address(self) -> str:
        return self.external_temporal_address or f"{HOST}:{self.temporal_port}"

    @property
    def livekit_url(self) -> str:
        return f"http://{HOST}:{self.livekit_port}"

    @property
    def gateway_urls(self) -> list[str]:
        return [f"http://{HOST}:{port}" for port in self.gateway_ports]

    def service_environment(self) -> dict[str, str]:
        """The variables the workers and gateways run with (and this process's settings)."""
        return {
            "ROOM_TELEPHONY_ENABLED": "true",
            "ROOM_TELEPHONY_PHONE_NUMBER": PHONE_NUMBER,
            "ROOM_TELEPHONY_DEFAULT_COUNTRY": "FR",
            "ROOM_TELEPHONY_LIVENESS_INTERVAL": f"{LIVENESS_INTERVAL_SECONDS:g}",
            "ROOM_TELEPHONY_SCHEDULE_LEAD": f"{SCHEDULE_LEAD_SECONDS:g}",
            "LIVEKIT_URL": self.livekit_url,
            "LIVEKIT_API_KEY": LIVEKIT_KEY,
            "LIVEKIT_API_SECRET": self.livekit_secret,
            "TEMPORAL_ADDRESS": self.temporal_address,
            "TEMPORAL_NAMESPACE": self.temporal_namespace,
            "TELEPHONY_TASK_QUEUE": self.task_queue,
            "TELEPHONY_API_TOKEN": self.api_token,
            "TELEPHONY_GATEWAY_HOST": HOST,
            "TELEPHONY_RECONCILE_INTERVAL": f"{RECONCILE_INTERVAL_SECONDS:g}",
            "TELEPHONY_RECONCILE_LEASE_GRACE": f"{LEASE_GRACE_SECONDS:g}",
            "LOG_LEVEL": "INFO",
            **keys.ENVIRONMENT,
        }

    def secrets(self) -> dict[str, str]:
        """Every secret of the run, by name: none may appear in a log."""
        payload = [entry.split(":", 1)[1] for entry in keys.PAYLOAD_KEYS.split(",") if ":" in entry]
        named = {
            "TELEPHONY_API_TOKEN": self.api_token,
            "LIVEKIT_API_SECRET": self.livekit_secret,
            "TELEPHONY_PIN_HASH_KEY": keys.PIN_HASH_KEY,
        }
        for number, key in enumerate(payload):
            named[f"TELEPHONY_PAYLOAD_KEYS[{number}]"] = key
            named[f"TELEPHONY_PAYLOAD_KEYS[{number}] (raw)"] = base64.b64decode(key).decode(
                "latin-1"
            )
        return named

    def _child_env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        return service_process_environment(self.service_environment(), extra or {})

    # --- life ---------------------------------------------------------------------------------

    def _build(self) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        if self.external_temporal_address is None:
            self._build_temporal()
        python = sys.executable
        emulator_argv = [
            python, "-m", "livekit_emulator",
            "--host", HOST,
            "--port", str(self.livekit_port),
            *[a for url in self.gateway_urls for a in ("--webhook-url", f"{url}/livekit/webhook")],
            "--empty-timeout", f"{EMPTY_TIMEOUT_SECONDS:g}",
            "--trunk", PHONE_NUMBER,
            "--log-level", "INFO",
        ]  # fmt: skip
        emulator_env = service_process_environment(
            {"LIVEKIT_API_KEY": LIVEKIT_KEY, "LIVEKIT_API_SECRET": self.livekit_secret}
        )
        self.emulator = Child("livekit", emulator_argv, emulator_env, self.run_dir / "livekit.log")
        self.workers = [
            Child(f"worker{i}", [python, "-m", "worker"], self._child_env(),
                  self.run_dir / f"worker{i}.log")
            for i in (1, 2)
        ]  # fmt: skip
        self.gateways = [
            Child(
                f"gateway{i}",
                [python, "-m", "webhook_gateway"],
                self._child_env({"TELEPHONY_GATEWAY_PORT": str(port)}),
                self.run_dir / f"gateway{i}.log",
            )
            for i, port in enumerate(self.gateway_ports, start=1)
        ]

    def _build_temporal(self) -> None:
        temporal_argv = [
            installed_binary("temporal"), "server", "start-dev",
            "--ip", HOST,
            "--port", str(self.temporal_port),
            "--ui-port", str(free_port()),
            "--http-port", str(free_port()),
            "--metrics-port", str(free_port()),
            "--headless",
            "--db-filename", str(self.run_dir / "temporal.db"),
            "--log-level", "warn",
            "--dynamic-config-value", "frontend.enableUpdateWorkflowExecution=true",
            *[a for k in SEARCH_ATTRIBUTES for a in ("--search-attribute", f"{k.name}=Keyword")],
        ]  # fmt: skip
        base = service_process_environment()
        self.temporal = Child("temporal", temporal_argv, base, self.run_dir / "temporal.log")

    @property
    def children(self) -> list[Child]:
        found = [self.temporal, self.emulator, *self.workers, *self.gateways]
        return [child for child in found if child is not None]

    async def start(self) -> None:
        self._build()
        assert self.emulator is not None
        if self.temporal is not None:
            self.temporal.start()
        self.emulator.start()
        await self.wait_temporal()
        for child in [*self.workers, *self.gateways]:
            child.start()
        await self.wait_ready(90)

    async def wait_temporal(self, within: float = 60) -> None:
        """Temporal answers: the stack's dev server (which must be alive), or the external one."""
        temporal = self.temporal

        async def healthy() -> bool:
            if temporal is not None:
                temporal.check_alive()
            return await asyncio.to_thread(temporal_cli_healthy, self.temporal_address)

        what = (
            "Temporal dev server"
            if temporal is not None
            else f"Temporal at {self.temporal_address}"
        )
        await wait_until(healthy, what, within, every=0.3)

    async def _http_ok(self, url: str) -> bool:
        try:
            timeout = aiohttp.ClientTimeout(total=2)
            async with (
                aiohttp.ClientSession(timeout=timeout) as session,
                session.get(url) as response,
            ):
                return response.status == 200
        except (aiohttp.ClientError, TimeoutError):
            return False

    async def wait_ready(self, within: float = 60) -> None:
        """Every child alive, the emulator and both gateways answering."""

        async def ready() -> bool:
            for child in self.children:
                child.check_alive()
            probes = [f"{self.livekit_url}/", *(f"{u}/readyz" for u in self.gateway_urls)]
            return all(await asyncio.gather(*(self._http_ok(url) for url in probes)))

        await wait_until(ready, "chaos stack", within, every=0.3)

    async def gateway_up(self, index: int, within: float = 30) -> None:
        url = f"{self.gateway_urls[index]}/readyz"

        async def ready() -> bool:
            self.gateways[index].check_alive()
            return await self._http_ok(url)

        await wait_until(ready, self.gateways[index].name, within)

    def revive(self) -> list[str]:
        """Restart workers and gateways that exited on their own (as a supervisor such as
        Kubernetes would: e.g. a worker started while Temporal was down exits 1)."""
        revived = []
        for child in [*self.workers, *self.gateways]:
            if not child.alive:
                child.start()
                revived.append(child.name)
        return revived

    def stop(self) -> None:
        for child in reversed(self.children):
            child.stop()

    def log_files(self) -> list[Path]:
        return sorted(self.run_dir.glob("*.log"))
