"""`meet-telephony dev`: the whole stack in one terminal, on 127.0.0.1.

Children (each in its own process group, so a Ctrl-C reaches only this supervisor, which then
stops them in order): the Temporal CLI dev server (SQLite under the data directory), the LiveKit
emulator (unless LIVEKIT_URL names a real LiveKit), the worker and the gateway. Their output is
merged into one log, each line prefixed with `[name]`. Stopping: SIGTERM to each group, then
SIGKILL after `--stop-timeout` seconds.

State kept in the data directory (mode 0700): `temporal.db`, and, generated once with `secrets`
(0600): `api-token`, `livekit-api-secret`, `pin-hash-key`, `payload-keys`, `codec-token`; and
`dev.env` (0600): the settings the children run with, for other terminals
(`meet-telephony --env-file .data/dev.env rooms list`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import os
import secrets
import signal
import socket
import sys
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import aiohttp
from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest

from operator_tools.console import (
    EXIT_FAILURE,
    EXIT_OK,
    EXIT_PORT_IN_USE,
    EXIT_USAGE,
    print_error,
    spinner,
)
from telephony.codec import PayloadKeys
from telephony.contracts import SEARCH_ATTRIBUTES
from telephony.process import stop_on_signals
from telephony.settings import Settings, load_settings, redacted_url, reveal
from telephony.temporal import connect_temporal

HOST: Final = "127.0.0.1"
SAMPLE_NUMBER: Final = "+33123456789"
DEV_API_KEY: Final = "devkey"
DATA_DIR_VARIABLE: Final = "TELEPHONY_DEV_DATA_DIR"
READY_LINE: Final = "meet-telephony dev stack ready"


@dataclass(frozen=True)
class Port:
    name: str  # what listens there, for people
    flag: str
    value: int
    variable: str | None = None  # an environment variable that also sets it

    def how_to_change(self) -> str:
        also = f" (or {self.variable})" if self.variable else ""
        return f"pick another with {self.flag} PORT{also}"


def add_dev_arguments(parser: argparse.ArgumentParser) -> None:
    env = os.environ

    def port(flag: str, default: int, what: str, variable: str | None = None) -> None:
        value = int(env[variable]) if variable and env.get(variable, "").isdigit() else default
        also = f", env {variable}" if variable else ""
        parser.add_argument(
            flag, type=int, default=value, metavar="PORT", help=f"{what} ({default}{also})"
        )

    port("--temporal-port", 7233, "Temporal gRPC port")
    port("--temporal-ui-port", 8233, "Temporal UI port")
    port("--gateway-port", 8080, "gateway port", "TELEPHONY_GATEWAY_PORT")
    port("--livekit-port", 7880, "LiveKit emulator port")
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=Path(env.get(DATA_DIR_VARIABLE, ".data")),
        help=f"where state persists (.data, env {DATA_DIR_VARIABLE})",
    )
    parser.add_argument(
        "--phone-number",
        help="the emulator's inbound trunk number "
        f"(default: the configured one, else {SAMPLE_NUMBER})",
    )
    parser.add_argument(
        "--stop-timeout",
        type=float,
        default=10.0,
        help="seconds each child gets after SIGTERM before SIGKILL (10)",
    )
    parser.add_argument(
        "--ready-timeout", type=float, default=90.0, help="seconds to wait for the stack (90)"
    )


# --- state under the data directory -----------------------------------------------------------


def secret_file(path: Path, make: Callable[[], str] = lambda: secrets.token_urlsafe(32)) -> str:
    """Read the secret at `path`, creating it (mode 0600) on first use."""
    if path.exists():
        return path.read_text().strip()
    value = make()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(value + "\n")
    return value


def write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)
    os.chmod(path, 0o600)


def port_in_use(port: int, host: str = HOST) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            return exc.errno == errno.EADDRINUSE
    return False


# --- the plan ---------------------------------------------------------------------------------


@dataclass
class Plan:
    """What `dev` will run, decided before anything starts."""

    data_dir: Path
    ports: list[Port]
    env: dict[str, str]  # the settings every child runs with
    token: str
    livekit_url: str
    emulated: bool
    number: str
    temporal_port: int
    ui_port: int
    gateway_port: int
    livekit_port: int

    @property
    def gateway_url(self) -> str:
        return f"http://{HOST}:{self.gateway_port}"

    @property
    def env_file(self) -> Path:
        return self.data_dir / "dev.env"


def dev_ports(settings: Settings, args: argparse.Namespace) -> list[Port]:
    """Every port the stack listens on (checked before anything is written)."""
    ports = [
        Port("Temporal gRPC", "--temporal-port", args.temporal_port),
        Port("Temporal UI", "--temporal-ui-port", args.temporal_ui_port),
        Port("gateway", "--gateway-port", args.gateway_port, "TELEPHONY_GATEWAY_PORT"),
    ]
    if settings.livekit_url is None:
        ports.append(Port("LiveKit emulator", "--livekit-port", args.livekit_port))
    return ports


def make_plan(settings: Settings, args: argparse.Namespace) -> Plan:
    data_dir: Path = args.data_dir
    data_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(data_dir, 0o700)
    emulated = settings.livekit_url is None
    ports = dev_ports(settings, args)
    if emulated:
        livekit_url = f"http://{HOST}:{args.livekit_port}"
        key = settings.livekit_api_key or DEV_API_KEY
        secret = reveal(settings.livekit_api_secret) or secret_file(data_dir / "livekit-api-secret")
    else:
        livekit_url = str(settings.livekit_url)
        key = settings.livekit_api_key or ""
        secret = reveal(settings.livekit_api_secret)
    token = reveal(settings.telephony_api_token) or secret_file(data_dir / "api-token")
    pin_hash_key = reveal(settings.telephony_pin_hash_key) or secret_file(data_dir / "pin-hash-key")
    payload_keys = reveal(settings.telephony_payload_keys) or secret_file(
        data_dir / "payload-keys", PayloadKeys.generate
    )
    codec_token = reveal(settings.telephony_codec_token) or secret_file(data_dir / "codec-token")
    ui_origins = f"http://{HOST}:{args.temporal_ui_port},http://localhost:{args.temporal_ui_port}"
    number = args.phone_number or next(iter(settings.configured_phone_numbers), SAMPLE_NUMBER)
    env = {
        "ROOM_TELEPHONY_ENABLED": "true",
        "LIVEKIT_URL": livekit_url,
        "LIVEKIT_API_KEY": key,
        "LIVEKIT_API_SECRET": secret,
        "TEMPORAL_ADDRESS": f"{HOST}:{args.temporal_port}",
        "TEMPORAL_NAMESPACE": settings.temporal_namespace,
        "TELEPHONY_API_TOKEN": token,
        "TELEPHONY_PIN_HASH_KEY": pin_hash_key,
        "TELEPHONY_PAYLOAD_KEYS": payload_keys,
        "TELEPHONY_CODEC_TOKEN": codec_token,
        "TELEPHONY_CODEC_CORS_ORIGINS": ui_origins,
        "TELEPHONY_GATEWAY_HOST": HOST,
        "TELEPHONY_GATEWAY_PORT": str(args.gateway_port),
    }
    if not settings.configured_phone_numbers:
        env["ROOM_TELEPHONY_PHONE_NUMBER"] = number
    return Plan(
        data_dir=data_dir,
        ports=ports,
        env=env,
        token=token,
        livekit_url=livekit_url,
        emulated=emulated,
        number=number,
        temporal_port=args.temporal_port,
        ui_port=args.temporal_ui_port,
        gateway_port=args.gateway_port,
        livekit_port=args.livekit_port,
    )


def dotenv(env: dict[str, str]) -> str:
    lines = ["# written by `meet-telephony dev`: the settings of the dev stack (secrets: 0600)"]
    lines += [f"{key}={value}" for key, value in env.items()]
    return "\n".join(lines) + "\n"


# --- children ---------------------------------------------------------------------------------


def _die_with_parent() -> None:
    """In the child, before exec: get SIGTERM if the supervisor dies (Linux), so none is left."""
    with contextlib.suppress(Exception):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM)


@dataclass
class Child:
    name: str
    argv: list[str]
    process: asyncio.subprocess.Process | None = None
    lines: list[str] = field(default_factory=list)  # the last lines, for failure reports
    reader: asyncio.Task[None] | None = None
    seen: asyncio.Event = field(default_factory=asyncio.Event)
    ready_marker: str | None = None


class Supervisor:
    def __init__(self, plan: Plan, stop_timeout: float) -> None:
        self.plan = plan
        self.stop_timeout = stop_timeout
        self.children: list[Child] = []
        self.width = 0

    def log(self, message: str) -> None:
        print(f"[dev] {message}", flush=True)

    async def start(self, child: Child, extra_env: dict[str, str] | None = None) -> None:
        env = {
            **os.environ,
            **self.plan.env,
            **(extra_env or {}),
            "PYTHONUNBUFFERED": "1",
        }
        env.pop("LIVEKIT_API_URL", None)  # LIVEKIT_URL above is the one to use
        env.pop("TELEPHONY_ENV_FILE", None)
        child.process = await asyncio.create_subprocess_exec(
            *child.argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env=env,
            start_new_session=True,  # its own process group: Ctrl-C is ours to relay
            preexec_fn=_die_with_parent if sys.platform == "linux" else None,
        )
        child.reader = asyncio.create_task(self._relay(child))
        self.children.append(child)

    async def _relay(self, child: Child) -> None:
        assert child.process is not None and child.process.stdout is not None
        while True:
            raw = await child.process.stdout.readline()
            if not raw:
                return
            line = raw.decode(errors="replace").rstrip()
            child.lines = [*child.lines[-40:], line]
            if child.ready_marker and child.ready_marker in line:
                child.seen.set()
            print(f"[{child.name}] {line}", flush=True)

    def exited(self) -> Child | None:
        return next(
            (c for c in self.children if c.process and c.process.returncode is not None), None
        )

    async def wait_any_exit(self) -> Child:
        waits = {asyncio.create_task(c.process.wait()): c for c in self.children if c.process}
        try:
            done, _ = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in waits:
                task.cancel()
        return waits[next(iter(done))]

    async def stop_all(self) -> None:
        """Last started first: SIGTERM the group, SIGKILL after the timeout."""
        for child in reversed(self.children):
            await self._stop(child)

    async def _stop(self, child: Child) -> None:
        process = child.process
        if process is None:
            return
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), self.stop_timeout)
            except TimeoutError:
                self.log(f"{child.name} did not stop in {self.stop_timeout:g}s: killing it")
        # The group may hold grandchildren even when the leader is gone.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        await process.wait()
        if child.reader is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await child.reader


# --- readiness --------------------------------------------------------------------------------


class StackFailed(Exception):
    pass


async def http_ok(url: str) -> bool:
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as session,
            session.get(url) as response,
        ):
            return response.status == 200
    except (aiohttp.ClientError, TimeoutError):
        return False


async def wait_until(
    supervisor: Supervisor, what: str, check: Callable[[], Awaitable[bool]], deadline: float
) -> None:
    """Poll `check` until true; fail if a child exits first or the deadline passes."""
    while True:
        crashed = supervisor.exited()
        if crashed is not None:
            tail = "\n".join(crashed.lines[-15:])
            code = crashed.process.returncode if crashed.process else None
            raise StackFailed(f"{crashed.name} exited ({code}) while waiting for {what}:\n{tail}")
        if await check():
            return
        if time.monotonic() > deadline:
            raise StackFailed(f"{what} not ready in time (--ready-timeout)")
        await asyncio.sleep(0.1)


async def temporal_ready(plan: Plan) -> bool:
    settings = load_settings(
        temporal_address=plan.env["TEMPORAL_ADDRESS"],
        temporal_namespace=plan.env["TEMPORAL_NAMESPACE"],
    )
    try:
        async with asyncio.timeout(3):
            client = await connect_temporal(settings)
            await client.workflow_service.describe_namespace(
                DescribeNamespaceRequest(namespace=settings.temporal_namespace)
            )
    except Exception:  # not up yet: any failure means "try again"
        return False
    return True


# --- the command ------------------------------------------------------------------------------


def banner(plan: Plan) -> str:
    env_file = plan.env_file
    livekit = (
        f"{redacted_url(plan.livekit_url)}  ({'emulator' if plan.emulated else 'real LiveKit'})"
    )
    cli = f"meet-telephony --env-file {env_file}"
    namespace = plan.env["TEMPORAL_NAMESPACE"]
    auth = f"Authorization: Bearer {plan.token}"
    start_room = (
        f'curl -X POST {plan.livekit_url}/_emulator/rooms -d \'{{"name": "demo-room"}}\''
        if plan.emulated
        else "(join demo-room from a LiveKit client)"
    )
    lines = [
        "",
        "=" * 72,
        f"  {READY_LINE}",
        f"  Temporal       {HOST}:{plan.temporal_port}   (namespace {namespace})",
        f"  Temporal UI    http://{HOST}:{plan.ui_port}",
        f"  Gateway        {plan.gateway_url}   (/healthz /readyz /metrics /openapi.json)",
        f"  LiveKit        {livekit}",
        f"  Phone number   {plan.number}",
        f"  API token      {plan.token}",
        f"  Codec          {plan.gateway_url}/codec   (sign in at /codec/login with "
        f"{plan.data_dir / 'codec-token'})",
        f"  Settings       {env_file}   (for the CLI in other terminals)",
        f"  Data           {plan.data_dir}",
        "",
        "  Try, in another terminal:",
        f"    {cli} rooms register demo-room",
        f"    {start_room}",
        f"    {cli} call --pin <PIN printed by register>",
        "  or the HTTP API:",
        f"    curl -X PUT -H '{auth}' {plan.gateway_url}/api/v1/rooms/demo-room",
        "",
        "  Decoded history (the token through the environment, not the command line):",
        f'    TEMPORAL_CODEC_AUTH="Bearer $(cat {plan.data_dir / "codec-token"})" temporal '
        f"workflow show -w telephony-room-demo-room --address {HOST}:{plan.temporal_port} "
        f"--codec-endpoint {plan.gateway_url}/codec",
        "",
        "  Ctrl-C stops everything.",
        "=" * 72,
    ]
    return "\n".join(lines)


async def serve(plan: Plan, args: argparse.Namespace) -> int:
    supervisor = Supervisor(plan, args.stop_timeout)
    stop = stop_on_signals()
    started = time.monotonic()
    deadline = started + args.ready_timeout
    python = sys.executable
    temporal = str(Path(python).parent / "temporal")
    code = EXIT_OK
    try:
        await supervisor.start(
            Child(
                "temporal",
                [
                    temporal, "server", "start-dev",
                    "--ip", HOST,
                    "--port", str(plan.temporal_port),
                    "--ui-port", str(plan.ui_port),
                    "--ui-codec-endpoint", f"{plan.gateway_url}/codec",
                    "--db-filename", str(plan.data_dir / "temporal.db"),
                    "--namespace", plan.env["TEMPORAL_NAMESPACE"],
                    "--log-level", "error",
                    *[
                        arg
                        for key in SEARCH_ATTRIBUTES
                        for arg in ("--search-attribute", f"{key.name}=Keyword")
                    ],
                ],
            )
        )  # fmt: skip
        async with spinner("starting Temporal"):
            await _until_ready_or_stop(
                stop, wait_until(supervisor, "Temporal", lambda: temporal_ready(plan), deadline)
            )
        if stop.is_set():
            return EXIT_OK
        if plan.emulated:
            emulator = Child(
                "livekit",
                [
                    python, "-m", "livekit_emulator",
                    "--host", HOST,
                    "--port", str(plan.livekit_port),
                    "--api-key", plan.env["LIVEKIT_API_KEY"],  # its secret: LIVEKIT_API_SECRET
                    "--webhook-url", f"{plan.gateway_url}/livekit/webhook",
                    "--trunk", plan.number,
                ],
                ready_marker="LiveKit emulator ready",
            )  # fmt: skip
            await supervisor.start(emulator)
        worker = Child("worker", [python, "-m", "worker"], ready_marker="worker running")
        gateway = Child("gateway", [python, "-m", "webhook_gateway"])
        await supervisor.start(worker)
        await supervisor.start(gateway)

        async def all_ready() -> bool:
            livekit_ok = not plan.emulated or await http_ok(f"{plan.livekit_url}/")
            return (
                worker.seen.is_set() and livekit_ok and await http_ok(f"{plan.gateway_url}/readyz")
            )

        async with spinner("starting the worker, the gateway and LiveKit"):
            await _until_ready_or_stop(
                stop, wait_until(supervisor, "the worker, gateway and LiveKit", all_ready, deadline)
            )
        if stop.is_set():
            return EXIT_OK
        print(banner(plan), flush=True)
        supervisor.log(f"ready in {time.monotonic() - started:.1f}s")
        exit_task = asyncio.create_task(supervisor.wait_any_exit())
        stop_task = asyncio.create_task(stop.wait())
        done, _ = await asyncio.wait({exit_task, stop_task}, return_when=asyncio.FIRST_COMPLETED)
        if exit_task in done:
            crashed = exit_task.result()
            supervisor.log(f"{crashed.name} exited unexpectedly: stopping the stack")
            code = EXIT_FAILURE
        for task in (exit_task, stop_task):
            task.cancel()
    except StackFailed as exc:
        supervisor.log(f"failed: {exc}")
        code = EXIT_FAILURE
    finally:
        supervisor.log("stopping")
        await supervisor.stop_all()
        supervisor.log("stopped")
    return code


async def _until_ready_or_stop(stop: asyncio.Event, ready: Coroutine[Any, Any, None]) -> None:
    """Wait for `ready`, or return early if a stop is asked for."""
    ready_task = asyncio.create_task(ready)
    stop_task = asyncio.create_task(stop.wait())
    done, pending = await asyncio.wait({ready_task, stop_task}, return_when=asyncio.FIRST_COMPLETED)
    for task in pending:
        task.cancel()
    if ready_task in done:
        ready_task.result()  # re-raises StackFailed


def run_dev(settings: Settings, args: argparse.Namespace) -> int:
    prog = "meet-telephony dev"
    if not (Path(sys.executable).parent / "temporal").exists():
        message = "the temporal binary is missing: run `make install`"
        print_error(args.json, "temporal_missing", message, prog=prog)
        return EXIT_USAGE
    # Ports first: a busy port must leave no new secret behind.
    busy = [p for p in dev_ports(settings, args) if port_in_use(p.value)]
    if busy:
        lines = [f"port {p.value} ({p.name}) is already in use: {p.how_to_change()}" for p in busy]
        if args.json:
            ports = [
                {"port": p.value, "name": p.name, "flag": p.flag, "variable": p.variable}
                for p in busy
            ]
            print_error(True, "port_in_use", "; ".join(lines), ports=ports)
        else:
            for line in lines:
                print_error(False, "port_in_use", line, prog=prog)
        return EXIT_PORT_IN_USE
    plan = make_plan(settings, args)
    write_private(plan.env_file, dotenv(plan.env))
    return asyncio.run(serve(plan, args))
