"""`python -m tests.chaos`: run seeds, one summary line each; exit 1 on any violation."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections import Counter
from pathlib import Path

from tests.chaos.generator import FAULT_KINDS
from tests.chaos.runner import run_seed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.chaos",
        description="Whole-system chaos runs of meet-telephony: real Temporal (on a file), the "
        "LiveKit emulator, two workers, two gateways; seeded steps and faults, then the "
        "invariants of docs/CHAOS.md against LiveKit's state.",
    )
    parser.add_argument("--seed", type=int, default=1, help="first seed (default 1)")
    parser.add_argument("--seeds", type=int, default=1, help="how many seeds from --seed")
    parser.add_argument("--rooms", type=int, default=5, help="rooms per run (default 5)")
    parser.add_argument("--steps", type=int, default=40, help="steps per run (default 40)")
    parser.add_argument("--log-dir", type=Path, help="keep every run's logs under this folder")
    args = parser.parse_args(argv)

    started = time.monotonic()
    total_events, total_violations, failed = 0, 0, []
    faults: Counter[str] = Counter()
    for seed in range(args.seed, args.seed + args.seeds):
        log_dir = args.log_dir / f"seed-{seed}" if args.log_dir else None
        try:
            result = asyncio.run(
                run_seed(seed, args.rooms, args.steps, log_dir=log_dir, keep_logs=bool(log_dir))
            )
        except Exception as exc:  # the system could not even run: counted as a violation
            print(f"chaos seed={seed} ERROR {type(exc).__name__}: {exc}", flush=True)
            total_violations += 1
            failed.append(seed)
            continue
        print(result.summary(), flush=True)
        for description in result.replay:
            print(description, flush=True)
        if result.violations and result.log_dir:
            print(f"  logs: {result.log_dir}", flush=True)
        total_events += result.events
        total_violations += len(result.violations)
        faults.update(result.faults)
        if result.violations:
            failed.append(seed)
    if args.seeds > 1:
        by_kind = ",".join(f"{k}={faults[k]}" for k in FAULT_KINDS if faults[k])
        print(
            f"chaos total seeds={args.seeds} rooms={args.rooms} steps={args.steps} "
            f"events={total_events} faults={sum(faults.values())}[{by_kind}] "
            f"violations={total_violations} failed_seeds={failed or '-'} "
            f"wall={time.monotonic() - started:.0f}s",
            flush=True,
        )
    return 1 if total_violations else 0


if __name__ == "__main__":
    sys.exit(main())
