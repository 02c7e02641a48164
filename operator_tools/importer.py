"""`meet-telephony rooms import FILE`: register many rooms, each with the PIN it already has
(La Suite Meet's `pin_code`, printed in invitations already sent).

Two parts: the file's parsing, pure (`parse_rooms`: entries, invalid lines, duplicates), and the
import itself (`import_entries`: bounded concurrency against `TelephonyClient`), then the report.
Idempotent: a room already registered with its PIN counts as "already present" (asked with the
`status` query first), so a re-run after an interruption finishes the job. No PIN is ever
printed, logged or put in a message: problems name the line number and, when valid, the room id.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import json
import sys
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import PurePath
from typing import IO, Any, Final, Protocol

from temporalio.client import WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode
from tqdm import tqdm

from operator_tools.console import (
    EXIT_FAILURE,
    EXIT_OK,
    EXIT_UNAVAILABLE,
    EXIT_USAGE,
    key_values,
    print_error,
    print_json,
    spinner,
    table,
)
from telephony.client import (
    PinConflict,
    PinTaken,
    RoomNotRegistered,
    TelephonyClient,
    TelephonyError,
    TelephonyUnavailable,
)
from telephony.models import DialInInfo, RoomStatus, is_valid_room_id
from telephony.pins import PIN_RULE, is_valid_pin, normalized_pin
from telephony.settings import Settings
from telephony.temporal import temporal_connection_problem

DEFAULT_CONCURRENCY: Final = 20
ROOM_ID_RULE: Final = (
    "1-128 characters: letters, digits and ._:@=+- (starting with a letter or digit)"
)
# Line numbers named in a reason ("also on lines 3, 9, 12, … 4 more").
_SHOWN_LINES: Final = 5


# --- parsing (pure) ---------------------------------------------------------------------------


class FileFormat(StrEnum):
    CSV = "csv"
    JSONL = "jsonl"


_EXTENSIONS: Final = {
    ".csv": FileFormat.CSV,
    ".jsonl": FileFormat.JSONL,
    ".ndjson": FileFormat.JSONL,
    ".json": FileFormat.JSONL,
}


class FileFormatError(ValueError):
    """The file as a whole cannot be read as rooms (no CSV header, not UTF-8): a usage error.
    The message never quotes the file's content."""


@dataclass(frozen=True)
class Entry:
    """One room to import: its line in the file, its id, its PIN (digits only)."""

    line: int
    room_id: str
    pin: str

    def __repr__(self) -> str:  # never the PIN, even in a traceback or a test failure
        return f"Entry(line={self.line}, room_id={self.room_id!r})"


@dataclass(frozen=True)
class InvalidLine:
    """A line that is not imported, and why; `room_id` only when the room id itself is valid."""

    line: int
    reason: str
    room_id: str | None = None


@dataclass
class ParsedFile:
    format: FileFormat
    entries: list[Entry]
    invalid: list[InvalidLine]

    @property
    def records(self) -> int:
        """Non-blank data lines (the CSV header excluded)."""
        return len(self.entries) + len(self.invalid)


def detect_format(text: str, name: str | None = None) -> FileFormat:
    """From the file name's extension when it is a known one, else from the content: JSON lines
    start with `{`."""
    if name is not None:
        known = _EXTENSIONS.get(PurePath(name).suffix.lower())
        if known is not None:
            return known
    first = next((line.strip() for line in text.splitlines() if line.strip()), "")
    return FileFormat.JSONL if first.startswith("{") else FileFormat.CSV


def decode(data: bytes) -> str:
    """The file's text: UTF-8, with or without a byte-order mark (spreadsheet exports add one)."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise FileFormatError(f"the file is not UTF-8 text (byte {exc.start})") from None


def parse_rooms(text: str, name: str | None = None) -> ParsedFile:
    """Entries and invalid lines of a CSV (`room_id,pin` with a header line, columns found by
    name) or JSON-lines (`{"room_id": ..., "pin": ...}`) file. Line numbers are the file's
    (1-based, blank lines counted); blank lines are skipped. A room listed twice with the same
    PIN is imported once (the later lines are invalid); a room listed with different PINs, or
    one PIN given to different rooms, makes every line involved invalid (which one is meant
    cannot be told)."""
    file_format = detect_format(text, name)
    lines = text.splitlines()
    if file_format is FileFormat.CSV:
        candidates, invalid = _parse_csv(lines)
    else:
        candidates, invalid = _parse_jsonl(lines)
    entries, duplicates = _without_duplicates(candidates)
    invalid = sorted([*invalid, *duplicates], key=lambda bad: bad.line)
    return ParsedFile(format=file_format, entries=entries, invalid=invalid)


def _numbered(lines: Sequence[str]) -> Iterable[tuple[int, str]]:
    return ((number, text) for number, text in enumerate(lines, start=1) if text.strip())


def _checked(line: int, room_id: str, pin: str) -> Entry | InvalidLine:
    room_id = room_id.strip()
    if not room_id:
        return InvalidLine(line, "no room id")
    if not is_valid_room_id(room_id):
        return InvalidLine(line, f"the room id is not valid: {ROOM_ID_RULE}")
    digits = normalized_pin(pin)
    if not digits:
        return InvalidLine(line, "no PIN", room_id)
    if not is_valid_pin(digits):
        return InvalidLine(line, f"the PIN is not {PIN_RULE} (spaces and dashes allowed)", room_id)
    return Entry(line, room_id, digits)


def _parse_csv(lines: Sequence[str]) -> tuple[list[Entry], list[InvalidLine]]:
    numbered = iter(_numbered(lines))
    header_line = next(numbered, None)
    if header_line is None:
        return [], []
    header = [name.strip().lower() for name in _csv_fields(header_line[1])]
    if "room_id" not in header or "pin" not in header:
        raise FileFormatError(
            f"line {header_line[0]}: a CSV file starts with the header line `room_id,pin` "
            '(or give JSON lines: {"room_id": ..., "pin": ...})'
        )
    room_column, pin_column = header.index("room_id"), header.index("pin")
    entries: list[Entry] = []
    invalid: list[InvalidLine] = []
    for number, text in numbered:
        fields = _csv_fields(text)
        if len(fields) != len(header):
            invalid.append(
                InvalidLine(number, f"{len(fields)} fields where the header has {len(header)}")
            )
            continue
        _sort(_checked(number, fields[room_column], fields[pin_column]), entries, invalid)
    return entries, invalid


def _csv_fields(text: str) -> list[str]:
    return next(csv.reader([text]), [])


def _parse_jsonl(lines: Sequence[str]) -> tuple[list[Entry], list[InvalidLine]]:
    entries: list[Entry] = []
    invalid: list[InvalidLine] = []
    for number, text in _numbered(lines):
        _sort(_json_line(number, text), entries, invalid)
    return entries, invalid


def _sort(checked: Entry | InvalidLine, entries: list[Entry], invalid: list[InvalidLine]) -> None:
    if isinstance(checked, Entry):
        entries.append(checked)
    else:
        invalid.append(checked)


def _json_line(number: int, text: str) -> Entry | InvalidLine:
    try:
        record = json.loads(text)
    except json.JSONDecodeError as exc:
        # The decoder's message quotes no content, only where it stopped.
        return InvalidLine(number, f"not valid JSON ({exc.msg} at column {exc.colno})")
    if not isinstance(record, dict):
        return InvalidLine(number, 'not a JSON object {"room_id": ..., "pin": ...}')
    room_id, pin = record.get("room_id"), record.get("pin")
    if not isinstance(room_id, str):
        return InvalidLine(number, "no room_id string")
    if pin is None:
        checked = _checked(number, room_id, "")
        return checked if isinstance(checked, InvalidLine) else InvalidLine(number, "no PIN")
    if not isinstance(pin, str):
        # A JSON number loses its leading zeros ("0123…" is another PIN): refused, not guessed.
        reason = "the PIN must be a JSON string (a number loses leading zeros)"
        valid_room = is_valid_room_id(room_id.strip())
        return InvalidLine(number, reason, room_id.strip() if valid_room else None)
    return _checked(number, room_id, pin)


def _lines_text(lines: Sequence[int]) -> str:
    shown = ", ".join(str(line) for line in lines[:_SHOWN_LINES])
    more = len(lines) - _SHOWN_LINES
    word = "line" if len(lines) == 1 else "lines"
    return f"{word} {shown}{f', … {more} more' if more > 0 else ''}"


def _without_duplicates(entries: list[Entry]) -> tuple[list[Entry], list[InvalidLine]]:
    by_room: dict[str, list[Entry]] = {}
    by_pin: dict[str, list[Entry]] = {}
    for entry in entries:
        by_room.setdefault(entry.room_id, []).append(entry)
        by_pin.setdefault(entry.pin, []).append(entry)
    reasons: dict[int, str] = {}
    for group in by_room.values():
        if len(group) == 1:
            continue
        if len({entry.pin for entry in group}) > 1:
            for entry in group:
                others = [e.line for e in group if e is not entry]
                reasons[entry.line] = (
                    f"the room is also on {_lines_text(others)} with another PIN "
                    "(which one is meant cannot be told)"
                )
        else:
            for entry in group[1:]:
                reasons[entry.line] = f"the room and PIN are already on line {group[0].line}"
    for group in by_pin.values():
        if len({entry.room_id for entry in group}) > 1:
            for entry in group:
                others = [e.line for e in group if e.room_id != entry.room_id]
                reasons.setdefault(
                    entry.line,
                    f"the same PIN is given to another room on {_lines_text(others)}",
                )
    kept = [entry for entry in entries if entry.line not in reasons]
    invalid = [
        InvalidLine(entry.line, reasons[entry.line], entry.room_id)
        for entry in entries
        if entry.line in reasons
    ]
    return kept, invalid


# --- the import -------------------------------------------------------------------------------


class Outcome(StrEnum):
    IMPORTED = "imported"
    WOULD_IMPORT = "would_import"
    ALREADY_PRESENT = "already_present"
    PIN_TAKEN = "pin_taken"
    PIN_CONFLICT = "pin_conflict"
    FAILED = "failed"


CONFLICTS: Final = (Outcome.PIN_TAKEN, Outcome.PIN_CONFLICT)
PIN_TAKEN_MESSAGE: Final = "another room holds this PIN"
PIN_CONFLICT_MESSAGE: Final = (
    "the room is registered with another PIN (to change it: `meet-telephony rooms rotate-pin "
    "ROOM --pin PIN`)"
)


@dataclass(frozen=True)
class Result:
    entry: Entry
    outcome: Outcome
    code: str | None = None  # for a failure: the client's error code
    message: str | None = None


class RoomsClient(Protocol):
    """What the import needs of `TelephonyClient`."""

    async def get_status(self, room_id: str) -> RoomStatus: ...

    async def register_room(self, room_id: str, *, pin: str | None = None) -> DialInInfo: ...


PinLeased = Callable[[str], Awaitable[bool]]


def lease_checker(client: TelephonyClient) -> PinLeased:
    """`--dry-run`'s read-only question for a PIN: is its lease workflow
    (`Settings.pin_lease_id`, a keyed hash) running, i.e. does a room hold it?"""

    async def leased(pin: str) -> bool:
        handle = client.temporal.get_workflow_handle(client.settings.pin_lease_id(pin))
        try:
            description = await handle.describe()
        except RPCError as exc:
            if exc.status is RPCStatusCode.NOT_FOUND:
                return False
            if exc.status in (RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED):
                raise TelephonyUnavailable(
                    f"Temporal is unavailable ({temporal_connection_problem(exc)})"
                ) from None
            raise TelephonyError(f"a PIN lease could not be read: {exc.message}") from None
        return description.status is WorkflowExecutionStatus.RUNNING

    return leased


def _scrubbed(message: str, pin: str) -> str:
    """A client message as shown: never the PIN, should one ever appear in it."""
    return message.replace(pin, "[PIN]")


async def import_one(
    client: RoomsClient, entry: Entry, *, dry_run: bool, pin_leased: PinLeased | None = None
) -> Result:
    """One room: already present, imported (or would be), or a conflict. Raises
    `TelephonyUnavailable` (the caller stops); any other client error is a failed line."""
    try:
        try:
            status: RoomStatus | None = await client.get_status(entry.room_id)
        except RoomNotRegistered:
            status = None
        if status is not None:
            if status.pin == entry.pin:
                return Result(entry, Outcome.ALREADY_PRESENT)
            return Result(entry, Outcome.PIN_CONFLICT, message=PIN_CONFLICT_MESSAGE)
        if dry_run:
            if pin_leased is not None and await pin_leased(entry.pin):
                return Result(entry, Outcome.PIN_TAKEN, message=PIN_TAKEN_MESSAGE)
            return Result(entry, Outcome.WOULD_IMPORT)
        try:
            info = await client.register_room(entry.room_id, pin=entry.pin)
        except PinTaken:
            return Result(entry, Outcome.PIN_TAKEN, message=PIN_TAKEN_MESSAGE)
        except PinConflict:  # registered meanwhile, by someone else, with another PIN
            return Result(entry, Outcome.PIN_CONFLICT, message=PIN_CONFLICT_MESSAGE)
        if info.pin != entry.pin:  # not expected: the workflow adopts the PIN or refuses it
            return Result(entry, Outcome.PIN_CONFLICT, message=PIN_CONFLICT_MESSAGE)
        return Result(entry, Outcome.IMPORTED)
    except TelephonyUnavailable:
        raise
    except TelephonyError as exc:
        return Result(entry, Outcome.FAILED, code=exc.code, message=_scrubbed(str(exc), entry.pin))


async def import_entries(
    client: RoomsClient,
    entries: Sequence[Entry],
    *,
    concurrency: int = DEFAULT_CONCURRENCY,
    dry_run: bool = False,
    pin_leased: PinLeased | None = None,
    on_done: Callable[[Result], None] | None = None,
) -> list[Result]:
    """Every entry's result, in the file's order, at most `concurrency` rooms in flight.

    When Temporal becomes unavailable, no new room is started; the rooms not done are failed
    results with the reason (a re-run finishes them: done rooms are then already present).
    """
    results: list[Result | None] = [None] * len(entries)
    pending = iter(enumerate(entries))
    lost: list[TelephonyUnavailable] = []

    async def worker() -> None:
        for index, entry in pending:  # one shared iterator: each entry is taken once
            if lost:
                return
            try:
                result = await import_one(client, entry, dry_run=dry_run, pin_leased=pin_leased)
            except TelephonyUnavailable as exc:
                lost.append(exc)
                return
            results[index] = result
            if on_done is not None:
                on_done(result)

    await asyncio.gather(*(worker() for _ in range(max(1, concurrency))))
    reason = str(lost[0]) if lost else "not done"  # every entry is done unless Temporal was lost
    return [
        result
        if result is not None
        else Result(entry, Outcome.FAILED, code=TelephonyUnavailable.code, message=reason)
        for entry, result in zip(entries, results, strict=True)
    ]


# --- the report -------------------------------------------------------------------------------


@dataclass
class Report:
    file: str
    parsed: ParsedFile
    dry_run: bool
    results: list[Result] = field(default_factory=list)
    elapsed: float = 0.0

    def of(self, *outcomes: Outcome) -> list[Result]:
        return [result for result in self.results if result.outcome in outcomes]

    @property
    def done(self) -> int:
        return len(self.results) - len(self.of(Outcome.FAILED))

    @property
    def rate(self) -> float:
        return self.done / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def unavailable(self) -> bool:
        return any(r.code == TelephonyUnavailable.code for r in self.of(Outcome.FAILED))

    def exit_code(self) -> int:
        if self.unavailable:
            return EXIT_UNAVAILABLE
        if self.parsed.invalid or self.of(*CONFLICTS, Outcome.FAILED):
            return EXIT_FAILURE
        return EXIT_OK

    def counts(self) -> dict[str, int]:
        return {
            "imported": len(self.of(Outcome.IMPORTED)),
            "would_import": len(self.of(Outcome.WOULD_IMPORT)),
            "already_present": len(self.of(Outcome.ALREADY_PRESENT)),
            "conflicts": len(self.of(*CONFLICTS)),
            "invalid": len(self.parsed.invalid),
            "failed": len(self.of(Outcome.FAILED)),
        }

    def to_json(self) -> dict[str, Any]:
        def problem(result: Result) -> dict[str, Any]:
            return {
                "line": result.entry.line,
                "room_id": result.entry.room_id,
                "code": result.code or result.outcome.value,
                "message": result.message,
            }

        return {
            "file": self.file,
            "format": self.parsed.format.value,
            "dry_run": self.dry_run,
            "ok": self.exit_code() == EXIT_OK,
            "rooms": self.parsed.records,
            "counts": self.counts(),
            "conflicts": [problem(result) for result in self.of(*CONFLICTS)],
            "invalid": [
                {"line": bad.line, "room_id": bad.room_id, "reason": bad.reason}
                for bad in self.parsed.invalid
            ],
            "failed": [problem(result) for result in self.of(Outcome.FAILED)],
            "elapsed_seconds": round(self.elapsed, 3),
            "rooms_per_second": round(self.rate, 1),
        }

    def text(self) -> str:
        counts = self.counts()
        first = (
            ("would import", counts["would_import"])
            if self.dry_run
            else ("imported", counts["imported"])
        )
        pairs: list[tuple[str, Any]] = [
            (
                "file",
                f"{self.file} ({self.parsed.format.value}, {self.parsed.records} rooms listed)",
            ),
            first,
            ("already present", counts["already_present"]),
            ("conflicts", counts["conflicts"]),
            ("invalid lines", counts["invalid"]),
            ("failed", counts["failed"]),
            ("elapsed", f"{self.elapsed:.1f} s ({self.rate:.1f} rooms/s)"),
        ]
        parts = [("dry run: nothing was changed\n" if self.dry_run else "") + key_values(pairs)]
        rows: list[tuple[Any, ...]] = [
            (r.entry.line, r.entry.room_id, f"conflict {r.outcome.value}: {r.message}")
            for r in self.of(*CONFLICTS)
        ]
        rows += [
            (bad.line, bad.room_id or "-", f"invalid: {bad.reason}") for bad in self.parsed.invalid
        ]
        rows += [
            (r.entry.line, r.entry.room_id, f"failed {r.code}: {r.message}")
            for r in self.of(Outcome.FAILED)
            if r.code != TelephonyUnavailable.code
        ]
        if rows:
            parts.append(table(["LINE", "ROOM", "PROBLEM"], sorted(rows, key=lambda r: r[0])))
        lost = [r for r in self.of(Outcome.FAILED) if r.code == TelephonyUnavailable.code]
        if lost:
            parts.append(
                f"not done ({lost[0].message}): {_ranges([r.entry.line for r in lost])}\n"
                "run the same command again to finish them (rooms done count as already present)"
            )
        return "\n\n".join(parts)


def _ranges(lines: Sequence[int]) -> str:
    """`lines 3-7, 9, 12-40`: every line number, compactly."""
    spans: list[list[int]] = []
    for line in sorted(lines):
        if spans and line == spans[-1][1] + 1:
            spans[-1][1] = line
        else:
            spans.append([line, line])
    shown = ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in spans)
    return f"{'line' if len(lines) == 1 else 'lines'} {shown}"


# --- the command ------------------------------------------------------------------------------


def wants_progress_bar(stream: IO[str], as_json: bool) -> bool:
    """A progress bar on a terminal only: never into a pipe, a log, or next to `--json`."""
    return not as_json and stream.isatty()


def read_rooms_file(path: str) -> ParsedFile:
    """Parse FILE (`-`: standard input). Raises FileFormatError (and OSError)."""
    if path == "-":
        return parse_rooms(decode(sys.stdin.buffer.read()))
    with open(path, "rb") as source:
        data = source.read()
    return parse_rooms(decode(data), path)


async def run_import(
    settings: Settings,
    parsed: ParsedFile,
    *,
    file: str,
    concurrency: int,
    dry_run: bool,
    progress: bool,
) -> Report:
    """Connect and import (or check, with `dry_run`) every entry; TelephonyUnavailable if
    Temporal cannot be reached at all."""
    report = Report(file=file, parsed=parsed, dry_run=dry_run)
    started = time.monotonic()
    bar = tqdm(
        total=len(parsed.entries),
        desc="checking" if dry_run else "importing",
        unit="room",
        file=sys.stderr,
        disable=not progress,
        dynamic_ncols=True,
    )

    def advance(_: Result) -> None:
        bar.update(1)

    try:
        async with contextlib.AsyncExitStack() as connection:
            async with spinner("waiting for Temporal"):
                client = await connection.enter_async_context(TelephonyClient.connect(settings))
            report.results = await import_entries(
                client,
                parsed.entries,
                concurrency=concurrency,
                dry_run=dry_run,
                pin_leased=lease_checker(client) if dry_run else None,
                on_done=advance,
            )
    finally:
        bar.close()
        report.elapsed = time.monotonic() - started
    return report


def run_rooms_import(settings: Settings, args: argparse.Namespace) -> int:
    """The `rooms import` handler: exit 0 when every line is imported or already present, 1 with
    a conflict, an invalid or a failed line, 2 for a file that cannot be read, 4 when Temporal
    is or becomes unreachable (a re-run finishes the job)."""
    as_json: bool = args.json
    try:
        parsed = read_rooms_file(args.file)
    except FileFormatError as exc:
        print_error(as_json, "invalid_file", f"{args.file}: {exc}", prog=args.prog)
        return EXIT_USAGE
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        print_error(as_json, "invalid_file", f"{args.file}: {reason}", prog=args.prog)
        return EXIT_USAGE
    if not settings.room_telephony_enabled:
        print_error(
            as_json,
            "telephony_disabled",
            "telephony is disabled (ROOM_TELEPHONY_ENABLED is false)",
            prog=args.prog,
        )
        return EXIT_USAGE
    try:
        report = asyncio.run(
            run_import(
                settings,
                parsed,
                file=args.file,
                concurrency=args.concurrency,
                dry_run=args.dry_run,
                progress=wants_progress_bar(sys.stderr, as_json),
            )
        )
    except TelephonyUnavailable as exc:
        print_error(as_json, exc.code, str(exc), prog=args.prog)
        return EXIT_UNAVAILABLE
    except KeyboardInterrupt:
        message = "interrupted: run the same command again to finish the import"
        print_error(as_json, "interrupted", message, prog=args.prog)
        return EXIT_FAILURE
    if as_json:
        print_json(report.to_json())
    else:
        print(report.text())
    return report.exit_code()
