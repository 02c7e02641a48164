"""`meet-telephony dev` as a developer runs it: a subprocess on free ports, state in a tmp dir.

One stack serves the module (it takes ~3 s to start); the last tests stop it with SIGINT and
start it again on the same data directory. Linux only (the process tree is read from /proc).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from operator_tools.console import (
    EXIT_FAILURE,
    EXIT_NOT_FOUND,
    EXIT_OK,
    EXIT_PORT_IN_USE,
    EXIT_USAGE,
)
from operator_tools.dev import READY_LINE
from operator_tools.doctor import CREDENTIALS_REJECTED

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(sys.platform != "linux", reason="reads the process tree from /proc"),
]

BIN = Path(sys.executable).parent
ROOM = "demo-room"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_is_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def descendants(pid: int) -> set[int]:
    """Every live process below `pid`, from /proc."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            parents[int(entry.name)] = int(fields[1])
    found: set[int] = set()
    frontier = {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def clean_env(**extra: str) -> dict[str, str]:
    """The test's environment without any telephony setting that could leak in."""
    prefixes = ("ROOM_TELEPHONY_", "LIVEKIT_", "TEMPORAL_", "TELEPHONY_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}
    return {**env, **extra}


@dataclass
class DevStack:
    data_dir: Path
    ports: dict[str, int]
    process: subprocess.Popen[str] | None = None
    output: list[str] = field(default_factory=list)

    def start(self, timeout: float = 60.0) -> None:
        self.output = []
        self.process = subprocess.Popen(
            [
                str(BIN / "meet-telephony"), "dev",
                "--data-dir", str(self.data_dir),
                "--temporal-port", str(self.ports["temporal"]),
                "--temporal-ui-port", str(self.ports["ui"]),
                "--gateway-port", str(self.ports["gateway"]),
                "--livekit-port", str(self.ports["livekit"]),
                "--stop-timeout", "5",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=clean_env(),
        )  # fmt: skip
        ready = threading.Event()

        def read() -> None:
            assert self.process is not None and self.process.stdout is not None
            for line in self.process.stdout:
                self.output.append(line.rstrip("\n"))
                if READY_LINE in line:
                    ready.set()

        threading.Thread(target=read, daemon=True).start()
        if not ready.wait(timeout):
            self.stop()
            pytest.fail("dev stack not ready:\n" + "\n".join(self.output[-40:]))

    def stop(self) -> int:
        assert self.process is not None
        self.process.send_signal(signal.SIGINT)
        return self.process.wait(timeout=30)

    @property
    def env_file(self) -> Path:
        return self.data_dir / "dev.env"

    def cli(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(BIN / "meet-telephony"), "--env-file", str(self.env_file), *args],
            capture_output=True,
            text=True,
            env=clean_env(**env),
            timeout=60,
        )

    def cli_json(self, *args: str) -> Any:
        result = self.cli(*args, "--json")
        assert result.returncode == EXIT_OK, result.stderr + result.stdout
        return json.loads(result.stdout)

    def url(self, name: str, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.ports[name]}{path}"


def get(url: str, data: bytes | None = None) -> tuple[int, bytes]:
    """GET `url`, or POST `data` to it; (status, body) whatever the status."""
    request = urllib.request.Request(url, data=data)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return int(response.status), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevStack]:
    ports = {name: free_port() for name in ("temporal", "ui", "gateway", "livekit")}
    dev = DevStack(tmp_path_factory.mktemp("dev") / ".data", ports)
    dev.start()
    try:
        yield dev
    finally:
        if dev.process is not None and dev.process.poll() is None:
            dev.stop()


def test_every_advertised_url_answers(stack: DevStack) -> None:
    banner = "\n".join(stack.output)
    urls = [
        stack.url("ui"),
        stack.url("gateway", "/healthz"),
        stack.url("gateway", "/readyz"),
        stack.url("gateway", "/metrics"),
        stack.url("gateway", "/openapi.json"),
        stack.url("livekit"),
    ]
    for url in [stack.url("ui"), stack.url("gateway"), stack.url("livekit")]:
        assert url.rstrip("/") in banner
    assert [get(url)[0] for url in urls] == [200] * len(urls)
    with socket.create_connection(("127.0.0.1", stack.ports["temporal"]), timeout=5):
        pass


def test_the_api_token_is_generated_once_private_and_printed(stack: DevStack) -> None:
    token_file = stack.data_dir / "api-token"
    token = token_file.read_text().strip()
    assert len(token) >= 32
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(stack.env_file.stat().st_mode) == 0o600
    assert any(token in line for line in stack.output)


def test_log_lines_are_prefixed_by_component(stack: DevStack) -> None:
    prefixes = {line.split("]", 1)[0] + "]" for line in stack.output if line.startswith("[")}
    assert {"[temporal]", "[worker]", "[gateway]", "[livekit]"} <= prefixes


def test_walkthrough_register_start_room_call_with_pin_lands(stack: DevStack) -> None:
    info = stack.cli_json("rooms", "register", ROOM)
    assert info["room_id"] == ROOM and info["pin"].isdigit()

    status, _ = get(stack.url("livekit", "/_emulator/rooms"), json.dumps({"name": ROOM}).encode())
    assert status == 201

    deadline = time.monotonic() + 15
    while True:  # the webhook reaches the gateway, the workflow creates the rule
        call = stack.cli("call", "--pin", info["pin"], "--json")
        if call.returncode == EXIT_OK or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert call.returncode == EXIT_OK, call.stdout + call.stderr
    result = json.loads(call.stdout)
    assert result["accepted"] is True and result["room_name"] == ROOM


def test_rooms_register_keeps_a_pin_as_printed_and_sets_the_rooms_phone_policy(
    stack: DevStack,
) -> None:
    info = stack.cli_json(
        "rooms", "register", "cli-policy-room",
        "--pin", "482 173-0596",
        "--dispatch-mode", "always",
        "--number", "+33 1 23 45 67 89",
        "--hide-phone-number",
    )  # fmt: skip

    shown = stack.cli_json("rooms", "show", "cli-policy-room")
    assert info["pin"] == shown["pin"] == "4821730596"
    assert (shown["dispatch_mode"], shown["hide_phone_number"]) == ("always", True)
    assert [n["e164"] for n in shown["numbers"]] == ["+33123456789"]


def test_rooms_register_with_a_number_that_is_not_a_dial_in_number_is_a_usage_error(
    stack: DevStack,
) -> None:
    result = stack.cli("rooms", "register", "cli-bad-number", "--number", "+33199999999", "--json")

    assert result.returncode == EXIT_USAGE
    assert json.loads(result.stdout)["error"] == "invalid_numbers"


def test_a_wrong_pin_is_refused_with_the_reason(stack: DevStack) -> None:
    call = stack.cli("call", "--pin", "0000")
    assert call.returncode == EXIT_FAILURE
    assert call.stdout.startswith("refused: ")


def test_rooms_list_shows_registered_rooms_without_pins(stack: DevStack) -> None:
    pin = stack.cli_json("rooms", "register", "listed-room")["pin"]
    deadline = time.monotonic() + 10
    while True:  # visibility is eventually consistent
        rooms = stack.cli_json("rooms", "list")
        if any(r["room_id"] == "listed-room" for r in rooms) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert {"room_id": "listed-room", "state": "idle"}.items() <= next(
        r for r in rooms if r["room_id"] == "listed-room"
    ).items()
    assert pin not in stack.cli("rooms", "list").stdout


def test_rooms_show_an_unknown_room_exits_not_found(stack: DevStack) -> None:
    assert stack.cli("rooms", "show", "never-registered").returncode == EXIT_NOT_FOUND


def test_doctor_passes_against_the_dev_stack(stack: DevStack) -> None:
    result = stack.cli("doctor", "--json")
    report = json.loads(result.stdout)
    assert [c for c in report["checks"] if c["status"] != "ok"] == []
    assert result.returncode == EXIT_OK


def test_doctor_reports_the_sentinel_rule_the_worker_created(stack: DevStack) -> None:
    deadline = time.monotonic() + 30
    while True:  # the worker's reconciliation at start creates it
        report = json.loads(stack.cli("doctor", "--json").stdout)
        (check,) = [c for c in report["checks"] if c["name"] == "sentinel rule"]
        if check["status"] == "ok" or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert check["status"] == "ok" and check["detail"].startswith("SDR_")


def test_doctor_reports_a_wrong_livekit_secret(stack: DevStack) -> None:
    result = stack.cli("doctor", LIVEKIT_API_SECRET="not-the-secret-0123456789abcdef012345")
    assert result.returncode == EXIT_FAILURE
    failed = [line for line in result.stdout.splitlines() if line.startswith("fail")]
    assert failed == [f"fail  credentials        {CREDENTIALS_REJECTED}"]


def dev_on_the_stack_gateway_port(
    stack: DevStack, data_dir: Path, *extra: str
) -> subprocess.CompletedProcess[str]:
    """A second `dev` whose gateway port is the running stack's."""
    return subprocess.run(
        [
            str(BIN / "meet-telephony"), "dev",
            "--data-dir", str(data_dir),
            "--temporal-port", str(free_port()),
            "--temporal-ui-port", str(free_port()),
            "--gateway-port", str(stack.ports["gateway"]),
            "--livekit-port", str(free_port()),
            *extra,
        ],
        capture_output=True, text=True, env=clean_env(), timeout=30,
    )  # fmt: skip


def test_dev_refuses_a_port_in_use_naming_it_and_the_flag(stack: DevStack) -> None:
    result = dev_on_the_stack_gateway_port(stack, stack.data_dir.parent / "other")
    assert result.returncode == EXIT_PORT_IN_USE
    assert f"port {stack.ports['gateway']} (gateway) is already in use" in result.stderr
    assert "--gateway-port" in result.stderr and "TELEPHONY_GATEWAY_PORT" in result.stderr


def test_dev_json_on_a_port_in_use_is_a_json_error_naming_the_port(stack: DevStack) -> None:
    result = dev_on_the_stack_gateway_port(stack, stack.data_dir.parent / "other-json", "--json")
    answer = json.loads(result.stdout)
    assert result.returncode == EXIT_PORT_IN_USE and result.stderr == ""
    assert answer["error"] == "port_in_use"
    assert [(p["port"], p["flag"]) for p in answer["ports"]] == [
        (stack.ports["gateway"], "--gateway-port")
    ]


def test_a_busy_port_leaves_no_secret_behind(stack: DevStack) -> None:
    data_dir = stack.data_dir.parent / "refused"
    result = dev_on_the_stack_gateway_port(stack, data_dir)
    assert result.returncode == EXIT_PORT_IN_USE
    assert not data_dir.exists() or list(data_dir.iterdir()) == []


def test_rooms_list_into_a_closed_pipe_ends_quietly(stack: DevStack) -> None:
    # `rooms list --json | head -1`, with the reader gone before anything is written.
    stack.cli_json("rooms", "register", "piped-room")
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        result = subprocess.run(
            [str(BIN / "meet-telephony"), "--env-file", str(stack.env_file), "rooms", "list",
             "--json"],
            stdout=write_end, stderr=subprocess.PIPE, text=True, env=clean_env(), timeout=60,
        )  # fmt: skip
    finally:
        os.close(write_end)
    assert (result.returncode, result.stderr) == (EXIT_OK, "")


def test_no_secret_is_on_the_command_line_of_any_process_of_the_stack(stack: DevStack) -> None:
    assert stack.process is not None
    secret_names = (
        "api-token",
        "livekit-api-secret",
        "pin-hash-key",
        "payload-keys",
        "codec-token",
    )
    secrets_ = [(stack.data_dir / name).read_text().strip() for name in secret_names]
    payload_key = secrets_[3].split(":", 1)[1]
    command_lines = []
    for pid in {stack.process.pid, *descendants(stack.process.pid)}:
        with contextlib.suppress(OSError):
            command_lines.append(Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace"))
    assert len(command_lines) >= 5  # dev, Temporal, the emulator, the worker, the gateway
    for secret in [*secrets_, payload_key]:
        assert not any(secret in line for line in command_lines)


# The two tests below stop and restart the module's stack: they run last, in this order.


def test_sigint_stops_every_child_and_frees_every_port(stack: DevStack) -> None:
    assert stack.process is not None
    children = descendants(stack.process.pid)
    assert len(children) >= 4
    assert stack.stop() == EXIT_OK
    assert [pid for pid in children if alive(pid)] == []
    assert {name: port_is_free(port) for name, port in stack.ports.items()} == {
        name: True for name in stack.ports
    }


def test_a_restart_keeps_registered_rooms_their_pins_and_the_token(stack: DevStack) -> None:
    if stack.process is None or stack.process.poll() is not None:
        stack.start()
    pin = stack.cli_json("rooms", "register", "kept-room")["pin"]
    token = (stack.data_dir / "api-token").read_text()
    assert stack.stop() == EXIT_OK

    stack.start()
    assert stack.cli_json("rooms", "show", "kept-room")["pin"] == pin
    assert (stack.data_dir / "api-token").read_text() == token
