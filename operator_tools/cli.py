"""`meet-telephony`: the service's command line.

Every command takes `--json`; exit codes are in `operator_tools.console`. The process commands
(`worker`, `gateway`) run the same code as `python -m worker` / `python -m webhook_gateway`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, NoReturn

from pydantic import SecretStr, ValidationError

from operator_tools.console import (
    EXIT_CODES_HELP,
    EXIT_FAILURE,
    EXIT_NOT_FOUND,
    EXIT_OK,
    EXIT_UNAVAILABLE,
    EXIT_USAGE,
    key_values,
    print_error,
    print_json,
    spinner,
    table,
)
from operator_tools.dev import add_dev_arguments, run_dev
from operator_tools.doctor import report_bad_settings, run_doctor
from operator_tools.importer import DEFAULT_CONCURRENCY, run_rooms_import
from operator_tools.settings_doc import markdown_table
from telephony.client import (
    InvalidNumbers,
    InvalidPin,
    InvalidRoomId,
    InvalidSchedule,
    RoomNotRegistered,
    TelephonyClient,
    TelephonyDisabled,
    TelephonyError,
    TelephonyUnavailable,
)
from telephony.dialin import parse_phone_number
from telephony.logs import configure_logging
from telephony.models import DispatchMode, RoomListing, ScheduleWindow
from telephony.pins import PIN_RULE, is_valid_pin, normalized_pin
from telephony.process import (
    ENV_FILE_VARIABLE,
    StartupError,
    exit_process,
    settings_from_environment,
)
from telephony.settings import SECRET_MASK, Settings, http_url, redacted_url, reveal
from telephony.temporal import connect_options
from webhook_gateway.server import add_gateway_arguments, serve_until_stopped
from worker.app import run_worker

DEFAULT_CALLER = "+15550100"

Handler = Callable[[Settings, argparse.Namespace], int]


# --- worker, gateway, emulator, dev, doctor ---------------------------------------------------


def _run_worker(settings: Settings, args: argparse.Namespace) -> int:
    asyncio.run(run_worker(settings))
    return EXIT_OK


def _run_gateway(settings: Settings, args: argparse.Namespace) -> int:
    return serve_until_stopped(
        settings, "meet-telephony gateway", insecure_no_api_token=args.insecure_no_api_token
    )


def _run_emulator(settings: Settings, args: argparse.Namespace) -> int:
    from livekit_emulator.__main__ import main as emulator_main

    # `meet-telephony --json emulator` means the emulator's own --json.
    defaults: list[str] = ["--json"] if args.json else []
    environ = dict(os.environ)
    if settings.livekit_api_key:
        defaults += ["--api-key", settings.livekit_api_key]
    if settings.livekit_api_secret:
        # The emulator takes its secret from the environment (never from a command line).
        environ["LIVEKIT_API_SECRET"] = reveal(settings.livekit_api_secret)
    # Arguments given on the command line come last, so they win over the settings.
    return emulator_main(
        [*defaults, *args.emulator_args], environ=environ, prog="meet-telephony emulator"
    )


def _run_dev(settings: Settings, args: argparse.Namespace) -> int:
    return run_dev(settings, args)


def _run_doctor(settings: Settings, args: argparse.Namespace) -> int:
    code: int = asyncio.run(run_doctor(settings, gateway_url=args.gateway_url, as_json=args.json))
    return code


# --- config -----------------------------------------------------------------------------------

MASK = SECRET_MASK


def effective_settings(settings: Settings) -> dict[str, Any]:
    """Every setting by environment variable name, as the processes act on it: secrets masked
    (set or not), credentials in LIVEKIT_URL masked, TEMPORAL_TLS as the client decides it."""
    shown: dict[str, Any] = {}
    for name in Settings.model_fields:
        value = getattr(settings, name)
        if isinstance(value, SecretStr):
            value = MASK if reveal(value) else None
        elif hasattr(value, "total_seconds"):
            value = f"{int(value.total_seconds())}s"
        elif hasattr(value, "value"):
            value = value.value
        shown[name.upper()] = value
    if settings.livekit_url:
        shown["LIVEKIT_URL"] = redacted_url(settings.livekit_url)
    shown["TEMPORAL_TLS"] = temporal_tls(settings)[0]
    return shown


def temporal_tls(settings: Settings) -> tuple[bool | None, str]:
    """Whether the Temporal client uses TLS, and why: TEMPORAL_TLS is often unset while an API
    key or TLS files turn it on. The value is `connect_options`', which the client connects with."""
    try:
        on = bool(connect_options(settings).get("tls"))
    except (OSError, ValueError) as exc:  # Temporal's loader reads the TLS files
        return settings.temporal_tls, f"cannot tell: the TLS settings do not load ({exc})"
    if not on:
        if settings.temporal_tls is False:
            return False, "TEMPORAL_TLS is false"
        return False, "default: no TEMPORAL_TLS, TEMPORAL_TLS_* or TEMPORAL_API_KEY"
    files = [
        name.upper()
        for name in Settings.model_fields
        if name.startswith("temporal_tls_") and getattr(settings, name)
    ]
    if settings.temporal_tls:
        return True, "TEMPORAL_TLS is true"
    if files:
        return True, f"{', '.join(files)} set"
    if settings.temporal_api_key is not None:
        return True, "TEMPORAL_API_KEY is set: Temporal's client turns TLS on with an API key"
    return True, "Temporal's client configuration profile"


def _shown_value(value: Any) -> Any:
    if value is None or value == []:
        return "(unset)"
    return ",".join(value) if isinstance(value, list) else value


def _run_config(settings: Settings, args: argparse.Namespace) -> int:
    if args.markdown:
        print(markdown_table())
        return EXIT_OK
    shown = effective_settings(settings)
    if args.json:
        print_json(shown)
        return EXIT_OK
    # Values that are not what was set get their reason beside them.
    notes = {"TEMPORAL_TLS": temporal_tls(settings)[1]}
    rows = [
        (name, f"{_shown_value(value)}  ({notes[name]})" if name in notes else _shown_value(value))
        for name, value in shown.items()
    ]
    print(table(["VARIABLE", "VALUE"], rows))
    return EXIT_OK


# --- rooms ------------------------------------------------------------------------------------


def _rooms(
    settings: Settings,
    args: argparse.Namespace,
    action: Callable[[Any], Awaitable[Any]],
    render: Callable[[Any], None],
) -> int:
    """Connect, run `action(client)`, render; map the client's errors to exit codes."""

    async def go() -> Any:
        async with spinner("waiting for Temporal"), TelephonyClient.connect(settings) as client:
            return await action(client)

    codes: list[tuple[type[TelephonyError], int]] = [
        (RoomNotRegistered, EXIT_NOT_FOUND),
        (TelephonyUnavailable, EXIT_UNAVAILABLE),
        (InvalidRoomId, EXIT_USAGE),
        (InvalidSchedule, EXIT_USAGE),
        (InvalidPin, EXIT_USAGE),
        (InvalidNumbers, EXIT_USAGE),
        (TelephonyDisabled, EXIT_USAGE),
    ]
    try:
        result = asyncio.run(go())
    except TelephonyError as exc:
        code = next((c for kind, c in codes if isinstance(exc, kind)), EXIT_FAILURE)
        _fail(args, exc.code, str(exc))
        return code
    render(result)
    return EXIT_OK


def _fail(args: argparse.Namespace, code: str, message: str) -> None:
    print_error(args.json, code, message)


def _usage(args: argparse.Namespace, message: str, code: str = "usage") -> int:
    """A usage error found after parsing: one line naming the command, exit code 2."""
    print_error(args.json, code, f"{message} (see --help)", prog=args.prog)
    return EXIT_USAGE


def _render_dial_in(args: argparse.Namespace) -> Callable[[Any], None]:
    def render(info: Any) -> None:
        if args.json:
            print_json(info.model_dump(mode="json"))
            return
        pairs: list[tuple[str, Any]] = [
            ("room", info.room_id),
            ("pin", info.pin_display),
            ("state", info.state.value),
        ]
        pairs += [("number", f"{n.international}  ({n.tel_uri})") for n in info.numbers]
        pairs += [
            ("window", f"{w.starts_at.isoformat()} → {w.ends_at.isoformat()}")
            for w in info.schedule
        ]
        print(key_values(pairs))

    return render


def _run_rooms_register(settings: Settings, args: argparse.Namespace) -> int:
    windows = args.window or None
    return _rooms(
        settings,
        args,
        lambda c: c.register_room(
            args.room,
            windows,
            pin=args.pin,
            dispatch_mode=args.dispatch_mode,
            numbers=[] if args.every_number else args.number,
            hide_phone_number=args.hide_phone_number,
        ),
        _render_dial_in(args),
    )


def _run_rooms_rotate(settings: Settings, args: argparse.Namespace) -> int:
    return _rooms(
        settings, args, lambda c: c.rotate_pin(args.room, pin=args.pin), _render_dial_in(args)
    )


def _run_rooms_schedule(settings: Settings, args: argparse.Namespace) -> int:
    if args.clear and args.window:
        return _usage(args, "--clear and --window exclude each other")
    windows = [] if args.clear else (args.window or [])
    if not args.clear and not windows:
        return _usage(args, "give --window START/END or --clear")
    return _rooms(
        settings, args, lambda c: c.set_schedule(args.room, windows), _render_dial_in(args)
    )


def _run_rooms_show(settings: Settings, args: argparse.Namespace) -> int:
    async def status_and_dial_in(client: Any) -> tuple[Any, Any]:
        status = await client.get_status(args.room)
        return status, await client.dial_in(status)

    def render(shown: tuple[Any, Any]) -> None:
        status, info = shown
        if args.json:
            print_json(
                {
                    **info.model_dump(mode="json"),
                    "rule_id": status.rule_id,
                    "session": status.session.model_dump(mode="json") if status.session else None,
                    "last_error": status.last_error,
                    "dispatch_mode": status.dispatch_mode,
                    "hide_phone_number": status.hide_phone_number,
                }
            )
            return
        _render_dial_in(args)(info)
        extra: list[tuple[str, Any]] = [
            ("dispatch mode", status.dispatch_mode),
            ("callers' numbers", "hidden" if status.hide_phone_number else "shown"),
            ("rule", status.rule_id or "-"),
        ]
        if status.session is not None:
            extra.append(("session", f"{status.session.sid} since {status.session.started_at}"))
        if status.last_error:
            extra.append(("last error", status.last_error))
        print(key_values(extra))

    return _rooms(settings, args, status_and_dial_in, render)


def _run_reconcile(settings: Settings, args: argparse.Namespace) -> int:
    def render(report: Any) -> None:
        if args.json:
            print_json(report.model_dump(mode="json"))
            return
        print(
            key_values(
                [
                    ("managed rules", report.managed_rules),
                    ("orphans deleted", _counted(report.orphans_deleted, report.orphan_sample)),
                    ("rooms told", _counted(report.rooms_notified, report.notified_sample)),
                    (
                        "sessions repaired",
                        _counted(report.sessions_repaired, report.repaired_sample),
                    ),
                    ("leases checked", report.leases_checked),
                    ("leases released", _counted(report.leases_released, report.released_sample)),
                    ("pages", f"{report.pages} in {report.runs} run(s)"),
                ]
            )
        )

    return _rooms(settings, args, lambda c: c.reconcile(), render)


def _counted(count: int, sample: list[str]) -> str:
    """`3 (a, b, c)`, or `25 (a, b, … 5 more)` when the sample is a part of them."""
    if not count:
        return "0"
    shown = ", ".join(sample)
    more = count - len(sample)
    return f"{count} ({shown}{f', … {more} more' if more > 0 else ''})"


def _run_rooms_unregister(settings: Settings, args: argparse.Namespace) -> int:
    def render(status: Any) -> None:
        if args.json:
            print_json({"room_id": status.room_id, "registered": status.registered})
        else:
            print(f"room {status.room_id} unregistered: dispatch rule removed, PIN released")

    return _rooms(settings, args, lambda c: c.unregister_room(args.room), render)


def _run_rooms_list(settings: Settings, args: argparse.Namespace) -> int:
    def render(rooms: list[RoomListing]) -> None:
        if args.json:
            print_json([room.model_dump(mode="json") for room in rooms])
            return
        rows = [
            (r.room_id, r.state, r.started_at.isoformat() if r.started_at else None) for r in rooms
        ]
        print(table(["ROOM", "STATE", "RUN STARTED"], rows))

    return _rooms(settings, args, lambda c: c.list_rooms(args.limit), render)


def requested_pin(text: str) -> str:
    """A `--pin` option: the digits of a PIN as printed ("841 451 6303") or typed, held to the
    PIN rule of telephony.pins (the value is never echoed back: it may be a real PIN)."""
    digits = normalized_pin(text)
    if not is_valid_pin(digits):
        raise argparse.ArgumentTypeError(f"a PIN is {PIN_RULE} (spaces and dashes allowed)")
    return digits


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not at least 1")
    return value


# --- call -------------------------------------------------------------------------------------

REFUSALS = {
    "no_trunk": "not answered: no inbound trunk owns this number (check the number, or create "
    "a trunk)",
    "no_answer": "not answered: no dispatch rule applies to this trunk at all, so LiveKit SIP "
    "drops the call (the caller hears ringing, then nothing)",
    "invalid_pin": "more than 16 keys, or a key no keypad sends",
    "wrong_pin": "no open room has this PIN (is the room started? was the PIN rotated?)",
}


def _run_call(settings: Settings, args: argparse.Namespace) -> int:
    import aiohttp

    livekit = args.livekit_url or settings.livekit_http_url
    if not livekit:
        return _usage(args, "set LIVEKIT_URL or pass --livekit-url")
    shown = redacted_url(livekit)
    if args.number is not None:
        # Checked here, not by the emulator: a number no trunk could own would be `no_trunk`.
        try:
            parse_phone_number(args.number, settings.room_telephony_default_country)
        except ValueError as exc:
            return _usage(args, f"--number: {exc}", code="invalid_number")
    number = args.number or next(iter(settings.configured_phone_numbers), None)
    if not number:
        return _usage(args, "set ROOM_TELEPHONY_PHONE_NUMBER or pass --number")
    url = f"{http_url(livekit)}/_emulator/calls"
    # `requested_pin` made it digits: what a caller's phone sends for "841 451 6303".
    body = {"pin": args.pin, "number": number, "caller": args.caller}

    async def go() -> tuple[int, Any]:
        timeout = aiohttp.ClientTimeout(total=10)
        async with (
            spinner("calling"),
            aiohttp.ClientSession(timeout=timeout) as session,
            session.post(url, json=body) as response,
        ):
            data = await response.json(content_type=None) if response.status == 200 else None
            return response.status, data

    try:
        status, result = asyncio.run(go())
    except (aiohttp.ClientError, TimeoutError) as exc:
        _fail(args, "livekit_unreachable", f"LiveKit emulator at {shown} unreachable: {exc}")
        return EXIT_UNAVAILABLE
    if status != 200 or not isinstance(result, dict):
        _fail(
            args,
            "not_an_emulator",
            f"{shown} answered HTTP {status} to {redacted_url(url)}: `call` needs the LiveKit "
            "emulator (`meet-telephony dev` or `meet-telephony emulator`)",
        )
        return EXIT_FAILURE
    if args.json:
        print_json(result)
    elif result.get("accepted"):
        print(
            f"landed in room {result.get('room_name')} as {result.get('participant_identity')} "
            f"(rule {result.get('rule_id')}, trunk {result.get('trunk_id')})"
        )
    else:
        reason = str(result.get("reason"))
        print(f"refused: {reason}: {REFUSALS.get(reason, '')}".rstrip(": "))
    return EXIT_OK if result.get("accepted") else EXIT_FAILURE


# --- parser -----------------------------------------------------------------------------------


def schedule_window(value: str) -> ScheduleWindow:
    """`START/END`, both ISO 8601 with a UTC offset."""
    start, sep, end = value.partition("/")
    if not sep:
        raise argparse.ArgumentTypeError(f"{value!r}: expected START/END (ISO 8601)")
    try:
        return ScheduleWindow.model_validate({"starts_at": start, "ends_at": end})
    except ValidationError as exc:
        message = exc.errors()[0].get("msg", "invalid window")
        raise argparse.ArgumentTypeError(f"{value!r}: {message}") from None


class UsageError(Exception):
    """The command line was refused: `prog` is the command, `message` the one line why."""

    def __init__(self, prog: str, message: str) -> None:
        super().__init__(f"{prog}: {message}")
        self.prog = prog
        self.message = message


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # One line instead of argparse's usage block; `main` prints it (as JSON with --json).
        raise UsageError(self.prog, message)


def _epilog(*examples: str) -> str:
    lines = ["examples:", *(f"  {example}" for example in examples), "", EXIT_CODES_HELP]
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    common = _Parser(add_help=False)
    common.add_argument(
        "--json",
        action="store_true",
        default=argparse.SUPPRESS,
        help="machine-readable output (one JSON document on stdout)",
    )
    formatter = argparse.RawDescriptionHelpFormatter
    parser = _Parser(
        prog="meet-telephony",
        description="Phone dial-in for LiveKit rooms, run on Temporal.",
        formatter_class=formatter,
        epilog=_epilog(
            "meet-telephony dev                      # the whole stack on 127.0.0.1",
            "meet-telephony --env-file .data/dev.env rooms register my-room",
            "meet-telephony --env-file .data/dev.env call --pin 1234567890",
            "meet-telephony doctor",
        )
        + "\n\nSettings come from the environment (see the README's settings table); "
        f"--env-file (or {ENV_FILE_VARIABLE}) adds a dotenv file below the environment.",
    )
    parser.add_argument("--json", action="store_true", default=False, help=argparse.SUPPRESS)
    parser.add_argument(
        "--env-file",
        default=os.environ.get(ENV_FILE_VARIABLE),
        metavar="FILE",
        help=f"read settings from this dotenv file too (env: {ENV_FILE_VARIABLE}); "
        "the environment wins over the file",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, handler: Handler, help: str, *examples: str, **kw: Any) -> Any:
        sub = commands.add_parser(
            name,
            help=help,
            description=kw.pop("description", help),
            parents=[common],
            formatter_class=formatter,
            epilog=_epilog(*examples) if examples else EXIT_CODES_HELP,
            **kw,
        )
        sub.set_defaults(handler=handler, prog=sub.prog)
        return sub

    dev = command(
        "dev",
        _run_dev,
        "run Temporal, the worker, the gateway and the LiveKit emulator in one terminal",
        "meet-telephony dev",
        "meet-telephony dev --gateway-port 9080 --data-dir /tmp/telephony",
        "LIVEKIT_URL=https://lk.example.org LIVEKIT_API_KEY=... LIVEKIT_API_SECRET=... "
        "meet-telephony dev",
        description=(
            "Start the dev stack on 127.0.0.1 with one merged, prefixed log; Ctrl-C stops it. "
            "State (Temporal's database, the API token) persists under --data-dir. With "
            "LIVEKIT_URL set, that LiveKit is used instead of the emulator."
        ),
    )
    add_dev_arguments(dev)

    command(
        "worker",
        _run_worker,
        "run the Temporal worker (room workflows, PIN leases, LiveKit activities)",
        "meet-telephony worker",
        description="Run the worker until SIGTERM/SIGINT; in-flight activities finish first.",
    )
    gateway = command(
        "gateway",
        _run_gateway,
        "run the HTTP gateway (LiveKit webhooks, backend API, health, metrics)",
        "TELEPHONY_API_TOKEN=... meet-telephony gateway",
        description=(
            "Serve on TELEPHONY_GATEWAY_HOST:TELEPHONY_GATEWAY_PORT until SIGTERM/SIGINT; "
            "in-flight requests finish first. Needs TELEPHONY_API_TOKEN."
        ),
    )
    add_gateway_arguments(gateway)
    emulator = commands.add_parser(
        "emulator",
        help="run the LiveKit emulator standalone (dev only)",
        description="Arguments are passed to the emulator; `meet-telephony emulator --help` "
        "lists them. LIVEKIT_API_KEY/SECRET, if set, are its defaults.",
        add_help=False,
    )
    emulator.set_defaults(handler=_run_emulator, prog=emulator.prog)

    rooms = commands.add_parser(
        "rooms",
        help="register, import, show, list, rotate the PIN of, schedule or unregister rooms",
        formatter_class=formatter,
        epilog=_epilog(
            "meet-telephony rooms register my-room",
            "meet-telephony rooms show my-room --json",
            "meet-telephony rooms import rooms.csv --dry-run",
            "meet-telephony rooms list",
            "meet-telephony rooms schedule my-room "
            "--window 2030-01-01T09:00:00+01:00/2030-01-01T10:00:00+01:00",
        ),
    )
    room_commands = rooms.add_subparsers(dest="rooms_command", required=True, metavar="ACTION")

    def room_command(name: str, handler: Handler, help: str, *examples: str) -> Any:
        sub = room_commands.add_parser(
            name,
            help=help,
            description=help,
            parents=[common],
            formatter_class=formatter,
            epilog=_epilog(*examples),
        )
        sub.set_defaults(handler=handler, prog=sub.prog)
        if name != "list":
            sub.add_argument("room", help="the room id (the LiveKit room name)")
        return sub

    register = room_command(
        "register",
        _run_rooms_register,
        "register a room (idempotent): allocates its PIN, prints its dial-in info",
        "meet-telephony rooms register my-room",
        "meet-telephony rooms register my-room --pin 8414516303   # keep an existing PIN",
        "meet-telephony rooms register my-room --dispatch-mode always --number +33187210000",
    )
    register.add_argument(
        "--window",
        action="append",
        type=schedule_window,
        metavar="START/END",
        help="a scheduled window (ISO 8601, with offset) opening phone access early; repeatable",
    )
    register.add_argument(
        "--pin",
        type=requested_pin,
        help="keep a PIN the room already has (4-16 digits, spaces and dashes allowed), if free",
    )
    # The room's own phone policy; an option left out keeps what the room has.
    register.add_argument(
        "--dispatch-mode",
        choices=[mode.value for mode in DispatchMode],
        type=DispatchMode,
        help="when the room's rule exists (default: ROOM_TELEPHONY_DISPATCH_MODE)",
    )
    numbers = register.add_mutually_exclusive_group()
    numbers.add_argument(
        "--number",
        action="append",
        metavar="PHONE",
        help="answer calls to this dial-in number only (repeatable; one of the configured ones)",
    )
    numbers.add_argument(
        "--every-number",
        action="store_true",
        help="answer calls to every dial-in number (the default; undoes --number)",
    )
    register.add_argument(
        "--hide-phone-number",
        action=argparse.BooleanOptionalAction,
        help="hide callers' numbers from the meeting (default: ROOM_TELEPHONY_HIDE_PHONE_NUMBER)",
    )
    room_command(
        "show",
        _run_rooms_show,
        "a room's dial-in info, state and rule",
        "meet-telephony rooms show my-room",
    )
    listing = room_command(
        "list",
        _run_rooms_list,
        "registered rooms from Temporal visibility (no PINs)",
        "meet-telephony rooms list --json",
    )
    listing.add_argument(
        "--limit", type=positive_int, default=1000, help="at most this many (1000)"
    )
    rotate = room_command(
        "rotate-pin",
        _run_rooms_rotate,
        "give the room a new PIN; the old one stops working",
        "meet-telephony rooms rotate-pin my-room",
        "meet-telephony rooms rotate-pin my-room --pin 8414516303",
    )
    rotate.add_argument(
        "--pin", type=requested_pin, help="the PIN to rotate to (if free); default: a new one"
    )
    schedule = room_command(
        "schedule",
        _run_rooms_schedule,
        "replace the room's scheduled windows",
        "meet-telephony rooms schedule my-room --window 2030-01-01T09:00Z/2030-01-01T10:00Z",
        "meet-telephony rooms schedule my-room --clear",
    )
    schedule.add_argument(
        "--window", action="append", type=schedule_window, metavar="START/END", help="repeatable"
    )
    schedule.add_argument("--clear", action="store_true", help="remove every window")
    room_command(
        "unregister",
        _run_rooms_unregister,
        "remove the room's dispatch rule and release its PIN",
        "meet-telephony rooms unregister my-room",
    )
    importing = room_commands.add_parser(
        "import",
        help="register rooms with the PINs they already have, from a CSV or JSON-lines file",
        description=(
            "Register every room of FILE with its PIN (idempotent: a re-run after an "
            "interruption finishes the job). FILE is CSV with the header line `room_id,pin`, "
            'or JSON lines {"room_id": ..., "pin": ...}; `-` reads standard input. PINs as '
            "printed (spaces and dashes allowed). Reports imported, already present, conflicts "
            "and invalid lines by line number; never prints a PIN."
        ),
        parents=[common],
        formatter_class=formatter,
        epilog=_epilog(
            "meet-telephony rooms import rooms.csv",
            "meet-telephony rooms import rooms.jsonl --dry-run",
            "meet-telephony rooms import - --json < rooms.csv",
        ),
    )
    importing.set_defaults(handler=run_rooms_import, prog=importing.prog)
    importing.add_argument("file", metavar="FILE", help="the rooms file (`-`: standard input)")
    importing.add_argument(
        "--concurrency",
        type=positive_int,
        default=DEFAULT_CONCURRENCY,
        help=f"rooms registered at once ({DEFAULT_CONCURRENCY})",
    )
    importing.add_argument(
        "--dry-run",
        action="store_true",
        help="read and check the file, ask Temporal what would happen; change nothing",
    )

    call = command(
        "call",
        _run_call,
        "simulate a phone call against the LiveKit emulator: where it lands, or why not",
        "meet-telephony call --pin 1234567890",
        'meet-telephony call --pin "123 456 7890"   # as `rooms show` prints it',
        "meet-telephony call --pin 1234567890 --number +33123456789 --caller +15550123",
    )
    call.add_argument(
        "--pin",
        required=True,
        type=requested_pin,
        help="the digits the caller types (4-16; spaces and dashes allowed, as printed)",
    )
    call.add_argument(
        "--number",
        help="the number dialled, international or national for ROOM_TELEPHONY_DEFAULT_COUNTRY "
        "(default: the first configured one)",
    )
    call.add_argument("--caller", default=DEFAULT_CALLER, help=f"caller id ({DEFAULT_CALLER})")
    call.add_argument("--livekit-url", help="the emulator (default: LIVEKIT_URL)")

    command(
        "reconcile",
        _run_reconcile,
        "run one reconciliation pass now: delete orphan rules, repair rooms whose rule vanished",
        "meet-telephony reconcile",
        "meet-telephony reconcile --json",
        description=(
            "The worker's `telephony-reconcile` schedule runs this every "
            "TELEPHONY_RECONCILE_INTERVAL; this runs one pass now and prints what it did."
        ),
    )

    doctor = command(
        "doctor",
        _run_doctor,
        "check settings, Temporal, search attributes, LiveKit, SIP trunks and the gateway",
        "meet-telephony doctor",
        "meet-telephony doctor --gateway-url https://telephony.example.org --json",
    )
    doctor.add_argument(
        "--gateway-url",
        help="the gateway LiveKit posts webhooks to "
        "(default: http://TELEPHONY_GATEWAY_HOST:TELEPHONY_GATEWAY_PORT)",
    )
    config = command(
        "config",
        _run_config,
        "print the effective settings, secrets masked",
        "meet-telephony config",
        "meet-telephony config --markdown   # the README's settings table",
    )
    config.add_argument(
        "--markdown", action="store_true", help="print the settings reference table (Markdown)"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    tokens = list(sys.argv[1:] if argv is None else argv)
    try:
        code = _run(tokens)
    except UsageError as exc:
        # No parsed `--json` to ask: the flag itself, anywhere on the line, asks for JSON.
        print_error("--json" in tokens, "usage", f"{exc.message} (see --help)", prog=exc.prog)
        code = EXIT_USAGE
    except BrokenPipeError:
        # The reader went away (`| head -1`): the rest has nowhere to go. Point stdout at
        # /dev/null so the last flush cannot fail again, and end quietly, without a traceback.
        with contextlib.suppress(OSError, ValueError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        code = EXIT_OK
    if argv is None:
        exit_process(code)
    return code


def _run(argv: list[str]) -> int:
    parser = build_parser()
    # `emulator` passes its arguments through; every other command must know all of its own.
    args, extra = parser.parse_known_args(argv)
    if args.command == "emulator":
        args.emulator_args = extra
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        settings = settings_from_environment(args.env_file)
    except StartupError as exc:
        if args.command == "doctor":
            return report_bad_settings(str(exc), as_json=args.json)
        print_error(args.json, "bad_settings", str(exc))
        return EXIT_USAGE
    configure_logging(settings)
    handler: Handler = args.handler
    code: int = handler(settings, args)
    # Written now, inside `main`'s BrokenPipeError handling, not at exit.
    sys.stdout.flush()
    return code


if __name__ == "__main__":
    sys.exit(main())
