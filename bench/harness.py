"""The stack a benchmark runs against, all on 127.0.0.1: Temporal (the CLI dev server, or the
PostgreSQL cluster of `scripts/temporal-cluster.sh`), the worker (`python -m worker`) and the
gateway (`python -m webhook_gateway`) as real processes configured through their environment,
and the LiveKit emulator inside this process, so that its clock times webhooks and rules.

Every process started here is in its own process group, stopped by its pid (SIGTERM, then
SIGKILL), and asked to die with this process (PR_SET_PDEATHSIG) if the benchmark is killed.
"""

from __future__ import annotations

import asyncio
import base64
import compileall
import contextlib
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import aiohttp
from temporalio.client import Client

from bench.machine import mib, rss_bytes, tree_rss_bytes
from bench.timed_emulator import RoomQueues, TimedEmulator
from telephony.client import TelephonyClient
from telephony.contracts import SEARCH_ATTRIBUTES
from telephony.settings import Settings, load_settings
from telephony.temporal import connect_temporal
from tests.fixtures import livekit_real
from tests.fixtures.processes import (
    HOST,
    Child,
    free_port,
    installed_binary,
    service_process_environment,
    temporal_cli_healthy,
    wait_until,
)

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"
CLUSTER_SCRIPT = REPO / "scripts" / "temporal-cluster.sh"
LIVEKIT_SCRIPT = REPO / "scripts" / "livekit-real.sh"
PHONE_NUMBER = "+33123456789"
LIVEKIT_KEY = "bench"
# 32+ characters: pyjwt warns on every token signed with a shorter secret.
LIVEKIT_SECRET = "bench-livekit-secret-" + secrets.token_urlsafe(24)
T = TypeVar("T")


def log(message: str) -> None:
    print(f"[bench] {message}", flush=True)


def _read_env_file(path: Path) -> dict[str, str]:
    pairs = (text.split("=", 1) for text in path.read_text().splitlines() if "=" in text)
    return {key: value for key, value in pairs}


# --- Temporal -----------------------------------------------------------------------------------


@dataclass
class TemporalServer:
    kind: str  # "dev" or "cluster"
    address: str
    namespace: str
    version: str
    processes: dict[str, int]  # name -> pid, for memory readings
    metrics_url: str | None = None
    child: Child | None = None
    run_dir: Path | None = None

    def rss_mib(self) -> dict[str, float | None]:
        return {name: mib(tree_rss_bytes(pid)) for name, pid in self.processes.items()}

    def stop(self) -> None:
        if self.child is not None:
            self.child.stop()
        if self.run_dir is not None:
            subprocess.run(
                [str(CLUSTER_SCRIPT), "stop"],
                env={**os.environ, "TEMPORAL_CLUSTER_DIR": str(self.run_dir)},
                capture_output=True,
                check=False,
                timeout=120,
            )
            shutil.rmtree(self.run_dir, ignore_errors=True)


async def start_dev_server(log_dir: Path) -> TemporalServer:
    """The Temporal CLI dev server, in memory (what `make dev` runs, minus SQLite)."""
    port, metrics = free_port(), free_port()
    argv = [
        installed_binary("temporal"),
        "server",
        "start-dev",
        "--ip",
        HOST,
        "--port",
        str(port),
        "--ui-port",
        str(free_port()),
        "--http-port",
        str(free_port()),
        "--metrics-port",
        str(metrics),
        "--headless",
        "--log-level",
        "warn",
        "--dynamic-config-value",
        "frontend.enableUpdateWorkflowExecution=true",
    ]
    for attribute in SEARCH_ATTRIBUTES:
        argv += ["--search-attribute", f"{attribute.name}=Keyword"]
    child = Child("temporal", argv, dict(os.environ), log_dir / "temporal.log")
    child.start()
    address = f"{HOST}:{port}"

    async def healthy() -> bool:
        child.check_alive()
        return await asyncio.to_thread(temporal_cli_healthy, address)

    await wait_until(healthy, "Temporal dev server", 60, every=0.3)
    return TemporalServer(
        kind="dev",
        address=address,
        namespace="default",
        version="CLI dev server, in memory",
        processes={"temporal dev server": child.pid},
        metrics_url=f"http://{HOST}:{metrics}/metrics",
        child=child,
    )


def cluster_unavailable() -> str | None:
    built = subprocess.run([str(CLUSTER_SCRIPT), "path"], capture_output=True, check=False)
    return None if built.returncode == 0 else "run scripts/temporal-cluster.sh install"


async def start_cluster() -> TemporalServer:
    """temporal-server on PostgreSQL through its script; the run dir is under the system temp
    dir (postgres runs as its own user and must be able to traverse it)."""
    reason = cluster_unavailable()
    if reason:
        raise RuntimeError(f"the Temporal cluster is not built: {reason}")
    run_dir = Path(tempfile.mkdtemp(prefix="bench-temporal-"))
    env = {
        **os.environ,
        "TEMPORAL_CLUSTER_DIR": str(run_dir),
        "TEMPORAL_CLUSTER_WATCH_PID": str(os.getpid()),
        "TEMPORAL_CLUSTER_LOG_LEVEL": "warn",
    }
    server = TemporalServer("cluster", "", "default", "", {}, run_dir=run_dir)
    done = await asyncio.to_thread(
        subprocess.run,
        [str(CLUSTER_SCRIPT), "start"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    if done.returncode != 0:
        server.stop()
        raise RuntimeError(f"the Temporal cluster did not start:\n{done.stderr[-2000:]}")
    info = _read_env_file(run_dir / "temporal.env")
    server.address = info["TEMPORAL_ADDRESS"]
    server.namespace = info["TEMPORAL_NAMESPACE"]
    server.version = f"temporal-server {info.get('TEMPORAL_CLUSTER_VERSION', '?')} on PostgreSQL"
    server.processes = {
        "temporal-server": int(info["TEMPORAL_CLUSTER_PID"]),
        "postgres": int(info["TEMPORAL_CLUSTER_POSTGRES_PID"]),
    }
    return server


# --- real LiveKit -------------------------------------------------------------------------------


def livekit_unavailable() -> str | None:
    """Why the real livekit-server cannot run here (one line), or None when it can."""
    return livekit_real.unavailable_reason()


def _start_failed(message: str) -> NoReturn:
    raise RuntimeError(message)


@contextlib.contextmanager
def real_livekit_server() -> Iterator[dict[str, str]]:
    """livekit-server + Redis on loopback through `scripts/livekit-real.sh`, as the tests'
    `real_livekit` fixture starts it (its `script_server`); yields the env file (LIVEKIT_URL,
    LIVEKIT_API_KEY, LIVEKIT_API_SECRET...). On exit both are stopped and the run dir removed:
    Redis keeps nothing on disk (`--save ''`), so every rule stored goes with it."""
    run_dir = Path(tempfile.mkdtemp(prefix="bench-livekit-"))
    try:
        with livekit_real.script_server(
            LIVEKIT_SCRIPT,
            "LIVEKIT_REAL_DIR",
            run_dir,
            "livekit.env",
            "real LiveKit",
            120,
            on_failure=_start_failed,
            LIVEKIT_REAL_WATCH_PID=str(os.getpid()),
            LIVEKIT_REAL_LOG_LEVEL="warn",
        ) as info:
            yield info
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)


# --- the service --------------------------------------------------------------------------------


def _pin_hash_key() -> str:
    return secrets.token_urlsafe(24)  # 32 url-safe characters


def _payload_keys() -> str:
    return "k1:" + base64.b64encode(secrets.token_bytes(32)).decode()


def service_environment(
    temporal: TemporalServer, livekit_url: str, livekit_key: str, livekit_secret: str
) -> dict[str, str]:
    """The variables the worker and the gateway run with (and this process's settings)."""
    return {
        "ROOM_TELEPHONY_ENABLED": "true",
        "ROOM_TELEPHONY_PHONE_NUMBER": PHONE_NUMBER,
        "ROOM_TELEPHONY_DEFAULT_COUNTRY": "FR",
        "LIVEKIT_URL": livekit_url,
        "LIVEKIT_API_KEY": livekit_key,
        "LIVEKIT_API_SECRET": livekit_secret,
        "TEMPORAL_ADDRESS": temporal.address,
        "TEMPORAL_NAMESPACE": temporal.namespace,
        "TELEPHONY_TASK_QUEUE": f"bench-{uuid.uuid4().hex[:8]}",
        "TELEPHONY_API_TOKEN": secrets.token_urlsafe(32),
        "TELEPHONY_PIN_HASH_KEY": _pin_hash_key(),
        "TELEPHONY_PAYLOAD_KEYS": _payload_keys(),
        "TELEPHONY_GATEWAY_HOST": HOST,
        "TELEPHONY_GATEWAY_PORT": str(free_port()),
        "TELEPHONY_WORKER_METRICS_PORT": str(free_port()),
        # No scheduled pass during a measurement: passes are started on purpose.
        "TELEPHONY_RECONCILE_INTERVAL": "86400",
        "LOG_LEVEL": "INFO",
    }


# The packages the worker and the gateway import (bytecode compiled before they start, below).
SERVICE_PACKAGES = ("telephony", "workflows", "activities", "worker", "webhook_gateway")


def compile_service_bytecode() -> None:
    """Byte-compile the service's packages, as `pip install` does for the image.

    The workflow sandbox imports a workflow's module afresh for every run it starts (a new room,
    each continue-as-new, each replay after a cache eviction). Without bytecode (a source
    checkout under PYTHONDONTWRITEBYTECODE=1, as on the benchmark machine) every such import
    compiles workflows/room.py again: about 8.5 ms of the worker's CPU per run, against 0.2 ms
    to load the bytecode, which made the measured worker slower than the image's. `compileall`
    writes the (git-ignored) `__pycache__` files whatever PYTHONDONTWRITEBYTECODE says.
    """
    for package in SERVICE_PACKAGES:
        compileall.compile_dir(REPO / package, quiet=1)


def settings_for(service: dict[str, str]) -> Settings:
    """This process's settings: the same values as the children's environment."""
    return load_settings(**{name.lower(): value for name, value in service.items()})


@dataclass
class Stack:
    temporal: TemporalServer
    emulator: TimedEmulator
    worker: Child
    gateway: Child
    service_env: dict[str, str]
    settings: Settings
    client: Client
    telephony: TelephonyClient
    session: aiohttp.ClientSession
    log_dir: Path
    trunk_id: str
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def gateway_url(self) -> str:
        return f"http://{HOST}:{self.service_env['TELEPHONY_GATEWAY_PORT']}"

    @property
    def worker_metrics_url(self) -> str:
        return f"http://{HOST}:{self.service_env['TELEPHONY_WORKER_METRICS_PORT']}/metrics"

    @property
    def api_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.service_env['TELEPHONY_API_TOKEN']}"}

    def check_alive(self) -> None:
        self.worker.check_alive()
        self.gateway.check_alive()

    def memory(self) -> dict[str, Any]:
        return {
            "worker_rss_mib": mib(rss_bytes(self.worker.pid)),
            "gateway_rss_mib": mib(rss_bytes(self.gateway.pid)),
            "temporal_rss_mib": self.temporal.rss_mib(),
            "bench_process_rss_mib": mib(rss_bytes(os.getpid())),
        }

    async def worker_metrics(self) -> dict[str, float]:
        return await scrape(self.session, self.worker_metrics_url)


_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)")


async def scrape(session: aiohttp.ClientSession, url: str) -> dict[str, float]:
    """A Prometheus text page, each metric name summed over its labels."""
    async with session.get(url) as response:
        text = await response.text()
    totals: dict[str, float] = {}
    for row in text.splitlines():
        match = _SAMPLE.match(row)
        if match and not row.startswith("#"):
            with contextlib.suppress(ValueError):
                totals[match.group(1)] = totals.get(match.group(1), 0.0) + float(match.group(3))
    return totals


async def _gateway_ready(session: aiohttp.ClientSession, url: str) -> bool:
    try:
        async with session.get(f"{url}/readyz") as response:
            return response.status == 200
    except aiohttp.ClientError:
        return False


@contextlib.asynccontextmanager
async def running_stack(kind: str = "dev", log_dir: Path | None = None) -> AsyncIterator[Stack]:
    """Temporal, the emulator, the worker and the gateway, stopped in reverse order on exit."""
    log_dir = log_dir or Path(tempfile.mkdtemp(prefix="meet-telephony-bench-"))
    log_dir.mkdir(parents=True, exist_ok=True)
    log(f"logs in {log_dir}")
    started = time.perf_counter()
    temporal = await (start_cluster() if kind == "cluster" else start_dev_server(log_dir))
    children: list[Child] = []
    emulator = TimedEmulator(LIVEKIT_KEY, LIVEKIT_SECRET)
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
    try:
        await emulator.start(HOST, 0)
        trunk_id = await emulator.create_inbound_trunk([PHONE_NUMBER], name="bench trunk")
        service = service_environment(temporal, emulator.url, LIVEKIT_KEY, LIVEKIT_SECRET)
        env = service_process_environment(service)
        await asyncio.to_thread(compile_service_bytecode)
        python = sys.executable
        for name, module in (("worker", "worker"), ("gateway", "webhook_gateway")):
            children.append(Child(name, [python, "-m", module], env, log_dir / f"{name}.log"))
            children[-1].start()
        worker, gateway = children
        settings = settings_for(service)
        client = await connect_temporal(settings)
        telephony = TelephonyClient(client, settings)
        stack = Stack(
            temporal,
            emulator,
            worker,
            gateway,
            service,
            settings,
            client,
            telephony,
            session,
            log_dir,
            trunk_id,
        )

        async def gateway_ready() -> bool:
            stack.check_alive()
            return await _gateway_ready(session, stack.gateway_url)

        await wait_until(gateway_ready, "gateway", 60)

        async def worker_ready() -> bool:
            stack.check_alive()
            try:
                await asyncio.wait_for(telephony.register_room("bench-warm-up"), 10)
            except Exception:  # not polling yet (search attributes, schedule): try again
                return False
            return True

        await wait_until(worker_ready, "worker", 90, every=0.5)
        delivery = RoomQueues(f"{stack.gateway_url}/livekit/webhook", LIVEKIT_KEY, LIVEKIT_SECRET)
        await delivery.start()
        emulator.delivery = delivery
        log(f"stack ready in {time.perf_counter() - started:.1f} s ({temporal.version})")
        try:
            yield stack
        finally:
            emulator.delivery = None
            await delivery.stop()
    finally:
        for child in reversed(children):
            await asyncio.to_thread(child.stop, 25.0)
        await session.close()
        await emulator.stop()
        await asyncio.to_thread(temporal.stop)


# --- helpers for the measurements ---------------------------------------------------------------


async def bounded(calls: Iterable[Callable[[], Awaitable[T]]], concurrency: int) -> list[T]:
    """Run the calls with at most `concurrency` in flight (closed loop: a finished call makes
    room for the next); results in order."""
    queue = deque(enumerate(calls))
    results: dict[int, T] = {}

    async def worker() -> None:
        while queue:
            index, call = queue.popleft()
            results[index] = await call()

    await asyncio.gather(*(worker() for _ in range(max(1, concurrency))))
    return [results[index] for index in range(len(results))]


def write_result(name: str, data: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n")
    log(f"wrote {path.relative_to(REPO)}")
    return path


def room_ids(prefix: str, count: int) -> list[str]:
    """Room ids shaped like La Suite Meet's (UUIDs), tagged for reading the logs."""
    return [f"{prefix}-{uuid.uuid4()}" for _ in range(count)]
