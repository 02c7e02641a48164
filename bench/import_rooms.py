"""Throughput of `meet-telephony rooms import` (issue 13, "Keep existing PINs").

    .venv/bin/python -m bench.import_rooms [--rooms 10000] [--concurrency 20]
                                           [--temporal dev|cluster]

Starts the stack as every bench section does (`bench.harness.running_stack`: Temporal, the
worker and gateway processes, the emulator), writes a CSV of `--rooms` rooms with distinct
10-digit PINs, and runs the real command on it twice as a process: the first run registers every
room (rooms/s), the second finds every room already present (what a re-run after an
interruption costs). Each run must account for every room, or the script exits non-zero.
Writes bench/results/import-<temporal>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.harness import Stack, log, room_ids, running_stack, write_result
from bench.machine import describe, load_average
from tests.fixtures.processes import installed_binary, service_process_environment


def distinct_pins(count: int, avoid: set[str]) -> list[str]:
    pins: set[str] = set()
    while len(pins) < count:
        pin = f"{secrets.randbelow(10**10):010d}"
        if pin not in avoid:
            pins.add(pin)
    return list(pins)


async def rooms_file(stack: Stack, rooms: int, directory: Path) -> Path:
    # The warm-up room of the harness holds a drawn 10-digit PIN: none of ours may be it.
    warm_up = await stack.telephony.get_room("bench-warm-up")
    path = directory / "rooms.csv"
    rows = zip(room_ids("import", rooms), distinct_pins(rooms, {warm_up.pin}), strict=True)
    path.write_text("room_id,pin\n" + "".join(f"{room},{pin}\n" for room, pin in rows))
    return path


async def run_command(stack: Stack, path: Path, concurrency: int) -> dict[str, Any]:
    """One `meet-telephony rooms import FILE --json` process: its report and wall time."""
    env = service_process_environment(stack.service_env)
    load_before = load_average()
    started = time.perf_counter()
    process = await asyncio.create_subprocess_exec(
        installed_binary("meet-telephony"),
        "rooms",
        "import",
        str(path),
        "--json",
        "--concurrency",
        str(concurrency),
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    wall = time.perf_counter() - started
    if not out.strip():
        raise RuntimeError(
            f"rooms import printed nothing (exit {process.returncode}): {err[-2000:]!r}"
        )
    report = json.loads(out)
    return {
        "exit_code": process.returncode,
        "wall_seconds": round(wall, 2),
        "report_seconds": report.get("elapsed_seconds"),
        "rooms_per_second": report.get("rooms_per_second"),
        "counts": report.get("counts"),
        "load_average_before": load_before,
        "load_average_after": load_average(),
    }


async def run(kind: str, rooms: int, concurrency: int) -> dict[str, Any]:
    results: dict[str, Any] = {"temporal_kind": kind, "machine": describe()}
    async with running_stack(kind) as stack:
        with tempfile.TemporaryDirectory(prefix="bench-import-") as directory:
            path = await rooms_file(stack, rooms, Path(directory))
            log(f"import: {rooms} rooms, concurrency {concurrency} (load {load_average()})")
            first = await run_command(stack, path, concurrency)
            log(f"import: first run {first}")
            second = await run_command(stack, path, concurrency)
            log(f"import: second run {second}")
        stack.check_alive()
        results.update(
            {
                "temporal": stack.temporal.version,
                "rooms": rooms,
                "concurrency": concurrency,
                "first_run": first,
                "second_run": second,
                "memory": stack.memory(),
            }
        )
    write_result(f"import-{kind}", results)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.import_rooms", description=__doc__)
    parser.add_argument("--rooms", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=20, help="the command's --concurrency")
    parser.add_argument("--temporal", choices=("dev", "cluster"), default="dev")
    args = parser.parse_args()
    results = asyncio.run(run(args.temporal, args.rooms, args.concurrency))
    first, second = results["first_run"], results["second_run"]
    print(
        f"\nimport of {args.rooms} rooms: {first['rooms_per_second']} rooms/s "
        f"({first['report_seconds']} s, exit {first['exit_code']}, counts {first['counts']}); "
        f"re-run: {second['rooms_per_second']} rooms/s ({second['report_seconds']} s, "
        f"counts {second['counts']}); load average {first['load_average_before']} -> "
        f"{second['load_average_after']}"
    )
    complete = (
        first["exit_code"] == 0
        and first["counts"]["imported"] == args.rooms
        and second["exit_code"] == 0
        and second["counts"]["already_present"] == args.rooms
    )
    raise SystemExit(0 if complete else 1)


if __name__ == "__main__":
    main()
