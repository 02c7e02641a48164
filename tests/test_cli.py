"""`meet-telephony` without a running stack: parsing, help, exit codes, `--json`, `config`.

Commands run in-process through `main([...])`; the stack-backed behaviour is in
`test_dev_stack.py`.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from livekit_emulator import LiveKitEmulator
from operator_tools import cli
from operator_tools.console import EXIT_FAILURE, EXIT_OK, EXIT_UNAVAILABLE, EXIT_USAGE, spinner
from operator_tools.settings_doc import DESCRIPTIONS, markdown_table
from telephony.settings import Settings
from tests.conformance.conftest import direct_rule
from tests.fixtures import keys

README = Path(__file__).resolve().parents[1] / "README.md"
SECRET = "livekit-secret-value-0123456789abcdef"
TOKEN = "api-token-value-0123456789abcdef"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in list(os.environ):
        if name.startswith(("ROOM_TELEPHONY_", "LIVEKIT_", "TEMPORAL_", "TELEPHONY_", "LOG_")):
            monkeypatch.delenv(name)
    # `main` configures the root logger onto this test's captured stderr; put it back after, so
    # later tests do not log into a closed stream.
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    try:
        code = cli.main(list(argv))
    except SystemExit as exc:  # argparse: --help (0) and usage errors (2)
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


async def run_in_thread(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """`run` off the event loop: `main` runs its own (asyncio.run) while a fixture's serves."""
    return await asyncio.to_thread(run, capsys, *argv)


def enable_telephony(monkeypatch: pytest.MonkeyPatch, livekit_url: str) -> None:
    monkeypatch.setenv("ROOM_TELEPHONY_ENABLED", "true")
    monkeypatch.setenv("LIVEKIT_URL", livekit_url)
    monkeypatch.setenv("LIVEKIT_API_KEY", "devkey")
    monkeypatch.setenv("LIVEKIT_API_SECRET", SECRET)
    for name, value in keys.ENVIRONMENT.items():
        monkeypatch.setenv(name, value)


# --- help and usage ---------------------------------------------------------------------------

LEAF_COMMANDS = [
    ["dev"],
    ["worker"],
    ["gateway"],
    ["emulator"],
    ["rooms", "register"],
    ["rooms", "show"],
    ["rooms", "list"],
    ["rooms", "rotate-pin"],
    ["rooms", "schedule"],
    ["rooms", "unregister"],
    ["call"],
    ["doctor"],
    ["config"],
]


@pytest.mark.parametrize("command", LEAF_COMMANDS, ids=" ".join)
def test_every_command_has_help_with_examples_and_exit_codes(
    capsys: pytest.CaptureFixture[str], command: list[str]
) -> None:
    code, out, _ = run(capsys, *command, "--help")
    assert code == EXIT_OK
    assert "examples:" in out and "meet-telephony" in out.split("examples:")[1]
    assert "exit codes:" in out


def test_top_level_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--help")
    assert code == EXIT_OK
    for name in ("dev", "worker", "gateway", "emulator", "rooms", "call", "doctor", "config"):
        assert re.search(rf"^\s+{name}\s", out, re.MULTILINE), name


def test_an_unknown_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "frobnicate")[0] == EXIT_USAGE


def test_an_unknown_option_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "config", "--frobnicate")
    assert code == EXIT_USAGE and "--frobnicate" in err


def test_a_usage_error_is_one_line_naming_the_command(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "rooms", "list", "--limit", "x")
    assert code == EXIT_USAGE and out == ""
    assert err.count("\n") == 1 and err.startswith("meet-telephony rooms list: ")


def test_a_usage_error_with_json_is_a_json_document_on_stdout(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = run(capsys, "rooms", "list", "--limit", "0", "--json")
    assert code == EXIT_USAGE and err == ""
    assert json.loads(out)["error"] == "usage" and "--limit" in json.loads(out)["message"]


def test_a_bad_setting_with_json_is_a_json_document_naming_the_variable(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ROOM_TELEPHONY_PIN_LENGTH", "2")
    code, out, _ = run(capsys, "rooms", "list", "--json")
    answer = json.loads(out)
    assert code == EXIT_USAGE
    assert answer["error"] == "bad_settings" and "ROOM_TELEPHONY_PIN_LENGTH" in answer["message"]


def test_doctor_json_with_a_bad_setting_is_its_report_with_the_settings_check_failed(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEMPORAL_ADDRESS", "nohostport")
    code, out, err = run(capsys, "doctor", "--json")
    report = json.loads(out)
    assert code == EXIT_USAGE and err == ""
    assert report["ok"] is False and report["error"] == "bad_settings"
    assert [(c["name"], c["status"]) for c in report["checks"]] == [("settings", "fail")]
    assert "TEMPORAL_ADDRESS" in report["checks"][0]["detail"]


def test_output_into_a_closed_pipe_ends_quietly() -> None:
    # `meet-telephony config --json | head -1`, with the reader gone before anything is written.
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        result = subprocess.run(
            [str(Path(sys.executable).parent / "meet-telephony"), "config", "--json"],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
        )
    finally:
        os.close(write_end)
    assert (result.returncode, result.stderr) == (EXIT_OK, "")


def test_a_bad_setting_is_one_line_naming_the_variable(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ROOM_TELEPHONY_PIN_LENGTH", "2")
    code, out, err = run(capsys, "config")
    assert code == EXIT_USAGE
    assert out == ""
    assert err.count("\n") == 1 and "ROOM_TELEPHONY_PIN_LENGTH" in err


def test_a_missing_env_file_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, _, err = run(capsys, "--env-file", str(tmp_path / "nope.env"), "config")
    assert code == EXIT_USAGE and "nope.env" in err


def test_a_bad_schedule_window_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "rooms", "schedule", "r1", "--window", "tomorrow")
    assert code == EXIT_USAGE and "START/END" in err


def test_a_schedule_needs_windows_or_clear(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "rooms", "schedule", "r1")[0] == EXIT_USAGE


def test_clear_and_a_window_together_are_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    window = "2030-01-01T09:00:00+01:00/2030-01-01T10:00:00+01:00"
    code, _, err = run(capsys, "rooms", "schedule", "r1", "--clear", "--window", window)
    assert code == EXIT_USAGE and "exclude each other" in err and err.count("\n") == 1


@pytest.mark.parametrize("limit", ["0", "-1", "many"])
def test_a_list_limit_below_one_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], limit: str
) -> None:
    code, _, err = run(capsys, "rooms", "list", "--limit", limit)
    assert code == EXIT_USAGE and "--limit" in err and err.count("\n") == 1


@pytest.mark.parametrize("command", ["register", "rotate-pin"])
def test_a_requested_pin_that_is_not_4_to_16_digits_is_a_usage_error_echoing_nothing(
    capsys: pytest.CaptureFixture[str], command: str
) -> None:
    code, _, err = run(capsys, "rooms", command, "r1", "--pin", "12x4567")
    assert code == EXIT_USAGE and "4 to 16 digits" in err and "12x4567" not in err


# --- config -----------------------------------------------------------------------------------


def test_config_masks_every_secret(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    enable_telephony(monkeypatch, "http://127.0.0.1:7880")
    monkeypatch.setenv("TELEPHONY_API_TOKEN", TOKEN)
    monkeypatch.setenv("TEMPORAL_API_KEY", "temporal-key-value")
    code, out, _ = run(capsys, "config")
    assert code == EXIT_OK
    for secret in (SECRET, TOKEN, "temporal-key-value"):
        assert secret not in out
    assert re.search(r"^LIVEKIT_API_SECRET\s+\*{8}$", out, re.MULTILINE)


def test_config_shows_tls_on_when_an_api_key_turns_it_on_and_says_why(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEMPORAL_API_KEY", "temporal-key-value")
    assert json.loads(run(capsys, "config", "--json")[1])["TEMPORAL_TLS"] is True
    out = run(capsys, "config")[1]
    assert re.search(r"^TEMPORAL_TLS\s+True\s+\(TEMPORAL_API_KEY is set", out, re.MULTILINE)


def test_config_shows_tls_off_when_temporal_tls_is_false_despite_an_api_key(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEMPORAL_API_KEY", "temporal-key-value")
    monkeypatch.setenv("TEMPORAL_TLS", "false")
    assert json.loads(run(capsys, "config", "--json")[1])["TEMPORAL_TLS"] is False


def test_config_masks_credentials_in_the_livekit_url(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LIVEKIT_URL", "https://lkuser:lk-password-value@livekit.example.org")
    shown = json.loads(run(capsys, "config", "--json")[1])
    assert shown["LIVEKIT_URL"] == f"https://{cli.MASK}@livekit.example.org"
    assert "lk-password-value" not in run(capsys, "config")[1]


def test_config_json_has_every_variable(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TELEPHONY_API_TOKEN", TOKEN)
    code, out, _ = run(capsys, "config", "--json")
    shown = json.loads(out)
    assert code == EXIT_OK
    assert set(shown) == {name.upper() for name in Settings.model_fields}
    assert shown["TELEPHONY_API_TOKEN"] == cli.MASK
    assert shown["ROOM_TELEPHONY_PIN_LENGTH"] == 10


def test_env_file_settings_are_read_and_the_environment_wins(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    env_file = tmp_path / "dev.env"
    env_file.write_text("ROOM_TELEPHONY_PIN_LENGTH=12\nTELEPHONY_TASK_QUEUE=from-file\n")
    monkeypatch.setenv("TELEPHONY_TASK_QUEUE", "from-env")
    shown = json.loads(run(capsys, "--env-file", str(env_file), "config", "--json")[1])
    assert (shown["ROOM_TELEPHONY_PIN_LENGTH"], shown["TELEPHONY_TASK_QUEUE"]) == (12, "from-env")


def test_every_setting_is_described() -> None:
    assert set(DESCRIPTIONS) == set(Settings.model_fields)


def test_the_readme_settings_table_is_the_generated_one() -> None:
    text = README.read_text()
    start = text.index("<!-- settings-table:start -->") + len("<!-- settings-table:start -->")
    end = text.index("<!-- settings-table:end -->")
    assert text[start:end].strip() == markdown_table(), (
        "README settings table is stale: regenerate with `meet-telephony config --markdown`"
    )


# --- commands that reach out ------------------------------------------------------------------


@pytest.mark.parametrize("command", [["rooms", "show", "r1"], ["rooms", "list"], ["reconcile"]])
def test_temporal_commands_say_connection_refused_when_temporal_is_down(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, command: list[str]
) -> None:
    monkeypatch.setenv("TEMPORAL_ADDRESS", f"127.0.0.1:{closed_port()}")
    code, out, _ = run(capsys, *command, "--json")
    assert code == EXIT_UNAVAILABLE
    answer = json.loads(out)
    assert answer["error"] == "temporal_unavailable"
    assert "(connection refused)" in answer["message"] and "tonic" not in answer["message"]


def test_call_needs_a_livekit_url(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "call", "--pin", "1234")
    assert code == EXIT_USAGE and "LIVEKIT_URL" in err


@pytest.mark.parametrize("pin", ["841 451 6303", "841-451-6303"])
async def test_call_takes_the_pin_as_printed_with_spaces_or_dashes(
    capsys: pytest.CaptureFixture[str], emulator: LiveKitEmulator, pin: str
) -> None:
    await emulator.create_inbound_trunk(numbers=["+33123456789"])
    await emulator.create_dispatch_rule(direct_rule("8414516303", room="printed"))
    code, out, _ = await run_in_thread(
        capsys, "call", "--pin", pin, "--number", "+33123456789", "--livekit-url", emulator.url,
        "--json",
    )  # fmt: skip
    assert code == EXIT_OK, out
    assert json.loads(out)["room_name"] == "printed"


def test_call_refuses_a_number_that_is_not_a_phone_number(
    capsys: pytest.CaptureFixture[str],
) -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    code, out, _ = run(
        capsys, "call", "--pin", "1234", "--number", "banana", "--livekit-url", url, "--json"
    )
    answer = json.loads(out)
    assert code == EXIT_USAGE
    assert (
        answer["error"] == "invalid_number"
        and "'banana' is not a phone number" in answer["message"]
    )


def test_call_exits_unavailable_when_the_emulator_is_down(
    capsys: pytest.CaptureFixture[str],
) -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    code, out, _ = run(
        capsys, "call", "--pin", "1234", "--number", "+33123456789", "--livekit-url", url, "--json"
    )
    assert code == EXIT_UNAVAILABLE
    assert json.loads(out)["error"] == "livekit_unreachable"


def test_doctor_fails_with_a_fix_for_each_unreachable_component(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    enable_telephony(monkeypatch, f"http://127.0.0.1:{closed_port()}")
    monkeypatch.setenv("TEMPORAL_ADDRESS", f"127.0.0.1:{closed_port()}")
    monkeypatch.setenv("TELEPHONY_GATEWAY_PORT", str(closed_port()))
    code, out, _ = run(capsys, "doctor", "--json")
    report = json.loads(out)
    statuses = {c["name"]: c["status"] for c in report["checks"]}
    assert code == EXIT_FAILURE and report["ok"] is False
    assert statuses == {
        "settings": "ok",
        "temporal": "fail",
        "search attributes": "skip",
        "livekit": "fail",
        "credentials": "skip",
        "sip": "skip",
        "trunks": "skip",
        "sentinel rule": "skip",
        "webhook url": "fail",
    }
    assert all(c["fix"] for c in report["checks"] if c["status"] == "fail")


# --- progress ---------------------------------------------------------------------------------


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


async def test_the_spinner_shows_on_a_terminal_once_the_wait_passes_its_delay() -> None:
    screen = Terminal()
    async with spinner("waiting for Temporal", delay=0.05, stream=screen):
        await asyncio.sleep(0.2)
    assert "waiting for Temporal" in screen.getvalue()
    assert screen.getvalue().endswith("\r\x1b[K")  # the line is cleared afterwards


async def test_the_spinner_stays_silent_for_a_quick_step() -> None:
    screen = Terminal()
    async with spinner("waiting", delay=1.0, stream=screen):
        pass
    assert "waiting" not in screen.getvalue()


async def test_the_spinner_never_writes_to_a_pipe() -> None:
    pipe = io.StringIO()
    async with spinner("waiting", delay=0.0, stream=pipe):
        await asyncio.sleep(0.1)
    assert pipe.getvalue() == ""
