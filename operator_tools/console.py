"""Terminal output for the CLI: exit codes, tables, JSON, and a spinner for slow steps."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from collections.abc import AsyncIterator, Sequence
from typing import IO, Any, Final

# Exit codes of every `meet-telephony` command (documented in `--help` and the README).
EXIT_OK: Final = 0
EXIT_FAILURE: Final = 1  # a check failed, a call was refused, an unexpected error
EXIT_USAGE: Final = 2  # bad settings, bad arguments
EXIT_NOT_FOUND: Final = 3  # the room is not registered
EXIT_UNAVAILABLE: Final = 4  # Temporal, LiveKit or the gateway cannot be reached
EXIT_PORT_IN_USE: Final = 5  # `dev`: a port it needs is taken

EXIT_CODES_HELP: Final = (
    "exit codes: 0 ok, 1 failure (check failed, call refused), 2 bad settings or usage, "
    "3 not found, 4 Temporal/LiveKit/gateway unreachable, 5 port already in use"
)


def print_json(data: Any, stream: IO[str] | None = None) -> None:
    print(json.dumps(data, indent=2, sort_keys=True, default=str), file=stream or sys.stdout)


def print_error(
    as_json: bool, code: str, message: str, *, prog: str = "meet-telephony", **details: Any
) -> None:
    """An error: one line on stderr, or with `--json` one document on stdout, where a script
    reading the command's output looks (`code` is stable, `message` is for people)."""
    if as_json:
        print_json({"error": code, "message": message, **details})
    else:
        print(f"{prog}: {message}", file=sys.stderr)


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A plain text table, columns left-aligned, two spaces apart."""
    cells = [[str(h) for h in headers], *[["" if c is None else str(c) for c in r] for r in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ("  ".join(c.ljust(widths[i]) for i, c in enumerate(row)).rstrip() for row in cells)
    return "\n".join(lines)


def key_values(pairs: Sequence[tuple[str, Any]]) -> str:
    """`key: value` lines, keys aligned."""
    width = max((len(k) for k, _ in pairs), default=0)
    return "\n".join(f"{k + ':':<{width + 1}} {'' if v is None else v}" for k, v in pairs)


_FRAMES: Final = "|/-\\"


@contextlib.asynccontextmanager
async def spinner(
    message: str, *, delay: float = 1.0, stream: IO[str] | None = None
) -> AsyncIterator[None]:
    """Show `message` with a spinner on stderr if the wait lasts more than `delay` seconds.

    Only when stderr is a terminal: logs and pipes never see spinner frames.
    """
    out = stream or sys.stderr
    if not out.isatty():
        yield
        return

    async def spin() -> None:
        await asyncio.sleep(delay)
        frame = 0
        while True:
            out.write(f"\r{_FRAMES[frame % len(_FRAMES)]} {message}")
            out.flush()
            frame += 1
            await asyncio.sleep(0.1)

    task = asyncio.create_task(spin())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        out.write("\r\x1b[K")
        out.flush()
