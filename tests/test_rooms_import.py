"""`meet-telephony rooms import FILE`: the file's parsing (pure), the import loop, and the real
command against real Temporal, the real worker and the LiveKit emulator (the `stack` fixture)."""

from __future__ import annotations

import asyncio
import io
import json
import re
import secrets
import uuid
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from operator_tools.console import EXIT_FAILURE, EXIT_OK, EXIT_UNAVAILABLE, EXIT_USAGE
from operator_tools.importer import (
    Entry,
    FileFormat,
    FileFormatError,
    Outcome,
    ParsedFile,
    Report,
    decode,
    detect_format,
    import_entries,
    parse_rooms,
    wants_progress_bar,
)
from telephony.client import RoomNotRegistered, TelephonyUnavailable
from telephony.models import DialInInfo, RoomStatus, TelephonyState
from tests.fixtures import keys
from tests.fixtures.livekit import EMULATOR_API_KEY, EMULATOR_API_SECRET
from tests.fixtures.processes import free_port, installed_binary, service_process_environment
from tests.fixtures.stack import PHONE_NUMBER, Stack


def new_room() -> str:
    return str(uuid.uuid4())


def new_pin() -> str:
    # 12 digits: a length no random draw of the shared dev server uses (10 and 4 digits do).
    return "".join(secrets.choice("0123456789") for _ in range(12))


def printed(pin: str) -> str:
    """A PIN as Meet prints it in invitations."""
    return f"{pin[:3]} {pin[3:6]}-{pin[6:]}"


def csv_file(rows: list[tuple[str, str]]) -> str:
    return "room_id,pin\n" + "".join(f"{room},{pin}\n" for room, pin in rows)


# --- parsing ----------------------------------------------------------------------------------


def test_csv_gives_one_entry_per_line_numbered_as_in_the_file() -> None:
    parsed = parse_rooms("room_id,pin\nroom-a,1234567890\nroom-b,0987654321\n")

    assert parsed.format is FileFormat.CSV and parsed.invalid == []
    assert [(e.line, e.room_id, e.pin) for e in parsed.entries] == [
        (2, "room-a", "1234567890"),
        (3, "room-b", "0987654321"),
    ]


def test_csv_columns_are_found_by_their_header_names_in_any_order() -> None:
    parsed = parse_rooms("PIN, Room_Id ,note\n0123456789,room-a,hello\n")

    assert [(e.room_id, e.pin) for e in parsed.entries] == [("room-a", "0123456789")]


def test_a_csv_file_without_its_header_line_is_refused_whole_without_quoting_it() -> None:
    with pytest.raises(FileFormatError) as refused:
        parse_rooms("room-a,8414516303\nroom-b,1234567890\n")

    assert "room_id,pin" in str(refused.value) and "8414516303" not in str(refused.value)


def test_json_lines_give_one_entry_per_line() -> None:
    text = '{"room_id": "room-a", "pin": "8414516303"}\n{"pin": "1234", "room_id": "room-b"}\n'

    parsed = parse_rooms(text)

    assert parsed.format is FileFormat.JSONL
    assert [(e.line, e.room_id, e.pin) for e in parsed.entries] == [
        (1, "room-a", "8414516303"),
        (2, "room-b", "1234"),
    ]


def test_a_known_extension_decides_the_format() -> None:
    assert detect_format('{"room_id": "a", "pin": "1234"}\n', "rooms.csv") is FileFormat.CSV
    assert detect_format("room_id,pin\n", "rooms.JSONL") is FileFormat.JSONL


def test_without_a_known_extension_the_content_decides_the_format() -> None:
    assert detect_format('\n{"room_id": "a", "pin": "1234"}\n') is FileFormat.JSONL
    assert detect_format("room_id,pin\n", "rooms.txt") is FileFormat.CSV


def test_blank_lines_are_skipped_and_keep_the_line_numbers_of_the_file() -> None:
    parsed = parse_rooms("\nroom_id,pin\n\n   \nroom-a,1234567890\r\n\n")

    assert [(e.line, e.room_id) for e in parsed.entries] == [(5, "room-a")]
    assert parsed.records == 1


def test_pins_written_as_printed_are_read_as_their_digits() -> None:
    parsed = parse_rooms("room_id,pin\nroom-a, 841 451-6303 \n")

    assert parsed.entries[0].pin == "8414516303"


def test_a_byte_order_mark_is_ignored() -> None:
    parsed = parse_rooms(decode(b"\xef\xbb\xbfroom_id,pin\nroom-a,1234567890\n"))

    assert [e.room_id for e in parsed.entries] == ["room-a"]


def test_a_file_that_is_not_utf8_is_refused_whole() -> None:
    with pytest.raises(FileFormatError):
        decode(b"room_id,pin\nr\xe9union,1234567890\n")


def test_a_bad_room_id_is_an_invalid_line_naming_the_rule() -> None:
    parsed = parse_rooms("room_id,pin\nnot a room!,1234567890\n")

    assert parsed.entries == []
    [bad] = parsed.invalid
    assert (bad.line, bad.room_id) == (2, None) and "room id is not valid" in bad.reason


@pytest.mark.parametrize("pin", ["12x4567890", "123", "12345678901234567"])
def test_a_bad_pin_is_an_invalid_line_that_never_quotes_the_pin(pin: str) -> None:
    parsed = parse_rooms(f"room_id,pin\nroom-a,{pin}\n")

    [bad] = parsed.invalid
    assert (bad.line, bad.room_id) == (2, "room-a") and "4 to 16 digits" in bad.reason
    assert pin not in bad.reason


def test_a_missing_pin_is_an_invalid_line() -> None:
    assert parse_rooms("room_id,pin\nroom-a,\n").invalid[0].reason == "no PIN"


def test_a_csv_line_with_another_number_of_fields_than_the_header_is_invalid() -> None:
    parsed = parse_rooms("room_id,pin\nroom-a,1234567890,extra\n")

    assert parsed.invalid[0].line == 2 and "3 fields" in parsed.invalid[0].reason


def test_a_json_number_as_pin_is_invalid_because_it_loses_leading_zeros() -> None:
    parsed = parse_rooms('{"room_id": "room-a", "pin": 123456789}\n')

    [bad] = parsed.invalid
    assert "JSON string" in bad.reason and "123456789" not in bad.reason


@pytest.mark.parametrize("line", ["{not json", "[1, 2]", '{"pin": "1234567890"}'])
def test_a_json_line_that_is_not_a_room_object_is_invalid(line: str) -> None:
    parsed = parse_rooms(f'{{"room_id": "room-a", "pin": "1234"}}\n{line}\n', "rooms.jsonl")

    assert [bad.line for bad in parsed.invalid] == [2]
    assert "1234567890" not in parsed.invalid[0].reason


def test_a_room_repeated_with_the_same_pin_is_imported_once() -> None:
    parsed = parse_rooms("room_id,pin\nroom-a,1234567890\nroom-b,1111\nroom-a,123 456 7890\n")

    assert [e.line for e in parsed.entries] == [2, 3]
    [bad] = parsed.invalid
    assert (bad.line, bad.room_id, bad.reason) == (
        4,
        "room-a",
        "the room and PIN are already on line 2",
    )


def test_a_room_repeated_with_another_pin_makes_each_of_its_lines_invalid() -> None:
    parsed = parse_rooms("room_id,pin\nroom-a,1234567890\nroom-b,1111\nroom-a,0987654321\n")

    assert [e.room_id for e in parsed.entries] == ["room-b"]
    assert [(bad.line, bad.room_id) for bad in parsed.invalid] == [(2, "room-a"), (4, "room-a")]
    assert "also on line 4 with another PIN" in parsed.invalid[0].reason


def test_a_pin_given_to_two_rooms_makes_both_lines_invalid() -> None:
    parsed = parse_rooms("room_id,pin\nroom-a,1234567890\nroom-b,1111\nroom-c,123-456-7890\n")

    assert [e.room_id for e in parsed.entries] == ["room-b"]
    assert [(bad.line, bad.room_id) for bad in parsed.invalid] == [(2, "room-a"), (4, "room-c")]
    assert parsed.invalid[1].reason == "the same PIN is given to another room on line 2"
    assert all("1234567890" not in bad.reason for bad in parsed.invalid)


# --- the import loop and its report -----------------------------------------------------------


class TemporalLostAfter:
    """A client whose Temporal goes away after `calls` registrations."""

    def __init__(self, calls: int) -> None:
        self.calls = calls
        self.registered: list[str] = []

    async def get_status(self, room_id: str) -> RoomStatus:
        raise RoomNotRegistered(f"room {room_id} is not registered")

    async def register_room(self, room_id: str, *, pin: str | None = None) -> DialInInfo:
        if len(self.registered) >= self.calls:
            raise TelephonyUnavailable("Temporal is unavailable (connection refused)")
        self.registered.append(room_id)
        return DialInInfo(
            room_id=room_id,
            pin=pin or "",
            pin_display="",
            state=TelephonyState.IDLE,
            numbers=[],
            schedule=[],
        )


async def test_temporal_lost_mid_import_reports_the_rooms_not_done_as_failed() -> None:
    entries = [Entry(line, f"room-{line}", f"{line:010d}") for line in range(2, 12)]
    client = TemporalLostAfter(calls=4)

    results = await import_entries(client, entries, concurrency=1)

    assert [r.outcome for r in results] == [Outcome.IMPORTED] * 4 + [Outcome.FAILED] * 6
    assert all(r.code == "temporal_unavailable" for r in results[4:])
    report = Report("rooms.csv", ParsedFile(FileFormat.CSV, entries, []), False, results, 1.0)
    assert report.exit_code() == EXIT_UNAVAILABLE
    assert "lines 6-11" in report.text() and "run the same command again" in report.text()


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_progress_bar_is_shown_on_a_terminal_only_and_never_with_json() -> None:
    assert wants_progress_bar(Terminal(), as_json=False)
    assert not wants_progress_bar(Terminal(), as_json=True)
    assert not wants_progress_bar(io.StringIO(), as_json=False)


# --- the command, without a stack -------------------------------------------------------------


async def meet_telephony(
    *args: str, env: dict[str, str] | None = None, stdin: str | None = None
) -> tuple[int, str, str]:
    """The installed `meet-telephony` as a process: exit code, stdout, stderr."""
    process = await asyncio.create_subprocess_exec(
        installed_binary("meet-telephony"),
        *args,
        env=env or service_process_environment(),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(
        process.communicate(stdin.encode() if stdin is not None else None), 120
    )
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_a_concurrency_below_one_is_a_usage_error(tmp_path: Path) -> None:
    rooms = tmp_path / "rooms.csv"
    rooms.write_text(csv_file([("room-a", "1234567890")]))

    code, _, err = await meet_telephony("rooms", "import", str(rooms), "--concurrency", "0")

    assert code == EXIT_USAGE and "--concurrency" in err and err.count("\n") == 1


async def test_a_missing_file_is_a_usage_error(tmp_path: Path) -> None:
    code, out, _ = await meet_telephony("rooms", "import", str(tmp_path / "nope.csv"), "--json")

    assert code == EXIT_USAGE and json.loads(out)["error"] == "invalid_file"


async def test_the_import_has_help_with_examples_and_exit_codes() -> None:
    code, out, _ = await meet_telephony("rooms", "import", "--help")

    assert code == EXIT_OK and "examples:" in out and "exit codes:" in out


# --- the command against the stack ------------------------------------------------------------


def cli_environment(stack: Stack) -> dict[str, str]:
    """The stack's settings, as an operator's shell would give them to the CLI."""
    return service_process_environment(
        keys.ENVIRONMENT,
        {
            "ROOM_TELEPHONY_ENABLED": "true",
            "ROOM_TELEPHONY_PHONE_NUMBER": PHONE_NUMBER,
            "ROOM_TELEPHONY_DEFAULT_COUNTRY": "FR",
            "LIVEKIT_URL": stack.emulator.url,
            "LIVEKIT_API_KEY": EMULATOR_API_KEY,
            "LIVEKIT_API_SECRET": EMULATOR_API_SECRET,
            "TEMPORAL_ADDRESS": stack.env.client.service_client.config.target_host,
            "TELEPHONY_TASK_QUEUE": stack.settings.telephony_task_queue,
        },
    )


async def import_file(
    stack: Stack, tmp_path: Path, text: str, *args: str, name: str = "rooms.csv"
) -> tuple[int, str, str]:
    path = tmp_path / name
    path.write_text(text)
    return await meet_telephony("rooms", "import", str(path), *args, env=cli_environment(stack))


async def import_json(stack: Stack, tmp_path: Path, text: str, *args: str) -> tuple[int, Any]:
    code, out, _ = await import_file(stack, tmp_path, text, "--json", *args)
    return code, json.loads(out)


async def registered_pin(stack: Stack, room: str) -> str | None:
    try:
        return (await stack.client.get_status(room)).pin
    except RoomNotRegistered:
        return None


async def lease_running(stack: Stack, pin: str) -> bool:
    handle = stack.env.client.get_workflow_handle(stack.settings.pin_lease_id(pin))
    try:
        return (await handle.describe()).status is WorkflowExecutionStatus.RUNNING
    except RPCError as exc:
        if exc.status is RPCStatusCode.NOT_FOUND:
            return False
        raise


async def test_an_import_registers_every_room_with_its_pin_as_printed(
    stack: Stack, tmp_path: Path
) -> None:
    rows = [(new_room(), new_pin()) for _ in range(3)]

    code, out, err = await import_file(
        stack, tmp_path, csv_file([(room, printed(pin)) for room, pin in rows])
    )

    assert code == EXIT_OK, out + err
    assert re.search(r"^imported:\s+3$", out, re.MULTILINE)
    assert [await registered_pin(stack, room) for room, _ in rows] == [pin for _, pin in rows]


async def test_a_second_run_finds_every_room_already_present_and_changes_nothing(
    stack: Stack, tmp_path: Path
) -> None:
    text = csv_file([(new_room(), new_pin()) for _ in range(3)])
    rooms = [entry.room_id for entry in parse_rooms(text).entries]
    assert (await import_json(stack, tmp_path, text))[0] == EXIT_OK
    before = [await stack.handle(room).describe() for room in rooms]

    code, report = await import_json(stack, tmp_path, text)

    assert code == EXIT_OK
    assert report["counts"]["already_present"] == 3 and report["counts"]["imported"] == 0
    after = [await stack.handle(room).describe() for room in rooms]
    assert [(d.run_id, d.history_length) for d in after] == [
        (d.run_id, d.history_length) for d in before
    ]


async def test_a_run_after_an_interrupted_one_imports_only_the_rooms_not_done(
    stack: Stack, tmp_path: Path
) -> None:
    rows = [(new_room(), new_pin()) for _ in range(4)]
    for room, pin in rows[:2]:  # what the interrupted run had done
        await stack.client.register_room(room, pin=pin)

    code, report = await import_json(stack, tmp_path, csv_file(rows))

    assert code == EXIT_OK
    assert (report["counts"]["already_present"], report["counts"]["imported"]) == (2, 2)
    assert [await registered_pin(stack, room) for room, _ in rows] == [pin for _, pin in rows]


async def test_a_pin_held_by_another_room_is_a_conflict_on_its_line_and_the_rest_is_imported(
    stack: Stack, tmp_path: Path
) -> None:
    taken = new_pin()
    await stack.client.register_room(new_room(), pin=taken)
    rows = [(new_room(), new_pin()), (new_room(), taken), (new_room(), new_pin())]

    code, out, err = await import_file(stack, tmp_path, csv_file(rows), "--json")

    assert code == EXIT_FAILURE
    report = json.loads(out)
    assert [(c["line"], c["room_id"], c["code"]) for c in report["conflicts"]] == [
        (3, rows[1][0], "pin_taken")
    ]
    assert report["counts"]["imported"] == 2
    assert await registered_pin(stack, rows[2][0]) == rows[2][1]
    assert all(pin not in out + err for _, pin in rows)


async def test_a_room_registered_with_another_pin_is_a_pin_conflict_and_keeps_its_pin(
    stack: Stack, tmp_path: Path
) -> None:
    room = new_room()
    drawn = (await stack.client.register_room(room)).pin

    code, report = await import_json(stack, tmp_path, csv_file([(room, new_pin())]))

    assert code == EXIT_FAILURE
    assert [(c["line"], c["code"]) for c in report["conflicts"]] == [(2, "pin_conflict")]
    assert await registered_pin(stack, room) == drawn


async def test_a_dry_run_tells_what_would_happen_and_changes_nothing(
    stack: Stack, tmp_path: Path
) -> None:
    present, present_pin, taken = new_room(), new_pin(), new_pin()
    await stack.client.register_room(present, pin=present_pin)
    await stack.client.register_room(new_room(), pin=taken)
    fresh, fresh_pin, blocked = new_room(), new_pin(), new_room()
    rows = [(fresh, fresh_pin), (present, present_pin), (blocked, taken)]

    code, report = await import_json(stack, tmp_path, csv_file(rows), "--dry-run")

    assert code == EXIT_FAILURE and report["dry_run"] is True
    assert report["counts"] == {
        "imported": 0,
        "would_import": 1,
        "already_present": 1,
        "conflicts": 1,
        "invalid": 0,
        "failed": 0,
    }
    assert [(c["line"], c["code"]) for c in report["conflicts"]] == [(4, "pin_taken")]
    assert (
        await registered_pin(stack, fresh) is None and await registered_pin(stack, blocked) is None
    )
    assert not await lease_running(stack, fresh_pin)


async def test_the_json_report_is_one_document_with_counts_problems_and_rate(
    stack: Stack, tmp_path: Path
) -> None:
    room, pin = new_room(), new_pin()

    code, out, err = await import_file(stack, tmp_path, csv_file([(room, pin)]), "--json")

    assert code == EXIT_OK and err == ""
    report = json.loads(out)
    assert set(report) == {
        "file",
        "format",
        "dry_run",
        "ok",
        "rooms",
        "counts",
        "conflicts",
        "invalid",
        "failed",
        "elapsed_seconds",
        "rooms_per_second",
    }
    assert (report["format"], report["rooms"], report["ok"], report["dry_run"]) == (
        "csv",
        1,
        True,
        False,
    )
    assert report["counts"]["imported"] == 1
    assert report["conflicts"] == report["invalid"] == report["failed"] == []
    assert report["elapsed_seconds"] > 0 and report["rooms_per_second"] > 0


async def test_invalid_lines_are_reported_by_line_and_reason_and_the_valid_ones_imported(
    stack: Stack, tmp_path: Path
) -> None:
    good, good_pin, bad_pin = new_room(), new_pin(), "12x45678"
    lines = [
        json.dumps({"room_id": good, "pin": good_pin}),
        "",
        json.dumps({"room_id": "not a room!", "pin": new_pin()}),
        json.dumps({"room_id": new_room(), "pin": bad_pin}),
        "{broken",
    ]

    code, out, err = await meet_telephony(
        "rooms", "import", "-", "--json", env=cli_environment(stack), stdin="\n".join(lines)
    )

    assert code == EXIT_FAILURE, out + err
    report = json.loads(out)
    assert report["format"] == "jsonl" and report["counts"]["imported"] == 1
    assert [bad["line"] for bad in report["invalid"]] == [3, 4, 5]
    assert bad_pin not in out and good_pin not in out
    assert await registered_pin(stack, good) == good_pin


async def test_the_text_report_lists_each_problem_by_line_without_a_pin(
    stack: Stack, tmp_path: Path
) -> None:
    taken = new_pin()
    await stack.client.register_room(new_room(), pin=taken)
    blocked = new_room()

    code, out, err = await import_file(
        stack, tmp_path, csv_file([(blocked, taken), (new_room(), "12x4")])
    )

    assert code == EXIT_FAILURE
    assert re.search(rf"^2\s+{blocked}\s+conflict pin_taken: ", out, re.MULTILINE)
    assert re.search(r"^3\s+\S+\s+invalid: the PIN is not 4 to 16 digits", out, re.MULTILINE)
    assert taken not in out + err and "12x4" not in out + err


async def test_temporal_unreachable_exits_unavailable_and_imports_nothing(
    stack: Stack, tmp_path: Path
) -> None:
    room = new_room()
    env = {**cli_environment(stack), "TEMPORAL_ADDRESS": f"127.0.0.1:{free_port()}"}
    path = tmp_path / "rooms.csv"
    path.write_text(csv_file([(room, new_pin())]))

    code, out, _ = await meet_telephony("rooms", "import", str(path), "--json", env=env)

    assert code == EXIT_UNAVAILABLE and json.loads(out)["error"] == "temporal_unavailable"
    assert await registered_pin(stack, room) is None
